"""Operations (issue 24) over real parts: simulated support calls through the turn's stages (Postgres, MiniLM,
the offline router), then the stats API, model health, the Prometheus scrape, the turn spans, and the
dashboard rendered by headless Chromium, with data and empty."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from callwise.agent.simulate import simulate_script
from callwise.api.app import ApiServices, create_app
from callwise.calls.store import ConversationStore
from callwise.infra import telemetry
from callwise.wiring.routing import tier3_price

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".callwise" / "test-artifacts"
TOKEN = "ops-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# four calls, one outcome each (the verdict the system reaches is asserted below, call by call)
SCRIPTS = {
    "resolved": ["How long does a refund take?"],
    "escalated": ["I want to talk to a real person right now"],
    "unanswered": ["What is the airspeed velocity of an unladen swallow in the Andes?"],
    "low-survey": ["How do I reset my password?"],
}
SURVEYS = {"resolved": 4, "low-survey": 2}

SPANS = InMemorySpanExporter()


async def _org(pool, knowledge, ingest: bool) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    slug = "ops-" + uuid.uuid4().hex[:8]
    org = str(await pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug))
    if ingest:
        for rel in ("billing/refunds.md", "accounts/reset-password.md"):
            await knowledge.ingestor.ingest(str(ROOT / "examples" / "kb" / rel), org)
    return slug, org


@pytest.fixture(scope="module")
async def ops(pg_pool, knowledge, router, agent_settings, tmp_path_factory):  # type: ignore[no-untyped-def]
    from callwise.calls import SupportDeps
    from callwise.handoff.escalation import EscalationPolicy, EscalationRules

    telemetry.setup_telemetry(span_processor=SimpleSpanProcessor(SPANS))
    assert telemetry.exporter() == "prometheus"
    slug, org = await _org(pg_pool, knowledge, ingest=True)
    empty_slug, _ = await _org(pg_pool, knowledge, ingest=False)
    deps = SupportDeps(retriever=knowledge.retriever, router=router, pool=pg_pool,
                       rules=EscalationRules(EscalationPolicy.from_settings(agent_settings)))
    scripts = tmp_path_factory.mktemp("scripts")
    SPANS.clear()
    sessions: dict[str, str] = {}
    reports = {}
    for name, lines in SCRIPTS.items():
        path = scripts / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        report = await simulate_script(path, deps=deps, organization_id=org)
        sessions[name], reports[name] = report.session_id, report
    store = ConversationStore(pg_pool, org)
    for name, rating in SURVEYS.items():
        await store.add_survey(sessions[name], rating=rating, feedback_text=None, channel_used="voice")
    services = ApiServices(pg_pool, knowledge.retriever, router, tier3_price(agent_settings), TOKEN)
    client = TestClient(TestServer(create_app(services)))
    await client.start_server()
    open_client = TestClient(TestServer(create_app(ApiServices(pg_pool, knowledge.retriever, router,
                                                               tier3_price(agent_settings), None))))
    await open_client.start_server()
    try:
        yield {"client": client, "open": open_client, "slug": slug, "org": org, "empty": empty_slug,
               "sessions": sessions, "reports": reports}
    finally:
        await client.close()
        await open_client.close()


async def test_each_call_gets_its_verdict_and_reason(ops, pg_pool) -> None:  # type: ignore[no-untyped-def]
    rows = {r["id"]: r for r in await pg_pool.fetch(
        "select id::text, ai_resolved, resolved_by_ai, resolution_reason, status from sessions where organization_id = $1",
        ops["org"])}
    got = {name: rows[sid]["resolution_reason"] for name, sid in ops["sessions"].items()}
    assert got == {"resolved": "resolved", "escalated": "escalated:explicit_request", "unanswered": "unanswered",
                   "low-survey": "low_survey"}
    strict = {name: rows[sid]["ai_resolved"] for name, sid in ops["sessions"].items()}
    lenient = {name: rows[sid]["resolved_by_ai"] for name, sid in ops["sessions"].items()}
    assert strict == {"resolved": True, "escalated": False, "unanswered": False, "low-survey": False}
    assert lenient == {"resolved": True, "escalated": False, "unanswered": True, "low-survey": True}


async def test_a_call_abandoned_mid_answer_is_not_resolved(ops, pg_pool) -> None:  # type: ignore[no-untyped-def]
    store = ConversationStore(pg_pool, ops["org"])
    from callwise.calls.store import TurnRecord

    sid = await store.start_session(room="hangup", kind="support", modality="voice")
    await store.add_turn(sid, TurnRecord(speaker="agent", role="assistant", text="Refunds take", error="interrupted"))
    await store.end_session(sid, status="ended", resolved_by_ai=True)
    row = await pg_pool.fetchrow("select ai_resolved, resolution_reason from sessions where id = $1", sid)
    assert (row["ai_resolved"], row["resolution_reason"]) == (False, "abandoned")
    await pg_pool.execute("delete from sessions where id = $1", sid)  # keep the stats below to the four calls


async def test_stats_match_the_simulated_calls(ops, pg_pool) -> None:  # type: ignore[no-untyped-def]
    res = await ops["client"].get(f"/v1/orgs/{ops['slug']}/stats?days=1", headers=AUTH)
    assert res.status == 200
    body = await res.json()
    assert body["calls"] == 4 and body["in_progress"] == 0
    assert body["ai_resolved"]["strict"] | {"definition": None} == {"resolved": 1, "of": 4, "rate": 0.25,
                                                                   "definition": None}
    assert body["ai_resolved"]["lenient"]["resolved"] == 3 and body["ai_resolved"]["lenient"]["rate"] == 0.75
    assert "survey" in body["ai_resolved"]["strict"]["definition"]
    assert body["ai_resolved"]["reasons"] == {"resolved": 1, "escalated:explicit_request": 1, "unanswered": 1,
                                              "low_survey": 1}
    assert body["escalations_by_reason"] == {"explicit_request": 1}
    assert body["open_cases"] == 1
    assert body["csat"] == {"mean": 3.0, "count": 2}
    # first-word latency and the tier mix, recomputed from the simulation reports themselves
    firsts = sorted(t["latencies_ms"]["eos_to_first_token_ms"] for r in ops["reports"].values() for t in r.turns
                    if "eos_to_first_token_ms" in t["latencies_ms"])
    assert body["first_word_ms"]["turns"] == len(firsts) >= 3
    import numpy as np

    assert body["first_word_ms"]["p50"] == pytest.approx(float(np.percentile(firsts, 50)), abs=0.1)
    assert body["first_word_ms"]["p95"] == pytest.approx(float(np.percentile(firsts, 95)), abs=0.1)
    tiers: dict[str, int] = {}
    for r in ops["reports"].values():
        for t in r.turns:
            if t["tier"]:
                tiers[t["tier"]] = tiers.get(t["tier"], 0) + 1
    assert body["tier_mix"] == tiers and body["answered_turns"] == sum(tiers.values())
    spent = float(await pg_pool.fetchval("select coalesce(sum(cost_usd), 0) from cost_events where organization_id = $1",
                                         ops["org"]))
    assert body["cost_usd"] == pytest.approx(spent)
    assert body["budget"] is None
    assert any("swallow" in u["question"] for u in body["unanswered_questions"])


async def test_stats_refuse_bad_input(ops) -> None:  # type: ignore[no-untyped-def]
    client = ops["client"]
    res = await client.get("/v1/orgs/no-such-org/stats?days=1", headers=AUTH)
    assert res.status == 404 and "no-such-org" in (await res.json())["error"]
    for bad in ("0", "abc", "-3", "367", "1.5"):
        res = await client.get(f"/v1/orgs/{ops['slug']}/stats?days={bad}", headers=AUTH)
        assert res.status == 400, bad
        assert "days must be an integer from 1 to 366" in (await res.json())["error"]
    assert (await client.get(f"/v1/orgs/{ops['slug']}/stats", headers={"Authorization": "Bearer nope"})).status == 401
    empty = await (await client.get(f"/v1/orgs/{ops['empty']}/stats?days=30", headers=AUTH)).json()
    assert empty["calls"] == 0 and empty["ai_resolved"]["strict"]["rate"] is None and empty["csat"]["mean"] is None


async def test_health_lists_each_model_that_answered(ops, pg_pool) -> None:  # type: ignore[no-untyped-def]
    res = await ops["client"].get(f"/v1/orgs/{ops['slug']}/health", headers=AUTH)
    assert res.status == 200
    body = await res.json()
    events = await pg_pool.fetch("select provider, model, count(*) as n from cost_events where organization_id = $1 "
                                 "group by 1, 2", ops["org"])
    assert events, "the simulated calls recorded model calls"
    got = {(m["provider"], m["model"]): m for m in body["models"]}
    assert set(got) == {(e["provider"], e["model"]) for e in events}
    for e in events:
        m = got[(e["provider"], e["model"])]
        assert m["last_hour"]["requests"] == m["last_day"]["requests"] == e["n"]
        assert m["breaker"] in ("closed", "open", "half_open")  # the serving router's own breaker
    assert (await ops["client"].get("/v1/orgs/nope/health", headers=AUTH)).status == 404


async def test_scrape_has_the_framework_and_callwise_metrics(ops) -> None:  # type: ignore[no-untyped-def]
    client = ops["client"]
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    res = await client.get("/metrics", headers=AUTH)
    assert res.status == 200 and res.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await res.text())}

    def labels(name: str) -> set[frozenset[str]]:
        return {frozenset(k for k in s.labels if k not in ("le", "otel_scope_name", "otel_scope_version",
                                                          "otel_scope_schema_url"))
                for s in families[name].samples}

    # the framework's names (livekit/agents/telemetry/otel_metrics.py), translated as Prometheus does
    assert labels("lk_agents_turn_e2e_latency_seconds") == {frozenset({"model_provider", "model_name"})}
    assert {s.labels["otel_scope_name"] for s in families["lk_agents_turn_e2e_latency_seconds"].samples} \
        == {"livekit-agents"}
    assert labels("lk_agents_turn_llm_ttft_seconds") == {frozenset({"model_provider", "model_name"})}
    assert labels("callwise_turns") == {frozenset({"kind", "modality", "result"})}
    assert labels("callwise_turn_stage_duration_seconds") == {frozenset({"stage"})}
    stages = {s.labels["stage"] for s in families["callwise_turn_stage_duration_seconds"].samples}
    assert {"record", "guard", "escalate_on_words", "retrieve", "answer", "persist"} <= stages
    assert labels("callwise_retrieval_stage_duration_seconds") == {frozenset({"stage", "query_type", "mode"})}
    assert labels("callwise_routing_answers") == {frozenset({"tier", "cascade", "cascaded"})}
    assert labels("callwise_routing_confidence") == {frozenset({"tier"})}
    assert labels("callwise_escalations") == {frozenset({"reason", "handoff"})}
    escalated = {s.labels["reason"] for s in families["callwise_escalations"].samples}
    assert escalated == {"explicit_request"}
    assert labels("callwise_llm_requests") == {frozenset({"provider", "model", "tier", "purpose", "result"})}
    # read from Postgres at the scrape: every process's calls, by organization and verdict
    calls = {(s.labels["organization"], s.labels["resolution"]): s.value
             for s in families["callwise_calls_last_day"].samples}
    assert {k: v for k, v in calls.items() if k[0] == ops["slug"]} == {
        (ops["slug"], "resolved"): 1, (ops["slug"], "escalated:explicit_request"): 1,
        (ops["slug"], "unanswered"): 1, (ops["slug"], "low_survey"): 1}
    assert labels("callwise_escalations_last_day") == {frozenset({"organization", "reason"})}
    assert labels("callwise_llm_requests_last_day") == {frozenset({"provider", "model", "result"})}
    totals = {s.labels["kind"]: s.value for s in families["callwise_turns"].samples if s.name == "callwise_turns_total"}
    assert totals.get("escalation", 0) >= 1 and totals.get("answer", 0) >= 3


async def test_one_span_per_turn_with_a_child_per_stage_and_no_text_by_default(ops, pg_pool, knowledge, router,
                                                                                 agent_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spans = SPANS.get_finished_spans()
    turns = [s for s in spans if s.name == "callwise.turn"]
    assert len(turns) == sum(len(v) for v in SCRIPTS.values())
    for turn in turns:
        children = [s for s in spans if s.parent is not None and s.parent.span_id == turn.context.span_id]
        names = [c.name for c in children]
        assert names[0] == "callwise.stage.record" and names[-1] == "callwise.stage.persist"
        assert all(c.context.trace_id == turn.context.trace_id for c in children)
        assert not any(k.startswith("lk.pii.") for k in turn.attributes)
        assert "How long" not in json.dumps(dict(turn.attributes))
    # an organization that allows it gets the text under the framework's lk.pii. convention
    from callwise.calls import SupportDeps
    from callwise.handoff.escalation import EscalationPolicy, EscalationRules

    telemetry.allow_pii_for({ops["org"]})
    try:
        SPANS.clear()
        script = tmp_path / "pii.txt"
        script.write_text("How long does a refund take?\n")
        deps = SupportDeps(retriever=knowledge.retriever, router=router, pool=pg_pool,
                           rules=EscalationRules(EscalationPolicy.from_settings(agent_settings)))
        report = await simulate_script(script, deps=deps, organization_id=ops["org"])
        await pg_pool.execute("delete from sessions where id = $1", report.session_id)
    finally:
        telemetry.allow_pii_for(set())
    (turn,) = [s for s in SPANS.get_finished_spans() if s.name == "callwise.turn"]
    assert turn.attributes["lk.pii.user_text"] == "How long does a refund take?"


async def test_pages_render_with_data_and_empty(ops) -> None:  # type: ignore[no-untyped-def]
    client = ops["client"]
    assert (await client.get(f"/orgs/{ops['slug']}")).status == 401
    page = await (await client.get(f"/orgs/{ops['slug']}", headers=AUTH)).text()
    assert "AI resolved (strict)" in page and "AI resolved (lenient)" in page and "explicit_request" in page
    assert "25.0%" in page and "75.0%" in page  # strict and lenient, today
    assert page.count("<svg") >= 2 and "<script" not in page
    assert "callwise budget set --org" in page  # no budget: what to do
    empty = await (await client.get(f"/orgs/{ops['empty']}", headers=AUTH)).text()
    assert "No calls yet: run <code>callwise simulate" in empty and "<svg" not in empty
    overview = await (await client.get("/", headers=AUTH)).text()
    assert f'href="/orgs/{ops["slug"]}"' in overview
    assert (await client.get("/orgs/nope", headers=AUTH)).status == 404


async def test_org_text_is_escaped(ops, pg_pool) -> None:  # type: ignore[no-untyped-def]
    await pg_pool.execute(
        "insert into unresolved_problems (organization_id, question, normalized_hash, last_reason) "
        "values ($1, '<img src=x onerror=alert(1)>?', $2, 'no_sources')", ops["org"], uuid.uuid4().hex)
    page = await (await ops["client"].get(f"/orgs/{ops['slug']}", headers=AUTH)).text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;?" in page
    # the case desk's page is a template too: a trigger sentence with markup is shown as text
    await pg_pool.execute("update escalations set details = details || '{\"transcript\": \"<i>now</i> please\"}'::jsonb "
                          "where session_id = $1", ops["sessions"]["escalated"])
    cases = await (await ops["client"].get("/cases", headers=AUTH)).text()
    assert "&lt;i&gt;now&lt;/i&gt; please" in cases and "<i>now</i>" not in cases


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


async def _render(url: str, shot: Path, profile: Path) -> tuple[str, str]:
    browser = _chromium()
    assert browser
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0"]
    out = []
    for extra in (["--dump-dom"], [f"--screenshot={shot}", "--window-size=1280,2600"]):
        proc = await asyncio.create_subprocess_exec(browser, *flags, *extra, url, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, stderr.decode()[-2000:]
        out.append((stdout.decode(), stderr.decode()))
    return out[0][0], out[0][1] + out[1][1]


@pytest.mark.parametrize("which", ["data", "empty"])
async def test_dashboard_in_headless_chromium(ops, which, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if _chromium() is None:
        pytest.skip("chromium is not installed (bash scripts/setup.sh --test installs it)")
    slug = ops["slug"] if which == "data" else ops["empty"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"dashboard-{which}.png"
    shot.unlink(missing_ok=True)
    dom, log = await _render(str(ops["open"].make_url(f"/orgs/{slug}")), shot, tmp_path / "profile")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert not console, console
    assert f"<h1>{slug}</h1>" in dom
    assert ("<svg" in dom) == (which == "data")  # the plots, when there are calls
    assert ("No calls yet" in dom) == (which == "empty")
    assert not re.search(r'(src|href)="https?://(?!127\.0\.0\.1)', dom), "the page fetches nothing from outside"
    assert shot.is_file()
    from PIL import Image

    img = Image.open(shot).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100, "the screenshot is blank"
