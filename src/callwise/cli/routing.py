"""`callwise ask` (retrieve, then answer through the tiered router) and `callwise costs`."""

from __future__ import annotations

import logging
import time
from typing import Any

import typer
from rich.table import Table

from callwise.cli.common import CommandError, console, echo_json, err_console, load_settings, run
from callwise.routing.types import RoutedAnswer, SourceDoc, sources_from
from callwise.wiring.runtime import open_runtime
from callwise.wiring.settings import Settings
from callwise.wiring.stack import open_answering

log = logging.getLogger(__name__)


async def retrieve_sources(retriever: Any, query: str, org_id: str,
                           top_k: int) -> tuple[list[SourceDoc], float, str | None]:
    """Retrieve sources for ``query``; the note says why there are none, when there are none."""
    t = time.perf_counter()
    result = await retriever.retrieve(query, org_id, top_k=top_k)
    ms = (time.perf_counter() - t) * 1000
    sources = sources_from(result.chunks)
    note = None if sources else "no documents matched (has this organization ingested any? `callwise ingest PATH`)"
    return sources, ms, note


def answer_json(ans: RoutedAnswer, retrieval_ms: float) -> dict[str, Any]:
    return {
        "answer": ans.text, "tier": ans.tier, "provider": ans.provider, "model": ans.model,
        "confidence": ans.confidence, "confidence_method": ans.confidence_method,
        "low_confidence": ans.low_confidence, "escalate": ans.escalate, "cascade_path": ans.cascade_path,
        "sources": [{"index": s.index, "document": s.document, "title": s.title} for s in ans.sources],
        "input_tokens": ans.input_tokens, "output_tokens": ans.output_tokens, "cached_tokens": ans.cached_tokens,
        "cost_usd": ans.cost_usd, "latency_ms": round(ans.latency_ms, 1), "retrieval_ms": round(retrieval_ms, 1),
        "complexity": ans.complexity, "error": ans.error, "interaction_id": ans.interaction_id,
    }


def ask(
    question: str = typer.Argument(..., help="The customer's question."),
    org: str = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG)."),
    modality: str = typer.Option("text", "--modality", help="voice | video | screen_share | text"),
    top_k: int = typer.Option(None, "--top-k", min=1, help="Sources to retrieve (default CALLWISE_RETRIEVAL_TOP_K)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Answer a question from the knowledge base through the tiered router."""
    from callwise.calls.guard import clean_text
    from callwise.wiring.routing import RoutingConfigError

    question = clean_text(question)  # invalid UTF-8 in argv arrives as lone surrogates

    settings = load_settings()
    if modality not in ("voice", "video", "screen_share", "text"):
        from callwise.cli.common import fail
        fail(f"--modality must be voice, video, screen_share or text, not {modality!r}")

    async def go() -> None:
        try:
            async with open_answering(settings) as stack:
                org_id = await stack.runtime.org_id(org)
                sources, retrieval_ms, note = await retrieve_sources(
                    stack.knowledge.retriever, question, org_id, top_k or settings.retrieval_top_k)
                if note:
                    err_console.print(f"[yellow]note:[/] {note}", highlight=False)
                ans = await stack.router.answer(question, sources, modality=modality,  # type: ignore[arg-type]
                                                organization_id=org_id)
        except RoutingConfigError as exc:  # a bad tier set-up, found when the router is built
            raise CommandError(str(exc)) from exc
        if json_out:
            echo_json(answer_json(ans, retrieval_ms))
            return
        console.print(ans.text, highlight=False, soft_wrap=True)
        if ans.sources:
            console.print("\n[bold]Sources[/]")
            for s in ans.sources:
                console.print(f"  [{s.index}] {s.title or s.document} — {s.document}", highlight=False)
        conf = "n/a" if ans.confidence is None else f"{ans.confidence:.2f} ({ans.confidence_method})"
        console.print(
            f"\ntier {ans.tier or '-'} ({ans.provider or '-'}/{ans.model or '-'}) · path {' → '.join(ans.cascade_path) or '-'}"
            f" · confidence {conf}{' · LOW' if ans.low_confidence else ''}{' · ESCALATE' if ans.escalate else ''}\n"
            f"tokens {ans.input_tokens} in / {ans.output_tokens} out / {ans.cached_tokens} cached · "
            f"cost ${ans.cost_usd:.6f} · latency {ans.latency_ms:.0f} ms (retrieval {retrieval_ms:.0f} ms)",
            highlight=False, style="dim")
        if ans.error:
            err_console.print(f"[yellow]provider errors:[/] {ans.error}", highlight=False)

    if not question.strip():
        from callwise.cli.common import fail
        fail("the question is empty")
    run(go)


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
