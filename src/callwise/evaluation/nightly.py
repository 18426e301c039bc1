"""The nightly evaluation run: golden set through the pipeline, RAGAS, retrieval, routing, production
figures, knowledge gaps, alerts, report, and one ``eval_runs`` row.

Everything the run needs arrives as arguments (pipeline, RAGAS runner, embedder, gap labeller,
webhook); ``agent/commands/evaluation.py`` builds them from settings. A failure on one example is
recorded on that example and the run goes on; the run itself is ``failed`` only when it cannot
finish at all, and then the row says why.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from callwise.evaluation import alerts as alerting
from callwise.evaluation.golden import GoldenSet, resolve_documents
from callwise.evaluation.metrics import mean_defined, retrieval_scores
from callwise.evaluation.pipeline import Pipeline, PipelineOutput
from callwise.evaluation.ragas_runner import LLM_METRICS, RagasReport, RagasRunner, RagasSample
from callwise.evaluation.results import ExampleResult, NightlyResult
from callwise.integrations.slack import SlackWebhook
from callwise.knowledge.gaps import Question, cluster_questions, fallback_label
from callwise.routing.costs import cost_report, summarize
from callwise.routing.pricing import Price

K = 10
EncodeFn = Callable[[list[str]], np.ndarray]
GapWriter = Callable[[list[str]], Awaitable[tuple[str, str]]]  # sample questions -> (label, outline)
Progress = Callable[[str, int, int], None]  # phase, done, total


class NightlyError(RuntimeError):
    """The run cannot start or finish (message says why)."""


@dataclass
class NightlyInputs:
    pool: asyncpg.Pool
    org_id: str
    org_slug: str
    golden: GoldenSet
    pipeline: Pipeline
    ragas: RagasRunner
    encode: EncodeFn
    thresholds: dict[str, float]
    tier3_price: Price
    out_dir: Path | None = None
    production_limit: int = 50
    window_days: int = 30
    concurrency: int = 2
    webhook: SlackWebhook | None = None
    gap_writer: GapWriter | None = None
    prompt_versions: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    gap_eps: float = 0.35


def check_writable(out_dir: Path) -> None:
    """Fail before an hour of work, not after it, when the report cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise NightlyError(f"report directory {out_dir} is not writable: {exc.strerror or exc}") from exc


# -- golden examples ----------------------------------------------------------------------------
async def _answer_all(inp: NightlyInputs, run_id: str, examples: list[ExampleResult]) -> None:
    sem = asyncio.Semaphore(max(1, inp.concurrency))
    done = 0

    async def one(ex: ExampleResult) -> None:
        nonlocal done
        async with sem:
            try:
                out: PipelineOutput = await inp.pipeline.run(ex.query, inp.org_id, interaction_id=f"eval:{run_id}:{ex.id}")
                ex.answer, ex.contexts, ex.retrieved_documents = out.answer, out.contexts, out.documents
                ex.tier, ex.cascade_path, ex.confidence = out.tier, out.cascade_path, out.confidence
                ex.escalate, ex.escalation_rule = out.escalate, out.escalation_rule
                ex.cost_usd, ex.latency_ms, ex.retrieval_ms = out.cost_usd, out.latency_ms, out.retrieval_ms
                ex.kind, ex.retrieved = out.kind, out.retrieved
                if out.error and not out.answer:
                    ex.error = f"pipeline: {out.error}"
            except Exception as exc:  # noqa: BLE001 - one example must not stop the run
                ex.error = f"{type(exc).__name__}: {exc}"[:300]
            # a turn that ended before retrieval (an escalation rule fired) has no ranking to score
            if ex.relevant_documents and ex.error is None and ex.retrieved:
                ex.retrieval = retrieval_scores(ex.retrieved_documents, ex.relevant_documents, K)
            done += 1
            if inp.progress:
                inp.progress("answering golden set", done, len(examples))

    await asyncio.gather(*(one(ex) for ex in examples))


async def _reference_contexts(inp: NightlyInputs, examples: list[ExampleResult]) -> dict[str, list[str]]:
    """Per example, the passage of each relevant document that best matches the expected answer.

    ragas' reference-based context metrics compare retrieved passages with reference passages;
    the golden set names documents, so the reference passage of a document is its parent chunk
    (the unit the answering model sees) closest to query + expected answer.
    """
    wanted = sorted({d for ex in examples for d in ex.relevant_documents})
    if not wanted:
        return {}
    rows = await inp.pool.fetch(
        """select d.source, c.text from chunks c join documents d on d.id = c.document_id
            where c.organization_id = $1 and d.source = any($2) and c.kind = 'parent'
            order by d.source, c.seq""", inp.org_id, wanted)
    by_doc: dict[str, list[str]] = {}
    for r in rows:
        by_doc.setdefault(r["source"], []).append(r["text"])
    texts = [t for doc in wanted for t in by_doc.get(doc, [])]
    if not texts:
        return {}
    vecs = dict(zip(texts, inp.encode(texts), strict=True))
    targets = [ex for ex in examples if ex.relevant_documents]
    qvecs = inp.encode([f"{ex.query} {ex.expected_answer}" for ex in targets])
    out: dict[str, list[str]] = {}
    for ex, q in zip(targets, qvecs, strict=True):
        refs = []
        for doc in ex.relevant_documents:
            cands = by_doc.get(doc, [])
            if cands:
                refs.append(max(cands, key=lambda t: float(np.dot(vecs[t], q))))
        out[ex.id] = refs
    return out


