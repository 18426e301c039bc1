"""`callwise budget set|show|check|rollup`: monthly budgets, their alerts, the daily cost roll-up."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import typer

from callwise.cli.common import CommandError, console, echo_json, existing_org, fail, load_settings, run
from callwise.wiring.runtime import open_runtime

budget_app = typer.Typer(help="Monthly budgets per organization, alerts at 80% and 100%, the cost roll-up.",
                         no_args_is_help=True)


@budget_app.command("set")
def set_(
    org: str = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG)."),
    usd: float = typer.Option(..., "--usd", help="The monthly budget in USD (UTC months)."),
    hard_cap: bool = typer.Option(False, "--hard-cap/--no-hard-cap",
                                  help="Once spent, answer from the cheapest tier only."),
) -> None:
    """Set (or change) an organization's monthly budget."""
    from callwise.evaluation.budgets import BudgetError, set_budget

    if not usd > 0:
        fail(f"--usd must be a positive amount, not {usd}")
    settings = load_settings()

    async def go() -> None:
        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org)
            try:
                await set_budget(rt.pool, org_id, usd, hard_cap=hard_cap)
            except BudgetError as exc:
                raise CommandError(str(exc)) from None

    run(go)
    console.print(f"budget for {org or settings.default_org}: ${usd:,.2f} a month"
                  + (", hard cap on" if hard_cap else ""))


@budget_app.command("show")
def show(
    org: str = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """This month's spend against the budget, and the alerts raised."""
    from callwise.evaluation.budgets import budget_status

    settings = load_settings()

    async def go() -> dict[str, Any] | None:
        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org)
            async with rt.pool.acquire() as conn:
                return await budget_status(conn, org_id)

    status = run(go)
    if json_out:
        echo_json(status)
        return
    if status is None:
        console.print("no budget: `callwise budget set --org ORG --usd N`")
        return
    console.print(f"{status['month'][:7]}: ${status['spent_usd']:,.4f} of ${status['monthly_usd']:,.2f} "
                  f"({status['used']:.1%})" + (" — hard cap reached, cheapest tier only" if status["capped"] else ""))
    for a in status["alerts"]:
        console.print(f"  {a['threshold']}% alert {'sent' if a['delivered'] else 'recorded, not sent'} {a['at']}"
                      + (f" ({a['error']})" if a["error"] else ""))


@budget_app.command("check")
def check() -> None:
    """Raise the budget alerts now due (80%, 100%), to Slack when CALLWISE_SLACK_WEBHOOK_URL is set."""
    from callwise.evaluation.budgets import check_all
    from callwise.wiring.telemetry import slack_webhook

    settings = load_settings()

    async def go() -> list[dict[str, Any]]:
        async with open_runtime(settings) as rt:
            return await check_all(rt.pool, webhook=slack_webhook(settings))

    raised = run(go)
    for a in raised:
        console.print(f"{a['text']} ({'sent' if a['delivered'] else a['error']})")
    if not raised:
        console.print("no new budget alert")


@budget_app.command("rollup")
def rollup(
    day: str = typer.Option(None, "--day", help="The UTC day to (re)compute, YYYY-MM-DD (default: today)."),
) -> None:
    """Summarize one day of cost events into cost_summaries (per org, tier, provider and model); re-runnable."""
    from callwise.routing.costs import rollup_costs

    try:
        when = date.fromisoformat(day) if day else datetime.now(UTC).date()
    except ValueError:
        fail(f"--day must be YYYY-MM-DD, not {day!r}")
    settings = load_settings()

    async def go() -> int:
        async with open_runtime(settings) as rt:
            return await rollup_costs(rt.pool, when)

    rows = run(go)
    console.print(f"{when}: {rows} summary row(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(budget_app, name="budget")
