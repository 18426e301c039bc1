"""`callwise ask` (one turn of a support call, through the turn stages) and `callwise costs`."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import typer
from rich.table import Table

from callwise.api.conversations import turn_json
from callwise.api.requests import MAX_QUESTION_CHARS
from callwise.calls import SupportCall
from callwise.cli.common import CommandError, console, echo_json, err_console, load_settings, run
from callwise.wiring.agent import open_components
from callwise.wiring.runtime import open_runtime
from callwise.wiring.settings import Settings

log = logging.getLogger(__name__)


def ask(
    question: str = typer.Argument(..., help="The customer's question."),
    org: str = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG)."),
    modality: str = typer.Option("text", "--modality", help="voice | video | screen_share | text"),
    top_k: int = typer.Option(None, "--top-k", min=1, help="Sources to retrieve (default CALLWISE_RETRIEVAL_TOP_K)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Ask the support agent one question: a one-turn call through the same turn stages as a phone call
    (guard, escalation rules, retrieval, answerability, the tiered router), stored as a session."""
    from callwise.calls.guard import clean_text
    from callwise.cli.common import fail
    from callwise.wiring.routing import RoutingConfigError

    question = clean_text(question).strip()  # invalid UTF-8 in argv arrives as lone surrogates
    if not question:
        fail("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        fail(f"the question is {len(question)} characters; a turn is at most {MAX_QUESTION_CHARS}")
    if modality not in ("voice", "video", "screen_share", "text"):
        fail(f"--modality must be voice, video, screen_share or text, not {modality!r}")
    settings = load_settings()

    async def go() -> dict[str, Any]:
        try:
            async with open_components(settings) as comp:
                org_id = await comp.runtime.org_id(org)
                return await ask_once(comp.support_deps(), org_id, question, modality=modality, top_k=top_k)
        except RoutingConfigError as exc:  # a bad tier set-up, found when the router is built
            raise CommandError(str(exc)) from exc

    data = run(go)
    if json_out:
        echo_json(data)
        return
    print_turn(data)


async def ask_once(deps: Any, organization_id: str, question: str, *, modality: str = "text",
                   top_k: int | None = None) -> dict[str, Any]:
    """One turn of a new call, then the call's end (its session closed, its insights stored)."""
    call = await SupportCall.start(deps, organization_id=organization_id, room=f"cli-ask-{uuid.uuid4().hex[:8]}",
                                   modality=modality, metadata={"channel": "cli"},
                                   overrides={"top_k": top_k} if top_k else None)
    try:
        turn = call.new_turn(question)
        await call.pipeline.stream(turn).collect()
    finally:
        await call.end()
    return {"call_id": call.session_id, **turn_json(turn, index=1)}


def print_turn(data: dict[str, Any]) -> None:
    console.print(data["answer"], highlight=False, soft_wrap=True)
    if data["sources"]:
        console.print("\n[bold]Sources[/]")
        for s in data["sources"]:
            console.print(f"  [{s['index']}] {s['title'] or s['document']} — {s['document']}", highlight=False)
    esc = data["escalation"]
    if esc:
        case = f" · case {esc['case']}" if esc.get("case") else " · no case recorded"
        console.print(f"\n[bold]Escalated[/]: {esc.get('repeat_reason') or esc['reason']}{case}", highlight=False)
    router = data["router"] or {}
    conf = "n/a" if data["confidence"] is None else f"{data['confidence']:.2f} ({router.get('confidence_method')})"
    lat = data["latencies_ms"]
    console.print(
        f"\n{data['kind']} · tier {data['tier'] or '-'} ({router.get('provider') or '-'}/{router.get('model') or '-'})"
        f" · path {' → '.join(router.get('cascade_path') or []) or '-'} · confidence {conf}"
        f"{' · UNSURE' if data['unsure'] else ''}\n"
        f"tokens {router.get('input_tokens', 0)} in / {router.get('output_tokens', 0)} out / "
        f"{router.get('cached_tokens', 0)} cached · cost ${data['cost_usd']:.6f} · "
        f"{lat.get('total_ms', 0):.0f} ms (retrieval {lat.get('retrieval_ms', 0):.0f} ms) · call {data['call_id']}",
        highlight=False, style="dim")
    if data["guard"]["injection_markers"]:
        err_console.print(f"[yellow]injection markers:[/] {', '.join(data['guard']['injection_markers'])}",
                          highlight=False)
    if data["error"]:
        err_console.print(f"[yellow]errors:[/] {data['error']}", highlight=False)


def costs(
    org: str = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG)."),
    days: int = typer.Option(None, "--days", min=1, help="Only the last N days."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Tier distribution, cascade rate, cost per interaction and saving against all-tier3 (each shown as
    not applicable, with the reason, where it cannot be measured: one answerer, no priced tier)."""
    from callwise.routing.costs import cost_report
    from callwise.wiring.routing import tier3_price

    settings = load_settings()

    async def go() -> None:
        async with open_runtime(settings) as rt:
            org_id = await rt.org_id(org)
            report = await cost_report(rt.pool, org_id, tier3_price(settings), days=days,
                                       answerers=configured_answerers(settings))
        if json_out:
            echo_json(report.as_dict())
            return
        if not report.interactions:
            console.print("no answers recorded for this organization yet")
            return
        table = Table("tier", "interactions", "share", title=f"{report.interactions} interactions")
        for tier, n in report.tier_counts.items():
            table.add_row(tier, str(n), f"{report.tier_distribution[tier]:.1%}")
        console.print(table)
        console.print(
            f"answered by {', '.join(report.answerers) or '-'}\n"
            f"cascade rate {_rate(report.cascade_rate)} · total ${report.total_cost_usd:.6f} · "
            f"per interaction ${report.cost_per_interaction:.6f}\n"
            + (f"all-tier3 would cost ${report.all_tier3_cost_usd:.6f} for the {report.priced_interactions} priced "
               f"interactions · saving {_rate(report.saving_vs_tier3)} · "
               if report.saving_vs_tier3 is not None else "saving vs all-tier3 n/a · ")
            + "by purpose " + ", ".join(f"{k} ${v:.6f}" for k, v in report.by_purpose.items()),
            highlight=False)
        labels = {"cascade_rate": "cascade rate", "saving_vs_tier3": "saving vs all-tier3"}
        for figure, reason in report.not_applicable.items():
            console.print(f"{labels.get(figure, figure)}: {reason}", highlight=False, style="dim")

    run(go)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def configured_answerers(settings: Settings) -> int | None:
    """How many distinct answering models the configured tiers are (None if the config does not load)."""
    from callwise.wiring.routing import RoutingConfigError, plan_tiers

    try:
        plan = plan_tiers(settings)
    except RoutingConfigError:
        return None
    return len({(c.provider, c.model, c.base_url) for c in plan.tiers.values()})


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.command("costs")(costs)