# -- production ------------------------------------------------------------------------------------
async def production_figures(pool: asyncpg.Pool, org_id: str, window_days: int) -> dict[str, Any]:
    """CSAT, NPS, escalation and resolution rates over support sessions of the last ``window_days``."""
    s = await pool.fetchrow(
        """select count(*) as sessions,
                  count(*) filter (where s.resolved_by_ai is not null) as resolution_known,
                  count(*) filter (where s.resolved_by_ai) as resolved,
                  count(*) filter (where s.status = 'escalated'
                                   or exists (select 1 from escalations e where e.session_id = s.id)) as escalated
             from sessions s
            where s.organization_id = $1 and s.kind = 'support'
              and s.started_at >= now() - make_interval(days => $2)""", org_id, window_days)
    r = await pool.fetchrow(
        """select count(*) as n, avg(rating)::float as csat,
                  count(nps) as nps_n, count(*) filter (where nps >= 9) as promoters,
                  count(*) filter (where nps <= 6) as detractors
             from survey_responses where organization_id = $1
              and created_at >= now() - make_interval(days => $2)""", org_id, window_days)
    n_sessions = int(s["sessions"])
    return {
        "window_days": window_days,
        "sessions": n_sessions,
        "surveys": int(r["n"]),
        "csat": round(r["csat"], 3) if r["csat"] is not None else None,
        "nps": round(100.0 * (r["promoters"] - r["detractors"]) / r["nps_n"], 1) if r["nps_n"] else None,
        "nps_responses": int(r["nps_n"]),
        "escalation_rate": round(s["escalated"] / n_sessions, 4) if n_sessions else None,
        "resolution_rate": round(s["resolved"] / s["resolution_known"], 4) if s["resolution_known"] else None,
    }


