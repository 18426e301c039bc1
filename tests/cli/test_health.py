"""`callwise health` shows each provider's breaker as the processes that call it recorded it in Postgres
(``SharedBreakers`` -> ``breaker_openings``), not "unknown" because the breaker lives in another process."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from callwise.cli.main import app
from callwise.routing.resilience import CircuitBreaker, SharedBreakers


@pytest.fixture
def env(pg_url: str, pg_pool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    return {"CALLWISE_DATABASE_URL": pg_url, "CALLWISE_DATA_DIR": str(tmp_path / "data"), "CALLWISE_LOG_LEVEL": "ERROR"}


async def _another_process(pg_url: str, org_slug: str, models: list[str]) -> None:
    """What a worker's router does: model calls recorded, and the breakers' openings shared through Postgres."""
    from callwise.infra.db import create_pool

    pool = await create_pool(pg_url, min_size=1, max_size=2)
    try:
        org = await pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", org_slug)
        shared = SharedBreakers(pool, holder="worker-host:4242")
        breakers = {f"openai:{m}": CircuitBreaker(f"openai:{m}") for m in models}
        shared.attach(breakers)
        for m in models:
            await pool.execute("insert into cost_events (organization_id, tier, provider, model, success, error) "
                               "values ($1, 'tier1', 'openai', $2, false, 'HTTP 503')", org, m)
        for _ in range(3):  # three failures in a row open it
            breakers[f"openai:{models[0]}"].failure()
            breakers[f"openai:{models[1]}"].failure()
        await shared.aclose()  # the writes are done (each is its own background write)
        breakers[f"openai:{models[1]}"].success()  # a trial call succeeded: closed again
        await shared.aclose()
        # the third was opened a minute ago: past its 30 s, the next call is the trial
        for _ in range(3):
            breakers[f"openai:{models[2]}"].failure()
        await shared.aclose()
        await pool.execute("update breaker_openings set opened_at = now() - interval '60 seconds' where name = $1",
                           f"openai:{models[2]}")
    finally:
        await pool.close()


def test_health_reads_breaker_states_recorded_by_other_processes(env: dict[str, str], pg_url: str) -> None:
    tag = uuid.uuid4().hex[:6]
    models = [f"down-{tag}", f"recovered-{tag}", f"trial-{tag}", f"never-{tag}"]
    slug = f"health-{tag}"
    asyncio.run(_another_process(pg_url, slug, models))

    res = CliRunner().invoke(app, ["health", "--org", slug, "--json"], env=env)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout[res.stdout.index("{"):])
    states = {m["model"]: m["breaker"] for m in report["models"]}
    assert states == {models[0]: "open", models[1]: "closed", models[2]: "half_open", models[3]: "closed"}
    assert report["breaker_source"].startswith("breaker_openings in Postgres")

    res = CliRunner().invoke(app, ["health", "--org", slug], env={**env, "COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "unknown" not in res.stdout and "open" in res.stdout and "half_open" in res.stdout
