"""`callwise outbox list|retry|run`: the durable queue of external actions."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from callwise.cli.common import CommandError, console, echo_json, existing_org, load_settings, run
from callwise.wiring.runtime import open_runtime

app = typer.Typer(help="External actions (tickets, notices, transfers, SMS, email) and their delivery.",
                  no_args_is_help=True)
ORG = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG).")
JSON = typer.Option(False, "--json", help="Print JSON.")


async def _org_id(rt: Any, settings: Any, org: str | None) -> str:
    return await existing_org(rt.pool, settings, org)


@app.command("list")
def list_rows(org: str | None = ORG, status: str | None = typer.Option(
        None, "--status", help="pending, in_flight, delivered, dead or cancelled."),
        limit: int = typer.Option(50, "--limit", min=1, max=1000), json_out: bool = JSON) -> None:
    """Outbox rows, newest first, with their attempts and last error."""
    from callwise.integrations.outbox import STATUSES, counts, list_items

    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"one of {', '.join(STATUSES)}", param_hint="--status")
    settings = load_settings()

    async def go() -> tuple[list[dict[str, Any]], dict[str, int]]:
        async with open_runtime(settings) as rt:
            org_id = await _org_id(rt, settings, org)
            return await list_items(rt.pool, org_id, status=status, limit=limit), await counts(rt.pool, org_id)

    rows, totals = run(go)
    if json_out:
        echo_json({"counts": totals, "items": rows})
        return
    table = Table("id", "action", "case", "status", "attempts", "next attempt", "vendor id", "last error")
    for r in rows:
        case = f"CW-{r['case_number']}" if r.get("case_number") else ""
        table.add_row(str(r["id"])[:8], r["action"], case, r["status"], f"{r['attempts']}/{r['max_attempts']}",
                      f"{r['next_attempt_at']:%m-%d %H:%M:%S}" if r["status"] == "pending" else "",
                      r["vendor_id"] or "", (r["last_error"] or "")[:60])
    console.print(table)
    console.print(", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or "the outbox is empty")


@app.command("retry")
def retry_rows(item: str | None = typer.Argument(None, help="An outbox id (default: every dead row)."),
               org: str | None = ORG, json_out: bool = JSON) -> None:
    """Put dead rows (or one row) back in the queue with fresh attempts."""
    import uuid

    from callwise.integrations.outbox import retry

    if item is not None:
        try:
            item = str(uuid.UUID(item))
        except ValueError:
            raise typer.BadParameter("an outbox id is a UUID (see `callwise outbox list --json`)") from None
    settings = load_settings()

    async def go() -> int:
        async with open_runtime(settings) as rt:
            org_id = await _org_id(rt, settings, org)
            return await retry(rt.pool, org_id, item_id=item, all_dead=item is None)

    n = run(go)
    echo_json({"requeued": n}) if json_out else console.print(f"{n} row(s) queued again")


@app.command("run")
def run_dispatcher(org: str | None = ORG, timeout: float = typer.Option(
        30.0, "--timeout", min=0.1, help="Stop after this many seconds, or sooner once nothing is due."),
        forever: bool = typer.Option(
            False, "--forever", help="Keep delivering until SIGTERM or Ctrl-C, for every organization unless "
            "--org is given: the host's one dispatcher beside `callwise worker` (`callwise serve` runs its own)."),
        json_out: bool = JSON) -> None:
    """Deliver what is due for the org now; with --forever, run the host's dispatcher until stopped."""
    from callwise.integrations.credentials import CredentialError
    from callwise.integrations.outbox import counts
    from callwise.wiring.integrations import dispatcher

    settings = load_settings()

    async def go() -> dict[str, Any]:
        async with open_runtime(settings) as rt:
            org_id = await _org_id(rt, settings, org) if org or not forever else None
            try:
                d = dispatcher(settings, rt.pool, organization_id=org_id)
            except CredentialError as exc:
                raise CommandError(str(exc)) from None
            if forever:
                return await _forever(d, settings.outbox_poll_s)
            assert org_id is not None
            stats = await d.drain(timeout_s=timeout)
            return {**stats.as_dict(), "counts": await counts(rt.pool, org_id)}

    out = run(go)
    if json_out:
        echo_json(out)
        return
    console.print(f"delivered {out['delivered']}, retried {out['retried']}, dead {out['dead']}"
                  + ("; now: " + ", ".join(f"{k} {v}" for k, v in sorted(out["counts"].items()))
                     if "counts" in out else ""))


async def _forever(d: Any, poll_s: float) -> dict[str, Any]:
    """``d.run`` until the command is cancelled (SIGTERM, SIGINT); then the batch in hand is finished
    (bounded) before the pool closes, so no row is left in flight until its lease runs out."""
    import asyncio
    import contextlib

    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop, poll_s=poll_s), name="outbox-dispatcher")
    console.print("outbox dispatcher running for "
                  + (f"organization {d.organization_id}" if d.organization_id else "every organization")
                  + " (SIGTERM or Ctrl-C to stop)")
    try:
        stats = await asyncio.shield(task)
        return dict(stats.as_dict())
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=10)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="outbox")