async def sample_production_turns(pool: asyncpg.Pool, org_id: str, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` answered assistant turns (those stored with the passages the model saw),
    with the customer turn they answered; ``contexts`` are those passages' texts, in order."""
    if limit <= 0:
        return []
    rows = await pool.fetch(
        """select a.id, a.text as answer, a.passages, a.tier, a.confidence, a.escalated, a.created_at,
                  (select u.text from turns u where u.organization_id = a.organization_id
                      and u.session_id = a.session_id and u.seq < a.seq
                      and u.role = 'user' order by u.seq desc limit 1) as question
             from turns a
            where a.organization_id = $1 and a.role = 'assistant' and a.tier is not null
              and jsonb_array_length(a.passages) > 0
            order by a.created_at desc limit $2""", org_id, limit)
    out = []
    for r in rows:
        passages = r["passages"]
        if isinstance(passages, str):
            passages = json.loads(passages)
        contexts = [str(p.get("text") or "") for p in passages if isinstance(p, dict)]
        out.append({"id": str(r["id"]), "question": r["question"] or "", "answer": r["answer"],
                    "contexts": [c for c in contexts if c], "tier": r["tier"], "confidence": r["confidence"],
                    "escalated": r["escalated"],
                    "passages": [{k: p.get(k) for k in ("index", "chunk_id", "document", "sha256")}
                                 for p in passages if isinstance(p, dict)]})
    return out


# -- knowledge gaps -----------------------------------------------------------------------------------
async def record_gaps(inp: NightlyInputs, run_id: str) -> list[dict[str, Any]]:
    """Cluster ``unresolved_problems`` into ``knowledge_gaps`` for this run (replacing earlier open ones)."""
    rows = await inp.pool.fetch(
        """select question, occurrence_count, escalated_count from unresolved_problems
            where organization_id = $1 order by occurrence_count desc, last_seen_at desc limit 5000""", inp.org_id)
    if not rows:
        return []
    questions = [Question(r["question"], int(r["occurrence_count"]), int(r["escalated_count"])) for r in rows]
    clusters = cluster_questions(questions, inp.encode([q.text for q in questions]), eps=inp.gap_eps)
    gaps: list[dict[str, Any]] = []
    for c in clusters[:25]:
        label, outline = fallback_label(c.questions), ""
        if inp.gap_writer is not None:
            try:
                label, outline = await inp.gap_writer(c.sample_questions)
            except Exception as exc:  # noqa: BLE001 - a label is nice to have; the gap is recorded anyway
                outline = f"(outline not written: {type(exc).__name__})"
        gaps.append({"label": label[:200] or fallback_label(c.questions), "article_outline": outline,
                     "sample_questions": c.sample_questions, "frequency": c.frequency,
                     "escalation_rate": round(c.escalation_rate, 4), "impact": round(c.impact, 3)})
    async with inp.pool.acquire() as con, con.transaction():
        await con.execute("delete from knowledge_gaps where organization_id = $1 and status = 'open' "
                          "and eval_run_id is not null", inp.org_id)
        await con.executemany(
            """insert into knowledge_gaps (organization_id, eval_run_id, label, article_outline, sample_questions,
                                           frequency, escalation_rate, impact)
               values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)""",
            [(inp.org_id, run_id, g["label"], g["article_outline"], json.dumps(g["sample_questions"]),
              g["frequency"], g["escalation_rate"], g["impact"]) for g in gaps])
    return gaps


# -- the run --------------------------------------------------------------------------------------------
def _finite(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(v, nd)


def aggregate(examples: Sequence[ExampleResult], ragas: RagasReport, routing: dict[str, Any],
              production: dict[str, Any], prod_ragas: RagasReport | None) -> dict[str, Any]:
    m: dict[str, Any] = {}
    for name, s in ragas.summaries.items():
        m[name] = _r(s.mean)
    for key in (f"recall@{K}", f"mrr@{K}", f"ndcg@{K}"):
        m[key] = _r(mean_defined(ex.retrieval.get(key) for ex in examples))
    status = {name: {"status": s.status, "n": s.n, "n_failed": s.n_failed, "reason": s.reason}
              for name, s in ragas.summaries.items()}
    n_ret = sum(1 for ex in examples if ex.retrieval)
    status[f"recall@{K}"] = {"status": "computed" if n_ret else "not_computed", "n": n_ret, "n_failed": 0,
                             "reason": None if n_ret else "no example has relevant documents in the knowledge base"}
    by_cat: dict[str, dict[str, Any]] = {}
    for cat in ("simple", "moderate", "complex", "edge_case"):
        exs = [ex for ex in examples if ex.category == cat]
        if exs:
            by_cat[cat] = {
                "n": len(exs),
                f"recall@{K}": _r(mean_defined(ex.retrieval.get(f"recall@{K}") for ex in exs)),
                "semantic_similarity": _r(mean_defined(ex.ragas.get("semantic_similarity") for ex in exs)),
                "tier_match": _r(sum(1 for ex in exs if ex.tier == ex.expected_tier) / len(exs)),
            }
    esc = [ex for ex in examples if "escalation" in ex.tags]
    m["by_category"] = by_cat
    m["escalation_recall"] = _r(sum(1 for ex in esc if ex.escalate) / len(esc)) if esc else None
    m["routing"] = routing
    m["production"] = {**production, **({k: _r(s.mean) for k, s in prod_ragas.summaries.items() if k in LLM_METRICS}
                                        if prod_ragas else {})}
    m["metric_status"] = status
    m["examples"] = {"total": len(examples), "failed": sum(1 for ex in examples if ex.error),
                     "documents_not_in_kb": sum(1 for ex in examples if ex.missing_documents)}
    return json.loads(json.dumps(m, default=_finite), parse_constant=lambda c: None)


async def run_nightly(inp: NightlyInputs) -> NightlyResult:
    t0 = time.perf_counter()
    if len(inp.golden) == 0:
        raise NightlyError("the golden set is empty")
    if inp.out_dir is not None:
        check_writable(inp.out_dir)
    known = [r["source"] for r in await inp.pool.fetch(
        "select source from documents where organization_id = $1", inp.org_id)]
    if not known:
        raise NightlyError(f"organization {inp.org_slug!r} has no documents; run `callwise ingest PATH --org "
                           f"{inp.org_slug}` first")
    run_id = str(await inp.pool.fetchval(
        """insert into eval_runs (organization_id, status, thresholds, config, prompt_versions, details)
           values ($1, 'running', $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb) returning id""",
        inp.org_id, json.dumps(inp.thresholds), json.dumps(inp.config, default=str),
        json.dumps(inp.prompt_versions), json.dumps({"golden": {"source": inp.golden.source,
                                                                "version": inp.golden.version}})))
    try:
        return await _run(inp, run_id, known, t0)
    except BaseException as exc:
        await inp.pool.execute(
            "update eval_runs set status = 'failed', finished_at = now(), details = details || $2::jsonb "
            "where id = $1", run_id, json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
        raise


async def _run(inp: NightlyInputs, run_id: str, known: list[str], t0: float) -> NightlyResult:
    examples: list[ExampleResult] = []
    for g in inp.golden.examples:
        resolved, missing = resolve_documents(g.relevant_documents, known)
        examples.append(ExampleResult(g.id, g.category, g.query, g.expected_answer, g.expected_tier, list(g.tags),
                                      resolved, missing))

    # 1. answer every example through the pipeline, capturing its cost events in memory
    router = getattr(inp.pipeline, "router", None)
    from callwise.routing.costs import MemoryCostSink

    sink = MemoryCostSink()
    saved_sink = getattr(router, "cost_sink", None)
    if router is not None:
        router.cost_sink = sink  # evaluation traffic must not count as production cost
    try:
        await _answer_all(inp, run_id, examples)
    finally:
        if router is not None and saved_sink is not None:
            router.cost_sink = saved_sink

    # 2. RAGAS on the answered examples
    refs = await _reference_contexts(inp, examples)
    samples = [RagasSample(ex.id, ex.query, ex.answer, ex.contexts, ex.expected_answer, refs.get(ex.id))
               for ex in examples if ex.error is None]
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if inp.progress:
            inp.progress("scoring (ragas)", done, len(samples))

    ragas = await inp.ragas.evaluate(samples, on_progress=tick)
    for ex in examples:
        ex.ragas = ragas.scores.get(ex.id, {})
        ex.ragas_errors = ragas.errors.get(ex.id, {})

    # 3. routing figures from the golden run, production figures from the tables
    answerers = getattr(router, "answerers", None)
    n_answerers = len(answerers) if isinstance(answerers, list) and answerers else None
    routing = summarize([asdict(e) for e in sink.events], inp.tier3_price, answerers=n_answerers).as_dict()
    routing["golden_run"] = True
    prod_cost = (await cost_report(inp.pool, inp.org_id, inp.tier3_price, days=inp.window_days,
                                   answerers=n_answerers)).as_dict()
    production = await production_figures(inp.pool, inp.org_id, inp.window_days)
    production["routing"] = prod_cost
    turns = await sample_production_turns(inp.pool, inp.org_id, inp.production_limit)
    production["sampled_turns"] = len(turns)
    prod_ragas = None
    if turns and inp.ragas.judge is not None:  # reference-free metrics need a judge
        prod_ragas = await inp.ragas.evaluate(
            [RagasSample(t["id"], t["question"], t["answer"], t["contexts"]) for t in turns
             if t["question"] and t["contexts"]])

    # 4. knowledge gaps, figures, alerts
    if inp.progress:
        inp.progress("knowledge gaps", 0, 1)
    gaps = await record_gaps(inp, run_id)
    metrics = aggregate(examples, ragas, routing, production, prod_ragas)
    alerts = alerting.check_thresholds(metrics, inp.thresholds)
    report_path = str(inp.out_dir / "report.html") if inp.out_dir else None
    delivery = await alerting.deliver(alerts, inp.webhook, org=inp.org_slug, run_id=run_id, report_path=report_path)
    n_failed = sum(1 for ex in examples if ex.error)
    details = {
        "golden": {"source": inp.golden.source, "version": inp.golden.version},
        "ragas": ragas.to_json(),
        "alert_delivery": asdict(delivery),
        "examples": [asdict(ex) for ex in examples],
        "production_sample": [{**t, "ragas": prod_ragas.scores.get(t["id"], {}) if prod_ragas else {}}
                              for t in turns],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    await inp.pool.execute(
        """update eval_runs set status = 'completed', finished_at = now(), n_examples = $2, n_failed = $3,
                  metrics = $4::jsonb, alerts = $5::jsonb, details = $6::jsonb, report_path = $7 where id = $1""",
        run_id, len(examples), n_failed, json.dumps(metrics), json.dumps([a.to_json() for a in alerts]),
        json.dumps(details, default=_finite), report_path)
    result = NightlyResult(run_id, "completed", metrics, examples, [a.to_json() for a in alerts], asdict(delivery),
                           gaps, report_path, time.perf_counter() - t0)
    if inp.out_dir is not None:
        from callwise.evaluation.report import render_report, trend_rows

        trends = await trend_rows(inp.pool, inp.org_id, limit=30)
        try:
            (inp.out_dir / "report.html").write_text(render_report(result, trends, inp.thresholds, org=inp.org_slug),
                                                     encoding="utf-8")
        except OSError as exc:
            raise NightlyError(f"cannot write {inp.out_dir / 'report.html'}: {exc.strerror or exc}") from exc
    return result
