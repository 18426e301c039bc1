"""A/B experiments on live calls, through the path `callwise simulate` runs: each caller gets their
variant by the deterministic hash, its config reaches the call's turns, the session is tagged, the
outcome is recorded at call end, and `callwise ab report` shows that traffic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from callwise.agent.simulate import simulate_script
from callwise.calls.caller import CallerId
from callwise.evaluation import ab

ROOT = Path(__file__).resolve().parents[2]
EXP = "chunks-live"


def _callers() -> list[CallerId]:
    """Six callers, both variants among them (the hash decides; the test reads it, it does not pick it)."""
    callers = [CallerId.parse(f"cust-{i}") for i in range(6)]
    variants = {ab.assign_variant(EXP, c.key, 0.5) for c in callers}
    assert variants == {"control", "treatment"}
    return callers


async def test_callers_get_their_variant_config_and_the_report_counts_them(support_deps, kb_org, pg_pool,
                                                                         pg_url, tmp_path: Path) -> None:
    exp_id = await ab.create_experiment(pg_pool, kb_org, EXP, {"top_k": 4}, {"top_k": 2, "rerank": False})
    script = tmp_path / "refund.txt"
    script.write_text("How long does a refund take to show up on my card?\n")
    expected: dict[str, int] = {"control": 0, "treatment": 0}
    try:
        for caller in _callers():
            variant = ab.assign_variant(EXP, caller.key, 0.5)
            expected[variant] += 1
            report = await simulate_script(script, deps=support_deps, organization_id=kb_org, caller=caller)
            turn = report.turns[0]
            assert len(turn["sources"]) == (4 if variant == "control" else 2), (caller, variant, turn["sources"])
            row = await pg_pool.fetchrow("select ab_test_id, ab_variant_id, metadata from sessions "
                                         "where organization_id = $1 and id = $2", kb_org, report.session_id)
            assert str(row["ab_test_id"]) == exp_id and row["ab_variant_id"] == variant
            tagged = json.loads(row["metadata"])["experiments"]
            assert [(t["experiment"], t["variant"]) for t in tagged] == [(EXP, variant)]
            result = await pg_pool.fetchrow("select user_key, variant, resolved from experiment_results "
                                            "where organization_id = $1 and session_id = $2", kb_org,
                                            report.session_id)
            resolved = await pg_pool.fetchval("select resolved_by_ai from sessions where id = $1", report.session_id)
            assert result["user_key"] == caller.key and result["variant"] == variant
            assert resolved is not None and result["resolved"] is resolved  # the outcome recorded at call end
        rep = await ab.report(pg_pool, kb_org, EXP, min_per_variant=1)
        assert {v: s.n for v, s in rep.variants.items()} == expected  # no double count from the sync
        slug = await pg_pool.fetchval("select slug from organizations where id = $1", kb_org)
        proc = subprocess.run([sys.executable, "-m", "callwise.cli.main", "ab", "report", EXP, "--org", slug, "--json"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "CALLWISE_DATABASE_URL": pg_url,
                                   "CALLWISE_DATA_DIR": str(tmp_path / "d")})
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
        assert {v: data["variants"][v]["n"] for v in ("control", "treatment")} == expected
    finally:  # the KB organization is shared by the agent tests: stop the experiment
        await pg_pool.execute("update experiments set status = 'stopped' where id = $1", exp_id)


async def test_a_stopped_experiment_leaves_calls_alone(support_deps, kb_org, pg_pool, tmp_path: Path) -> None:
    exp_id = await ab.create_experiment(pg_pool, kb_org, "stopped-one", {"top_k": 1}, {"top_k": 1})
    await pg_pool.execute("update experiments set status = 'stopped' where id = $1", exp_id)
    script = tmp_path / "q.txt"
    script.write_text("How long does a refund take to show up on my card?\n")
    report = await simulate_script(script, deps=support_deps, organization_id=kb_org, caller=CallerId.parse("x-1"))
    assert len(report.turns[0]["sources"]) > 1
    assert await pg_pool.fetchval("select ab_test_id from sessions where id = $1", report.session_id) is None
