"""`callwise escalations list|show|claim|resolve`: the case desk from the terminal."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from callwise.cli.common import CommandError, console, echo_json, existing_org, load_settings, run
from callwise.wiring.runtime import open_runtime

app = typer.Typer(help="Escalated calls as cases: list, show (with the transcript), claim, resolve.",
                  no_args_is_help=True)
ORG = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG).")
JSON = typer.Option(False, "--json", help="Print JSON.")


async def _desk(rt: Any, settings: Any, org: str | None) -> Any:
    from callwise.handoff.cases import CaseDesk
    from callwise.wiring.integrations import join_links

    return CaseDesk(rt.pool, await existing_org(rt.pool, settings, org), links=join_links(settings))


def _with_desk(org: str | None, fn: Any) -> Any:
    from callwise.handoff.cases import CaseError

    settings = load_settings()

    async def go() -> Any:
        async with open_runtime(settings) as rt:
            desk = await _desk(rt, settings, org)
            try:
                return await fn(desk)
            except CaseError as exc:
                raise CommandError(str(exc)) from None

    return run(go)


def _print_case(d: dict[str, Any]) -> None:
    console.print(f"[bold]{d['case']}[/] {d['status']} ({d['reason']}, {d['handoff']}, handoff {d['handoff_status']})"
                  f" opened {d['created_at']:%Y-%m-%d %H:%M}", highlight=False)
    if d.get("assigned_to"):
        console.print(f"assigned to {d['assigned_to']} (claimed {d['claimed_at']:%H:%M})", highlight=False)
    if d.get("ticket_id"):
        console.print(f"ticket {d['ticket_id']} {d.get('ticket_url') or ''}", highlight=False)
    console.print(f"rule: {d.get('rule') or '-'}; words: {', '.join(map(str, d.get('matched') or [])) or '-'}",
                  highlight=False)
    for t in d.get("transcript") or []:
        console.print(f"  {t['speaker']}: {t['text']}", highlight=False, markup=False)
    for n in d.get("notes") or []:
        console.print(f"  note ({n.get('by')}): {n.get('text')}", highlight=False, markup=False)
    for o in d.get("outbox") or []:
        err = f" - {o['last_error']}" if o.get("last_error") else ""
        console.print(f"  outbox {o['action']}: {o['status']} after {o['attempts']} attempt(s){err}", highlight=False,
                      markup=False)
    if d.get("resolution_notes"):
        console.print(f"resolved {d['resolved_at']:%Y-%m-%d %H:%M}: {d['resolution_notes']}", highlight=False)
    if d.get("join_link"):
        console.print(f"join the caller's room: {d['join_link']}", highlight=False, markup=False)


@app.command("list")
def list_cases(org: str | None = ORG, status: str | None = typer.Option(
        None, "--status", help="waiting, claimed, resolved, callback or open (all but resolved)."),
        limit: int = typer.Option(50, "--limit", min=1, max=1000), json_out: bool = JSON) -> None:
    """Cases, newest first; --json includes the transcript that led to each."""

    async def fn(desk: Any) -> list[dict[str, Any]]:
        return [c.as_dict() for c in await desk.list(status=status, limit=limit, transcript=json_out)]

    cases = _with_desk(org, fn)
    if json_out:
        echo_json({"cases": cases})
        return
    if not cases:
        console.print("no cases")
        return
    table = Table()
    for name in ("case", "status", "reason", "handoff", "assigned", "opened", "ticket"):
        table.add_column(name, no_wrap=True)
    table.add_column("trigger", overflow="ellipsis", no_wrap=True, max_width=50)
    for d in cases:
        table.add_row(d["case"], d["status"], d["reason"], d["handoff_status"], d["assigned_to"] or "",
                      f"{d['created_at']:%m-%d %H:%M}", d["ticket_id"] or "", (d.get("trigger") or "")[:60])
    console.print(table)


@app.command("show")
def show(case: str = typer.Argument(..., help="CW-1042, 1042 or the case id."), org: str | None = ORG,
         json_out: bool = JSON) -> None:
    """One case with its transcript, notes and outbox actions."""

    async def fn(desk: Any) -> dict[str, Any]:
        return (await desk.get(case)).as_dict()

    d = _with_desk(org, fn)
    echo_json(d) if json_out else _print_case(d)


@app.command("claim")
def claim(case: str = typer.Argument(...), agent: str = typer.Option(..., "--agent", help="Your name (agent-NAME in the room)."),
          org: str | None = ORG, json_out: bool = JSON) -> None:
    """Take a waiting or callback case; a live one prints your join link."""

    async def fn(desk: Any) -> dict[str, Any]:
        return (await desk.claim(case, agent)).as_dict()

    d = _with_desk(org, fn)
    echo_json(d) if json_out else _print_case(d)


@app.command("resolve")
def resolve(case: str = typer.Argument(...), agent: str = typer.Option(..., "--agent"),
            notes: str = typer.Option(..., "--notes", help="What was done."), org: str | None = ORG,
            json_out: bool = JSON) -> None:
    """Close a case with resolution notes."""

    async def fn(desk: Any) -> dict[str, Any]:
        return (await desk.resolve(case, agent, notes)).as_dict()

    d = _with_desk(org, fn)
    echo_json(d) if json_out else _print_case(d)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="escalations")
