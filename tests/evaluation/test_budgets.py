"""Monthly budgets: alerts at 80% and 100% to a Slack stand-in, recorded once each; the CLI."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callwise.cli.main import app
from callwise.evaluation.budgets import BudgetError, budget_status, capped_orgs, check_budget, set_budget
from callwise.integrations.slack import SlackWebhook
from tests.vendors.slack import serve_slack


async def _spend(pool, org: str, usd: float, when: datetime | None = None) -> None:  # type: ignore[no-untyped-def]
    await pool.execute(
        "insert into cost_events (organization_id, tier, provider, model, cost_usd, created_at) "
        "values ($1, 'tier2', 'openai', 'gpt-4o-mini', $2, $3)", org, usd, when or datetime.now(UTC))


async def test_alerts_at_80_and_100_percent_once_each(pg_pool, org_id) -> None:  # type: ignore[no-untyped-def]
    await set_budget(pg_pool, org_id, 10.0)
    # last month's spend does not count against this month
    last_month = datetime.now(UTC).replace(day=1) - timedelta(days=1)
    await _spend(pg_pool, org_id, 50.0, last_month)
    await _spend(pg_pool, org_id, 7.9)
    with serve_slack() as slack:
        hook = SlackWebhook(slack.url)
        assert await check_budget(pg_pool, org_id, webhook=hook) == []
        await _spend(pg_pool, org_id, 0.2)  # 8.1 of 10: past 80%
        (alert,) = await check_budget(pg_pool, org_id, webhook=hook)
        assert alert["threshold"] == 80 and alert["delivered"]
        assert "80% of the monthly budget" in slack.messages[0]["text"] and "$8.10 of $10.00" in slack.messages[0]["text"]
        assert await check_budget(pg_pool, org_id, webhook=hook) == []  # raised once
        await _spend(pg_pool, org_id, 2.0)
        (alert,) = await check_budget(pg_pool, org_id, webhook=hook)
        assert alert["threshold"] == 100 and len(slack.messages) == 2 and "budget spent" in slack.messages[1]["text"]
    async with pg_pool.acquire() as conn:
        status = await budget_status(conn, org_id)
    assert status["spent_usd"] == pytest.approx(10.1) and status["used"] == pytest.approx(1.01)
    assert [(a["threshold"], a["delivered"]) for a in status["alerts"]] == [(80, True), (100, True)]
    assert not status["capped"] and org_id not in await capped_orgs(pg_pool)


async def test_an_alert_slack_refused_is_recorded_with_the_reason(pg_pool, org_id) -> None:  # type: ignore[no-untyped-def]
    await set_budget(pg_pool, org_id, 1.0, hard_cap=True)
    await _spend(pg_pool, org_id, 1.5)
    with serve_slack(status=500) as slack:
        raised = await check_budget(pg_pool, org_id, webhook=SlackWebhook(slack.url))
    assert [(a["threshold"], a["delivered"]) for a in raised] == [(80, False), (100, False)]
    assert "500" in raised[0]["error"] and "cheapest tier" in raised[1]["text"]
    rows = await pg_pool.fetch("select threshold, delivered, error from budget_alerts where organization_id = $1 "
                               "order by threshold", org_id)
    assert [(r["threshold"], r["delivered"]) for r in rows] == [(80, False), (100, False)] and rows[0]["error"]
    assert org_id in await capped_orgs(pg_pool)
    # no webhook: still recorded, and says why it was not sent
    other = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id",
                                       "b-" + uuid.uuid4().hex[:8]))
    await set_budget(pg_pool, other, 2.0)
    await _spend(pg_pool, other, 1.7)
    (alert,) = await check_budget(pg_pool, other, webhook=None)
    assert not alert["delivered"] and "CALLWISE_SLACK_WEBHOOK_URL" in alert["error"]


async def test_bad_budgets_are_refused(pg_pool, org_id) -> None:  # type: ignore[no-untyped-def]
    for bad in (0, -5, float("nan")):
        with pytest.raises(BudgetError, match="positive"):
            await set_budget(pg_pool, org_id, bad)
    async with pg_pool.acquire() as conn:
        assert await budget_status(conn, org_id, date.today()) is None


def test_budget_cli(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("CALLWISE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    res = runner.invoke(app, ["budget", "set", "--org", "nope-" + uuid.uuid4().hex[:6], "--usd", "5"])
    assert res.exit_code == 2 and "unknown organization" in res.output
    res = runner.invoke(app, ["budget", "set", "--usd", "-1"])
    assert res.exit_code == 2 and "positive" in res.output
    res = runner.invoke(app, ["budget", "rollup", "--day", "2026-13-01"])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output
    res = runner.invoke(app, ["health", "--json"])
    assert res.exit_code == 0, res.output


async def test_a_spent_hard_cap_holds_the_org_to_the_cheapest_tier_and_says_so(pg_pool, org_id) -> None:  # type: ignore[no-untyped-def]
    from callwise.evaluation.budgets import CAP_REASON, BudgetCaps
    from callwise.routing.providers.openai import OpenAIProvider
    from callwise.routing.router import CascadingRouter, Tier
    from callwise.routing.types import SourceDoc
    from tests.routing.conftest import FAST_RETRY
    from tests.vendors.openai import FakeOpenAI

    servers = [FakeOpenAI(f"Answer from tier {i}.", logprob=-0.01).start() for i in (1, 2, 3)]
    try:
        tiers = [Tier(f"tier{i}", OpenAIProvider(f"model-{i}", api_key="test", base_url=s.base_url))
                 for i, s in enumerate(servers, start=1)]
        router = CascadingRouter(tiers, retry=FAST_RETRY)
        caps = BudgetCaps(pg_pool, ttl_s=0.0)
        router.budget_cap = caps.reason_for
        sources = [SourceDoc(1, "kb/errors.md", "Errors", "A 401 means the API key is wrong or expired.")]
        question = "Why does my python script get a 401?"  # a code question starts at tier3
        before = await router.answer(question, sources, organization_id=org_id)
        assert before.cascade_path == ["tier3"] and "budget_cap" not in before.complexity
        await set_budget(pg_pool, org_id, 1.0, hard_cap=True)
        await _spend(pg_pool, org_id, 0.9)
        assert (await router.answer(question, sources, organization_id=org_id)).cascade_path == ["tier3"]
        await _spend(pg_pool, org_id, 0.2)  # spent: 1.1 of 1.0
        capped = await router.answer(question, sources, organization_id=org_id)
        assert capped.cascade_path == ["tier1"] and capped.tier == "tier1"
        assert capped.complexity["budget_cap"] == CAP_REASON
        await set_budget(pg_pool, org_id, 1.0, hard_cap=False)  # the cap lifted: back to the usual plan
        assert (await router.answer(question, sources, organization_id=org_id)).cascade_path == ["tier3"]
    finally:
        for s in servers:
            s.stop()
