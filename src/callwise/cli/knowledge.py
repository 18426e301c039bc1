"""`callwise ingest PATH` and `callwise search "QUERY"`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from callwise.cli.common import CommandError, console, echo_json, fail, load_settings, run
from callwise.wiring.stack import open_knowledge

MODES = ("bm25", "vector", "hybrid", "hybrid+rerank")


def ingest(
    path: Path | None = typer.Argument(None, help="A file or a directory of .md, .html, .txt, .pdf files."),
    org: str | None = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    reembed: bool = typer.Option(False, "--reembed", help="First re-embed the organization's chunks with the "
                                 "configured embedder (after changing CALLWISE_EMBEDDING_PROVIDER or _MODEL)."),
) -> None:
    """Sync a folder or file into the knowledge base: add new, re-chunk changed, remove deleted."""
    settings = load_settings()
    if path is None and not reembed:
        fail("give a file or directory to ingest (or --reembed)")
    if path is not None and not path.exists():
        fail(f"no such file or directory: {path}")

    async def go() -> None:
        async with open_knowledge(settings) as stack:
            rt, kb = stack.runtime, stack.knowledge
            org_id = await rt.org_id(org)
            if reembed:
                await _reembed(settings, rt.pool, org_id, kb, org or settings.default_org, json_out)
            if path is None:
                return
            with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.description}"), console=console, transient=True,
                          disable=json_out) as bar:
                task = bar.add_task("", total=None)

                def on_progress(done: int, total: int, item: object) -> None:
                    desc = f"{getattr(item, 'status', '')} {getattr(item, 'source', '')}" if item else "scanning"
                    bar.update(task, completed=done, total=total, description=desc)

                report = await kb.ingestor.ingest(path, org_id, progress=on_progress)
        if json_out:
            echo_json(report.as_dict())
            return
        c = report.counts
        console.print(
            f"[bold]{org or settings.default_org}[/]: {c['added']} added, {c['changed']} changed, "
            f"{c['removed']} removed, {c['unchanged']} unchanged, {c['skipped']} skipped; "
            f"{report.chunks} chunks in {report.seconds:.1f} s", highlight=False,
        )
        notable = [i for i in report.items if i.status in ("skipped", "removed")]
        if notable:
            table = Table("status", "document", "reason")
            for i in notable:
                table.add_row(i.status, i.source, i.reason)
            console.print(table)

    run(go)


async def _reembed(settings, pool, org_id: str, kb, org: str, json_out: bool) -> None:  # type: ignore[no-untyped-def]
    from callwise.knowledge.embedders import EmbeddingError
    from callwise.knowledge.embedders.reembed import ReembedError, reembed

    if settings.qdrant_url:
        raise CommandError("--reembed re-embeds the Postgres knowledge store; with QDRANT_URL ingest into a new "
                           "collection instead")
    with Progress(TextColumn("[bold]re-embed"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=json_out) as bar:
        task = bar.add_task("", total=None)
        try:
            rep = await reembed(pool, org_id, kb.embedder,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
        except (EmbeddingError, ReembedError) as exc:
            raise CommandError(f"re-embedding failed, nothing was changed: {exc}") from exc
    # the org's vector index file is keyed by the knowledge version: rebuild it now rather than leave every
    # process on the exact fallback until the next ingest
    refresh = getattr(kb.vectors, "refresh_index", None)
    index = await refresh(org_id) if refresh is not None else None
    if json_out:
        echo_json({"reembed": rep.as_dict(), "index": index})
    else:
        console.print(f"[bold]{org}[/]: re-embedded {rep.chunks} chunks with {rep.model} ({rep.dim} dimensions; "
                      f"was {rep.model_before or 'none'}) in {rep.seconds:.1f} s", highlight=False)


def search(
    query: str = typer.Argument(..., help="The question or keywords."),
    org: str | None = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG)."),
    mode: str = typer.Option("hybrid+rerank", "--mode", help="bm25 | vector | hybrid | hybrid+rerank"),
    top_k: int = typer.Option(5, "--top-k", min=1, max=100, help="How many chunks to return."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list of chunks."),
) -> None:
    """Search the knowledge base and show why each chunk won (every stage's rank and score)."""
    from callwise.calls.guard import clean_text

    query = clean_text(query)  # invalid UTF-8 in argv arrives as lone surrogates
    settings = load_settings()
    if mode not in MODES:
        fail(f"--mode must be one of {', '.join(MODES)}")
    if not query.strip():
        fail("the query is empty")

    async def go() -> None:
        from callwise.infra.db import find_organization

        async with open_knowledge(settings) as stack:
            slug = org or settings.default_org
            org_id = await find_organization(stack.runtime.pool, slug)
            if org_id is None:
                raise CommandError(f"unknown organization {slug!r}; run `callwise ingest PATH --org {slug}` first")
            result = await stack.knowledge.retriever.retrieve(query, org_id, top_k=top_k, mode=mode)
        if json_out:
            echo_json([c.as_dict() for c in result.chunks])
            return
        console.print(f"query type [bold]{result.query_type}[/], mode {mode}, reranker {result.reranker}"
                      + (f" (fell back: {result.rerank_fallback})" if result.rerank_fallback else "")
                      + " · " + ", ".join(f"{k} {v:.1f} ms" for k, v in result.timings_ms.items()), highlight=False)
        if not result.chunks:
            console.print("no results")
            return
        table = Table("#", "score", Column("document", overflow="fold"), "section", "stages (rank/score)", "text",
                      show_lines=True)
        for i, c in enumerate(result.chunks, start=1):
            stages = "\n".join(f"{k} #{v.rank} {v.score:.3f}" for k, v in c.stages.items())
            snippet = c.text if len(c.text) <= 240 else c.text[:240] + "…"
            table.add_row(str(i), f"{c.score:.3f}", c.document, " > ".join(c.title_path), stages, snippet)
        console.print(table)

    run(go)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("search")(search)
