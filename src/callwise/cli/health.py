"""`callwise health`: latency, time to first token, errors, requests and tokens per provider and model."""

from __future__ import annotations

import typer
from rich.table import Table

from callwise.cli.common import console, echo_json, existing_org, load_settings, run
from callwise.wiring.runtime import open_runtime


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def health(
    org: str = typer.Option(None, "--org", help="Only this organization's model calls (default: all)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Model health over the last hour and day, from the recorded model calls (cost events), with each
    provider's breaker state as the processes that call it recorded it in Postgres."""
    from callwise.api.breakers import recorded_states, with_recorded
    from callwise.api.stats import model_health

    settings = load_settings()

    async def go() -> dict:  # type: ignore[type-arg]
        async with open_runtime(settings) as rt:
            org_id = await existing_org(rt.pool, settings, org) if org else None
            return with_recorded(await model_health(rt.pool, org_id), await recorded_states(rt.pool))

    report = run(go)
    if json_out:
        echo_json(report)
        return
    if not report["models"]:
        console.print("no model call in the last day: run `callwise ask \"...\"` or `callwise simulate FILE`")
        return
    table = Table("provider / model", "breaker", "window", "requests", "errors", "latency p50/p95/p99 ms",
                  "TTFT p50/p95 ms", "tokens in/out", title="Model health")
    for m in report["models"]:
        for window in ("last_hour", "last_day"):
            w = m.get(window)
            if not w:
                table.add_row(f"{m['provider']} / {m['model']}", m["breaker"], window.replace("_", " "), "0", "", "",
                              "", "")
                continue
            kinds = ", ".join(f"{k} {n}" for k, n in w["errors_by_kind"].items())
            lat, ttft = w["latency_ms"], w["ttft_ms"]
            table.add_row(f"{m['provider']} / {m['model']}", m["breaker"], window.replace("_", " "), str(w["requests"]),
                          f"{w['errors']}" + (f" ({kinds})" if kinds else ""),
                          f"{_ms(lat['p50'])} / {_ms(lat['p95'])} / {_ms(lat['p99'])}",
                          f"{_ms(ttft['p50'])} / {_ms(ttft['p95'])}",
                          f"{w['tokens']['input']} / {w['tokens']['output']}")
    console.print(table)
    console.print(f"Breaker state: {report['breaker_source']}.", style="dim", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("health")(health)
