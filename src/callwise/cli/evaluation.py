"""`callwise eval nightly|schedule|golden import|golden export` and `callwise ab create|assign|report|list`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from callwise.cli.common import CommandError, console, echo_json, err_console, fail, load_settings, run
from callwise.wiring.runtime import open_runtime
from callwise.wiring.settings import Settings

eval_app = typer.Typer(help="Nightly evaluation: golden set, RAGAS, retrieval, routing, report, alerts.",
                       no_args_is_help=True)
golden_app = typer.Typer(help="The golden dataset (JSON lines) and its copy in the database.", no_args_is_help=True)
ab_app = typer.Typer(help="A/B experiments: create, assign users, report with significance.", no_args_is_help=True)
eval_app.add_typer(golden_app, name="golden")

ORG = typer.Option(None, "--org", help="Organization slug (default: CALLWISE_DEFAULT_ORG).")


def _thresholds(settings: Settings) -> dict[str, float]:
    return {"faithfulness": settings.threshold_faithfulness,
            "answer_relevancy": settings.threshold_answer_relevancy,
            "context_precision": settings.threshold_context_precision,
            "context_recall": settings.threshold_context_recall}


async def nightly_once(settings: Settings, *, org: str | None, golden_file: Path | None, limit: int,
                       out: Path | None, json_out: bool, window_days: int = 30, max_examples: int | None = None,
                       concurrency: int = 2) -> dict[str, Any]:
    """One nightly run from settings; returns the JSON summary."""
    from callwise.evaluation import golden as golden_mod
    from callwise.evaluation.nightly import NightlyError, NightlyInputs, check_writable, run_nightly
    from callwise.evaluation.ragas_runner import RagasRunner
    from callwise.integrations.slack import SlackWebhook
    from callwise.wiring.evaluation import build_pipeline, gap_writer, judge_config
    from callwise.wiring.routing import RoutingConfigError, plan_tiers, tier3_price
    from callwise.wiring.stack import open_answering

    try:
        golden = golden_mod.load(golden_file)
    except golden_mod.GoldenError as exc:
        raise CommandError(str(exc)) from exc
    if max_examples is not None:
        golden = golden_mod.GoldenSet(golden.examples[:max_examples], golden.version, golden.source)
    if out is not None:
        try:
            check_writable(out)
        except NightlyError as exc:
            raise CommandError(str(exc)) from exc
    try:
        plan = plan_tiers(settings)
    except RoutingConfigError as exc:
        raise CommandError(str(exc)) from exc
    judge, no_judge_reason = judge_config(settings)

    async with open_answering(settings) as stack:
        rt, kb, router = stack.runtime, stack.knowledge, stack.router
        org_id = await rt.org_id(org)
        slug = org or settings.default_org
        try:
            lib = await router.prompt_store.library(org_id) if router.prompt_store else router.prompts
            prompt_versions = lib.versions()
        except Exception:  # noqa: BLE001 - versions are informative; the default library still applies
            prompt_versions = router.prompts.versions()
        config = {
            "golden": {"source": golden.source, "version": golden.version, "examples": len(golden)},
            "retrieval": {"fusion": settings.fusion, "rrf_k": settings.rrf_k, "reranker": settings.reranker,
                          "candidates": settings.retrieval_candidates, "top_k": settings.retrieval_top_k,
                          "embedding_model": kb.embedder.model_path, "vectors": type(kb.vectors).__name__},
            "routing": {"offline": plan.offline, "skipped": plan.skipped,
                        "tiers": {n: {"provider": c.provider, "model": c.model} for n, c in plan.tiers.items()},
                        "confidence_threshold": settings.confidence_threshold},
            "judge": judge.describe() if judge else {"reason": no_judge_reason},
            "production_limit": limit, "window_days": window_days,
        }
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console if json_out else console, transient=True) as bar:
            tasks: dict[str, Any] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            inputs = NightlyInputs(
                pool=rt.pool, org_id=org_id, org_slug=slug, golden=golden,
                pipeline=build_pipeline(settings, kb.retriever, router),
                ragas=RagasRunner(kb.embedder.encode, judge, no_judge_reason=no_judge_reason),
                encode=kb.embedder.encode, thresholds=_thresholds(settings), tier3_price=tier3_price(settings),
                out_dir=out, production_limit=limit, window_days=window_days, concurrency=concurrency,
                webhook=SlackWebhook(settings.slack_webhook_url.get_secret_value()) if settings.slack_webhook_url else None,
                gap_writer=gap_writer(router, org_id, offline=plan.offline), prompt_versions=prompt_versions,
                config=config, progress=progress)
            try:
                result = await run_nightly(inputs)
            except NightlyError as exc:
                raise CommandError(str(exc)) from exc
    return result.to_json()


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table("figure", "value", title=f"nightly run {summary['run_id']} ({summary['seconds']} s)")
    status = summary.get("metric_status", {})
    for name in ("faithfulness", "answer_relevancy", "context_precision", "context_recall",
                 "non_llm_context_precision_with_reference", "non_llm_context_recall", "non_llm_string_similarity",
                 "semantic_similarity", "recall@10", "mrr@10", "ndcg@10", "escalation_recall"):
        v = summary.get(name)
        reason = status.get(name, {}).get("reason") or "no applicable examples"
        shown = f"{v:.3f}" if isinstance(v, (int, float)) else f"not computed: {reason}"
        table.add_row(name, shown)
    r = summary.get("routing", {})
    table.add_row("tier distribution", json.dumps(r.get("tier_distribution")))
    na = r.get("not_applicable") or {}  # one answerer / no priced tier: the figure does not apply
    for key, label in (("cascade_rate", "cascade rate"), ("saving_vs_tier3", "saving vs all-tier3")):
        v = r.get(key)
        table.add_row(label, f"{v:.3f}" if isinstance(v, (int, float)) else na.get(key, "not applicable"))
    table.add_row("cost / interaction (USD)", f"{r.get('cost_per_interaction', 0):.6f}")
    p = summary.get("production", {})
    for k in ("csat", "nps", "escalation_rate", "resolution_rate"):
        table.add_row(f"production {k}", "—" if p.get(k) is None else str(p.get(k)))
    ex = summary.get("examples", {})
    table.add_row("examples", f"{ex.get('total')} ({ex.get('failed')} failed, "
                              f"{ex.get('documents_not_in_kb')} with documents not in the KB)")
    table.add_row("knowledge gaps", str(len(summary.get("knowledge_gaps", []))))
    console.print(table)
    for a in summary.get("alerts", []):
        console.print(f"[bold red]alert:[/] {a['text']}", highlight=False)
    d = summary.get("alert_delivery", {})
    if d.get("error"):
        console.print(f"[yellow]Slack alert not delivered:[/] {d['error']}", highlight=False)
    if summary.get("report"):
        console.print(f"report: {summary['report']}")


@eval_app.command("nightly")
def nightly(
    org: str | None = ORG,
    golden_file: Path | None = typer.Option(None, "--golden", help="JSON-lines golden file (default: the bundled one)."),
    limit: int = typer.Option(50, "--limit", min=0, help="Recent production turns to sample."),
    out: Path | None = typer.Option(None, "--out", help="Directory for report.html."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object with every figure."),
    window_days: int = typer.Option(30, "--window-days", min=1, help="Production window for CSAT/NPS/rates."),
    max_examples: int | None = typer.Option(None, "--max-examples", min=1, help="Only the first N golden examples."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Examples answered at once."),
) -> None:
    """Run the nightly evaluation once and write eval_runs (and DIR/report.html with --out)."""
    settings = load_settings()
    summary = run(lambda: nightly_once(settings, org=org, golden_file=golden_file, limit=limit, out=out,
                                       json_out=json_out, window_days=window_days, max_examples=max_examples,
                                       concurrency=concurrency))
    if json_out:
        echo_json(summary)
    else:
        _print_summary(summary)


@eval_app.command("schedule")
def schedule(
    at: str = typer.Option("02:00", "--at", help="Time of day, HH:MM (24h)."),
    tz: str | None = typer.Option(None, "--tz", help="Time zone (default: CALLWISE_SERVICE_TIMEZONE)."),
    org: str | None = ORG,
    golden_file: Path | None = typer.Option(None, "--golden"),
    limit: int = typer.Option(50, "--limit", min=0),
    out: Path = typer.Option(Path("out"), "--out", help="Report directory (one report per run, overwritten)."),
) -> None:
    """Run the nightly evaluation every day at --at, in this process, until interrupted."""
    from callwise.evaluation.schedule import parse_hhmm, run_daily

    settings = load_settings()
    try:
        parse_hhmm(at)
    except ValueError as exc:
        fail(str(exc))
    zone = tz or settings.service_timezone

    async def job() -> None:
        summary = await nightly_once(settings, org=org, golden_file=golden_file, limit=limit, out=out, json_out=True)
        console.print(f"nightly run {summary['run_id']} finished: {len(summary['alerts'])} alert(s), "
                      f"report {summary['report']}", highlight=False)

    async def go() -> None:
        await run_daily(at, job, tz=zone, on_wait=lambda due: console.print(f"next nightly run at {due.isoformat()}"))

    run(go)


@golden_app.command("import")
def golden_import(
    file: Path | None = typer.Argument(None, help="JSON-lines file (default: the bundled golden set)."),
    org: str | None = ORG,
    replace: bool = typer.Option(False, "--replace", help="Remove examples that are not in the file."),
) -> None:
    """Load a golden file into the golden_dataset table."""
    from callwise.evaluation import golden as golden_mod

    settings = load_settings()

    async def go() -> None:
        try:
            gs = golden_mod.load(file)
        except golden_mod.GoldenError as exc:
            raise CommandError(str(exc)) from exc
        async with open_runtime(settings) as rt:
            n = await golden_mod.import_to_db(rt.pool, await rt.org_id(org), gs, replace=replace)
        console.print(f"imported {n} examples (version {gs.version}) into {org or settings.default_org}")

    run(go)


@golden_app.command("export")
def golden_export(
    out: Path | None = typer.Option(None, "--out", help="Write here instead of stdout."),
    org: str | None = ORG,
) -> None:
    """Write the golden_dataset table as JSON lines."""
    from callwise.evaluation import golden as golden_mod

    settings = load_settings()

    async def go() -> str:
        async with open_runtime(settings) as rt:
            return golden_mod.dump_lines(await golden_mod.export_from_db(rt.pool, await rt.org_id(org)))

    text = run(go)
    if not text:
        fail(f"no golden examples in {org or settings.default_org}; run `callwise eval golden import` first")
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    console.print(f"wrote {text.count(chr(10))} examples to {out}")


# -- A/B ------------------------------------------------------------------------------------------
def _json_arg(value: str, name: str) -> dict[str, Any]:
    try:
        obj = json.loads(value)
    except ValueError:
        fail(f"{name} must be a JSON object, e.g. '{{\"temperature\": 0.2}}'")
    if not isinstance(obj, dict):
        fail(f"{name} must be a JSON object")
    return obj


@ab_app.command("create")
def ab_create(
    name: str = typer.Argument(...),
    control: str = typer.Option("{}", "--control", help="JSON config: prompt_version, temperature, rerank, chunk_count."),
    treatment: str = typer.Option(..., "--treatment", help="JSON config for the treatment variant."),
    split: float = typer.Option(0.5, "--split", help="Share of users in treatment, in (0, 1)."),
    description: str = typer.Option("", "--description"),
    org: str | None = ORG,
) -> None:
    """Create (or update) an experiment."""
    from callwise.evaluation import ab

    settings = load_settings()
    c, t = _json_arg(control, "--control"), _json_arg(treatment, "--treatment")

    async def go() -> str:
        async with open_runtime(settings) as rt:
            try:
                return await ab.create_experiment(rt.pool, await rt.org_id(org), name, c, t, traffic_split=split,
                                                  description=description)
            except ab.ExperimentError as exc:
                raise CommandError(str(exc)) from exc

    console.print(f"experiment {name} ({run(go)})")


@ab_app.command("assign")
def ab_assign(name: str = typer.Argument(...), user: str = typer.Argument(...), org: str | None = ORG) -> None:
    """Show the variant (and config) a user gets; the same user always gets the same variant."""
    from callwise.evaluation import ab

    settings = load_settings()

    async def go() -> tuple[str, dict[str, Any]]:
        async with open_runtime(settings) as rt:
            try:
                return await ab.assign(rt.pool, await rt.org_id(org), name, user)
            except ab.ExperimentError as exc:
                raise CommandError(str(exc)) from exc

    variant, config = run(go)
    echo_json({"experiment": name, "user": user, "variant": variant, "config": config})


@ab_app.command("report")
def ab_report(
    name: str = typer.Argument(...),
    org: str | None = ORG,
    json_out: bool = typer.Option(False, "--json"),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
    min_per_variant: int = typer.Option(30, "--min-per-variant", min=1, help="Below this, the sample is too small."),
) -> None:
    """Per-variant resolution rate, CSAT, escalation rate, NPS, sizes and a chi-square p-value."""
    from callwise.evaluation import ab

    settings = load_settings()

    async def go() -> ab.ABReport:
        async with open_runtime(settings) as rt:
            try:
                return await ab.report(rt.pool, await rt.org_id(org), name, alpha=alpha,
                                       min_per_variant=min_per_variant)
            except ab.ExperimentError as exc:
                raise CommandError(str(exc)) from exc

    rep = run(go)
    if json_out:
        echo_json(rep.to_json())
        return
    table = Table("variant", "n", "resolution rate", "CSAT", "escalation rate", "NPS",
                  title=f"experiment {name} ({rep.status}, {rep.traffic_split:.0%} treatment)")
    for v in rep.variants.values():
        table.add_row(v.variant, str(v.n), "—" if v.resolution_rate is None else f"{v.resolution_rate:.1%}",
                      "—" if v.csat_mean is None else f"{v.csat_mean:.2f} (n={v.csat_n})",
                      "—" if v.escalation_rate is None else f"{v.escalation_rate:.1%}",
                      "—" if v.nps is None else f"{v.nps:+.0f} (n={v.nps_n})")
    console.print(table)
    for c in rep.comparisons:
        p = "—" if c.test.p_value is None else f"{c.test.p_value:.4f}"
        console.print(f"{c.metric}: chi-square p = {p}; {c.verdict}", highlight=False)


@ab_app.command("list")
def ab_list(org: str | None = ORG) -> None:
    """List experiments."""
    settings = load_settings()

    async def go() -> list[Any]:
        async with open_runtime(settings) as rt:
            return await rt.pool.fetch("select name, status, traffic_split, control_config, treatment_config, "
                                       "created_at from experiments where organization_id = $1 order by created_at",
                                       await rt.org_id(org))

    table = Table("name", "status", "split", "control", "treatment")
    for r in run(go):
        table.add_row(r["name"], r["status"], f"{r['traffic_split']:.2f}", str(r["control_config"]),
                      str(r["treatment_config"]))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
    app.add_typer(ab_app, name="ab")

