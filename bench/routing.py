"""Routing benchmark over labelled support queries.

    python bench/routing.py --queries bench/data/routing_queries.jsonl [--org orbitly] [--json]
                            [--local-samples 20] [--modality voice]

Each line of the queries file: ``{"id", "query", "expected_tier"}``. For every query the bench retrieves
sources (when the organization has ingested the KB), runs the router built from the current settings
(``callwise.wiring.routing.build_router``; offline that is the offline answerer on every tier) and reports:

- the complexity decision: start-tier distribution and agreement with the labels (with a confusion matrix);
- the router's outcome: final-tier distribution, cascade rate, low-confidence and escalation rates;
- cost per interaction at the configured tier prices (tiers file or defaults): each attempted tier's
  rendered prompt and the answer's tokens priced at that tier, plus a self-evaluation by the cheapest
  tier when the answering tier gives no logprobs; and the saving against sending everything to tier3.
  Offline the recorded cost is $0; the estimate is what the same traffic costs on the cloud tiers;
- the local llama.cpp provider: time to first token and tokens/s, p50 and p95, over ``--local-samples``
  queries (0 to skip).

Per tier, on a public manual (issue 14):

    python bench/routing.py --tiers FILE|default --corpus bench/data/git [--ids git015] [--limit 5]
                            [--price-only] [--no-budget] [--legacy-self-eval] [--data-dir DIR] [--json]

ingests the BEIR-layout corpus (once per ``--data-dir``), retrieves sources for each question with the
project's retriever and has every tier of the tiers file (``default``: the built-in tiers, offline
the offline answerer) answer it alone, streamed as on a voice call. Per tier: input tokens per answer
(the server's usage; p50/p95), time to first token and to the last token, the confidence overhead
(self-evaluation tokens and time; 0 for logprobs and the extractive score), cost at the tier's
configured prices, what the context budget cut, and whether the answer can be spoken
(``callwise.routing.text.speakable_problems`` after ``callwise.routing.speakable``). ``--price-only`` makes no model
calls: each tier's fitted prompt is counted and priced with ``--assume-output-tokens`` of answer and,
where the provider gives no logprobs, a self-evaluation over the cited passages by the cheapest tier.
``--no-budget`` sends whole parents (before issue 14); ``--legacy-self-eval`` grades over every
source, as before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from callwise.routing.complexity import analyze  # noqa: E402
from callwise.routing.confidence import self_eval_messages  # noqa: E402
from callwise.routing.costs import MemoryCostSink  # noqa: E402
from callwise.routing.prompts import PromptLibrary  # noqa: E402
from callwise.routing.text import approx_tokens  # noqa: E402
from callwise.routing.tiers import TIER_NAMES, load_tiers  # noqa: E402
from callwise.routing.types import Grounding, SourceDoc  # noqa: E402
from callwise.wiring.routing import build_router, plan_tiers  # noqa: E402
from callwise.wiring.runtime import open_runtime  # noqa: E402
from callwise.wiring.settings import Settings  # noqa: E402


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(len(s) - 1, int(k) + 1)
    return round(s[lo] + (s[hi] - s[lo]) * (k - lo), 2)


def prompt_tokens(lib: PromptLibrary, query: str, sources: list[SourceDoc], tier: str, modality: str) -> int:
    return sum(approx_tokens(m.content) for m in lib.build(query, sources, tier=tier, modality=modality)) + 8


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = [json.loads(line) for line in Path(args.queries).read_text().splitlines() if line.strip()]
    settings = Settings()
    configured = load_tiers(settings.tiers_file)  # prices of the configured (cloud) tiers
    plan = plan_tiers(settings)
    lib = PromptLibrary()
    cheapest = min(configured.values(), key=lambda c: c.price.input + c.price.output)
    no_logprobs = {n for n, c in configured.items() if c.provider in ("anthropic", "local", "openai_compatible")
                   and not (c.provider == "openai_compatible" and c.logprobs)}
    sink = MemoryCostSink()
    out: dict[str, Any] = {"queries": len(rows), "tiers": {n: f"{c.provider}:{c.model}" for n, c in plan.tiers.items()},
                           "offline": plan.offline,
                           "prices_per_mtok": {n: [c.price.input, c.price.output] for n, c in configured.items()}}
    per_query = []
    local_inputs: list[Grounding] = []
    async with open_runtime(settings) as rt:
        org_id = await rt.org_id(args.org)
        kn = None
        try:
            from callwise.wiring.knowledge import build_knowledge

            kn = build_knowledge(settings, rt.pool)
        except ImportError as exc:
            print(f"retrieval unavailable ({exc}); queries run without sources", file=sys.stderr)
        router = build_router(settings, None, kn.embedder if kn else None)
        router.cost_sink = sink
        for r in rows:
            sources: list[SourceDoc] = []
            if kn is not None:
                res = await kn.retriever.retrieve(r["query"], org_id, top_k=settings.retrieval_top_k)
                sources = [SourceDoc(i + 1, c.document, c.title or "", c.parent_text or c.text)
                           for i, c in enumerate(res.chunks)]
            if len(local_inputs) < args.local_samples:
                local_inputs.append(Grounding(r["query"], tuple(sources)))
            ans = await router.answer(r["query"], sources, modality=args.modality, organization_id=org_id)
            cx = analyze(r["query"])
            out_tok = approx_tokens(ans.text)
            est = 0.0
            for tier in ans.cascade_path:
                est += configured[tier].price.cost(prompt_tokens(lib, r["query"], sources, tier, args.modality), out_tok)
                if tier in no_logprobs:
                    ev = sum(approx_tokens(m.content) for m in self_eval_messages(r["query"], ans.text,
                                                                                  lib.sources_block(sources)))
                    est += cheapest.price.cost(ev, 2)
            tier3 = configured["tier3"].price.cost(prompt_tokens(lib, r["query"], sources, "tier3", args.modality),
                                                   out_tok)
            per_query.append({"id": r["id"], "expected": r.get("expected_tier"), "start": cx.tier,
                              "final": ans.tier, "path": ans.cascade_path, "confidence": ans.confidence,
                              "low_confidence": ans.low_confidence, "escalate": ans.escalate,
                              "cost_recorded": ans.cost_usd, "cost_estimated": est, "cost_all_tier3": tier3,
                              "latency_ms": ans.latency_ms, "factors": cx.factors})
        await router.aclose()

    n = len(per_query)
    start = Counter(q["start"] for q in per_query)
    final = Counter(q["final"] or "failed" for q in per_query)
    labelled = [q for q in per_query if q["expected"]]
    confusion = {e: {s: sum(1 for q in labelled if q["expected"] == e and q["start"] == s) for s in TIER_NAMES}
                 for e in TIER_NAMES}
    est_total = sum(q["cost_estimated"] for q in per_query)
    t3_total = sum(q["cost_all_tier3"] for q in per_query)
    out.update({
        "start_tier_distribution": {t: round(start[t] / n, 3) for t in TIER_NAMES},
        "label_distribution": {t: round(sum(q["expected"] == t for q in labelled) / max(1, len(labelled)), 3)
                               for t in TIER_NAMES},
        "label_agreement": round(sum(q["expected"] == q["start"] for q in labelled) / max(1, len(labelled)), 3),
        "confusion_expected_by_start": confusion,
        "final_tier_distribution": {t: round(c / n, 3) for t, c in sorted(final.items())},
        "cascade_rate": round(sum(len(q["path"]) > 1 for q in per_query) / n, 3),
        "low_confidence_rate": round(sum(q["low_confidence"] for q in per_query) / n, 3),
        "escalation_rate": round(sum(q["escalate"] for q in per_query) / n, 3),
        "cost_recorded_per_interaction": round(sum(e.cost_usd for e in sink.events) / n, 8),
        "cost_per_interaction_at_configured_prices": round(est_total / n, 6),
        "cost_per_interaction_all_tier3": round(t3_total / n, 6),
        "saving_vs_all_tier3": round(1 - est_total / t3_total, 3) if t3_total else None,
        "router_latency_ms_p50": pct([q["latency_ms"] for q in per_query], 0.5),
        "router_latency_ms_p95": pct([q["latency_ms"] for q in per_query], 0.95),
    })
    if args.local_samples:
        out["local"] = await bench_local(settings, local_inputs)
    if args.verbose:
        out["per_query"] = per_query
    return out


async def bench_local(settings: Settings, inputs: list[Grounding]) -> dict[str, Any]:
    """TTFT and decode speed of the in-process llama.cpp model on the same grounded prompts the router
    saw (retrieved sources; the few-shot prefix is shared, so llama.cpp's prefix cache helps as in use)."""
    try:
        import llama_cpp  # noqa: F401

        from callwise.routing.providers.local import LocalLlamaProvider, default_model_path
    except ImportError as exc:
        return {"skipped": f"llama-cpp-python not installed: {exc}"}
    t = time.perf_counter()
    prov = LocalLlamaProvider(default_model_path(settings.data_dir / "models"))
    prov.warm()
    load_s = time.perf_counter() - t
    ttfts, tps, prompt_tokens = [], [], []
    for g_in in inputs:
        s = prov.stream([], grounding=g_in, max_tokens=48, temperature=0.0)
        async for _ in s:
            pass
        g = s.result
        if g is None or g.ttft_ms is None:
            continue
        ttfts.append(g.ttft_ms)
        prompt_tokens.append(g.input_tokens)
        decode_s = (g.latency_ms - g.ttft_ms) / 1000
        if g.output_tokens > 1 and decode_s > 0:
            tps.append((g.output_tokens - 1) / decode_s)
    return {"samples": len(ttfts), "threads": prov.n_threads, "load_s": round(load_s, 2),
            "prompt_tokens_p50": pct(prompt_tokens, 0.5),
            "ttft_ms_p50": pct(ttfts, 0.5), "ttft_ms_p95": pct(ttfts, 0.95),
            "tokens_per_s_p50": pct(tps, 0.5), "tokens_per_s_p95": pct(tps, 0.95),
            "tokens_per_s_p05": pct(tps, 0.05)}


# ---------------------------------------------------------------------------------- per tier (issue 14)
def _beir(data: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").read_text().splitlines() if line.strip()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, filter(str.strip, (data / "queries.jsonl").read_text().splitlines()))}
    return corpus, queries


async def _sources_for(args: argparse.Namespace, questions: dict[str, str]) -> dict[str, list[SourceDoc]]:
    """Ingest the corpus into ``--data-dir`` (once) and retrieve each question's sources."""
    from callwise.routing.types import sources_from
    from callwise.wiring.knowledge import build_knowledge, close_vector_stores

    corpus, _ = _beir(Path(args.corpus))
    if args.max_docs:  # the judged pages of these questions, then other pages up to --max-docs (seeded)
        import random

        qrels = Path(args.corpus) / "qrels" / "test.tsv"
        wanted = {line.split("\t")[1] for line in qrels.read_text().splitlines()[1:]
                  if line.split("\t")[0] in questions}
        others = [d for d in corpus if d["_id"] not in wanted]
        random.Random(14).shuffle(others)
        corpus = [d for d in corpus if d["_id"] in wanted] + others[: max(0, args.max_docs - len(wanted))]
    data_dir = Path(args.data_dir)
    settings = Settings(data_dir=data_dir / "data")
    out: dict[str, list[SourceDoc]] = {}
    async with open_runtime(settings) as rt:
        org = await rt.org_id(f"bench-{Path(args.corpus).name}-{args.max_docs or 'all'}")
        kb = build_knowledge(settings, rt.pool)
        marker = data_dir / f"ingested-{Path(args.corpus).name}-{args.max_docs or 'all'}"
        if not marker.exists():
            root = data_dir / ("corpus-" + Path(args.corpus).name)
            root.mkdir(parents=True, exist_ok=True)
            for doc in corpus:
                text, title = doc.get("text", ""), doc.get("title", "")
                if title and not text.lstrip().startswith("#"):
                    text = f"# {title}\n\n{text}"
                (root / f"{doc['_id'].replace('/', '_')}.md").write_text(text)
            t = time.perf_counter()
            rep = await kb.ingestor.ingest(root, org)
            print(f"ingested {rep.chunks} chunks in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            marker.write_text("ok")
        for qid, text in questions.items():
            res = await kb.retriever.retrieve(text, org, top_k=settings.retrieval_top_k)
            out[qid] = sources_from(res.chunks)
        close_vector_stores()
    return out


def _configs(args: argparse.Namespace) -> tuple[Settings, dict[str, Any]]:
    if args.tiers != "default":
        os.environ["CALLWISE_TIERS_FILE"] = str(Path(args.tiers).resolve())
    settings = Settings()
    return settings, load_tiers(settings.tiers_file)


def _stats(values: list[float]) -> dict[str, float | None]:
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95)}


async def price_only(args: argparse.Namespace, questions: dict[str, str],
                     sources: dict[str, list[SourceDoc]]) -> dict[str, Any]:
    """Cloud tiers priced without calls: each tier's fitted prompt counted, answer tokens assumed."""
    from callwise.routing.prompts import evidence_sources
    from callwise.wiring.routing import tier_budget

    settings, configs = _configs(args)
    lib = PromptLibrary()
    judges = [c for c in configs.values() if c.provider not in ("extractive", "local")]
    judge = min(judges, key=lambda c: c.price.input + c.price.output) if judges else None
    out: dict[str, Any] = {}
    for name, cfg in configs.items():
        budget = None if args.no_budget else tier_budget(settings, name, cfg)
        tokens, costs, evals = [], [], []
        gives_logprobs = cfg.provider in ("openai", "google") or (cfg.provider == "openai_compatible" and cfg.logprobs)
        for qid, q in questions.items():
            fitted = lib.fit(q, sources[qid], tier=name, modality=args.modality, budget=budget)
            # priced with one neutral count (4 characters a token) before and after: the budget's own
            # count carries a safety margin and would overstate the fitted prompts
            n_in = sum(approx_tokens(m.content) + 6 for m in fitted.messages)
            cost = cfg.price.cost(n_in, args.assume_output_tokens)
            ev = 0
            if not gives_logprobs and cfg.provider != "extractive" and judge is not None:
                ev_sources = fitted.sources if args.legacy_self_eval else evidence_sources(" ".join(q.split()), fitted.sources)
                ev = sum(approx_tokens(m.content) + 6 for m in self_eval_messages(q, "x " * args.assume_output_tokens,
                                                                                  lib.sources_block(ev_sources)))
                cost += judge.price.cost(ev, 2)
            tokens.append(n_in)
            costs.append(cost)
            evals.append(ev)
        out[name] = {"provider": f"{cfg.provider}:{cfg.model}", "calls": False,
                     "budget": budget.describe() if budget else None,
                     "input_tokens": _stats([float(t) for t in tokens]),
                     "confidence_tokens": _stats([float(e) for e in evals]),
                     "confidence_method": "logprobs" if gives_logprobs else ("provider" if cfg.provider == "extractive"
                                                                             else "self_eval"),
                     "cost_usd_per_answer": round(statistics.mean(costs), 6) if costs else None,
                     "prices_per_mtok": [cfg.price.input, cfg.price.output]}
    return out


async def per_tier(args: argparse.Namespace, questions: dict[str, str],
                   sources: dict[str, list[SourceDoc]]) -> dict[str, Any]:
    """Every tier answers every question alone, streamed; figures from its cost events."""
    import inspect

    import callwise.routing.router as router_mod
    from callwise.routing.router import CascadingRouter
    from callwise.routing.speakable import speakable
    from callwise.routing.text import speakable_problems

    if args.legacy_self_eval:  # before issue 14: the grade re-sends every source
        router_mod.evidence_sources = lambda text, srcs, **_: list(srcs)  # type: ignore[assignment]
    settings, _ = _configs(args)
    full = build_router(settings)
    out: dict[str, Any] = {}
    extra = {"first_word_s": None} if "first_word_s" in inspect.signature(CascadingRouter).parameters else {}
    for tier in full.tiers:
        if args.no_budget:
            tier.budget = None
        sink = MemoryCostSink()
        router = CascadingRouter([tier], sink, confidence_threshold=settings.confidence_threshold,
                                 timeout_s=args.timeout, **extra)
        rows = []
        for qid, q in questions.items():
            t0 = time.perf_counter()
            first = None
            stream = router.answer_stream(q, sources[qid], modality=args.modality,
                                          organization_id="00000000-0000-0000-0000-000000000000")
            async for _ in stream:
                if first is None:
                    first = (time.perf_counter() - t0) * 1000
            ans = stream.result
            events = [e for e in sink.events if e.interaction_id == ans.interaction_id]
            answer_ev = [e for e in events if e.purpose == "answer"]
            conf_ev = [e for e in events if e.purpose == "self_eval"]
            spoken = speakable(ans.text)
            rows.append({"id": qid, "ok": ans.tier is not None, "error": ans.error,
                         "input_tokens": sum(e.input_tokens for e in answer_ev),
                         "output_tokens": sum(e.output_tokens for e in answer_ev),
                         "ttft_ms": first, "last_token_ms": sum(e.latency_ms for e in answer_ev),
                         "confidence": ans.confidence, "confidence_method": ans.confidence_method,
                         "confidence_tokens": sum(e.input_tokens + e.output_tokens for e in conf_ev),
                         "confidence_ms": sum(e.latency_ms for e in conf_ev),
                         "prompt_tokens_counted": (ans.context.get(tier.name) or {}).get("prompt_tokens"),
                         "cost_usd": sum(e.cost_usd for e in events), "context": ans.context.get(tier.name),
                         "answer": ans.text, "spoken": spoken, "spoken_problems": speakable_problems(spoken, voice=args.modality in ("voice", "video")),
                         "raw_problems": speakable_problems(ans.text)})
        ok = [r for r in rows if r["ok"]]  # providers are shared with the cascade: closed once, at the end
        out[tier.name] = {
            "provider": tier.provider.key, "calls": True, "answered": f"{len(ok)}/{len(rows)}",
            "budget": tier.budget.describe() if tier.budget else None,
            "input_tokens": _stats([float(r["input_tokens"]) for r in ok]),
            "prompt_tokens_counted": _stats([float(r["prompt_tokens_counted"]) for r in rows
                                             if r["prompt_tokens_counted"]]),
            "ttft_ms": _stats([r["ttft_ms"] for r in ok if r["ttft_ms"] is not None]),
            "last_token_ms": _stats([r["last_token_ms"] for r in ok]),
            "confidence_tokens": _stats([float(r["confidence_tokens"]) for r in ok]),
            "confidence_ms": _stats([r["confidence_ms"] for r in ok]),
            "cost_usd_per_answer": round(statistics.mean(r["cost_usd"] for r in rows), 8) if rows else None,
            "spoken_clean": sum(not r["spoken_problems"] for r in ok), "raw_markdown": sum(bool(r["raw_problems"]) for r in ok),
            "errors": [r["error"] for r in rows if not r["ok"]][:3],
        }
        if args.verbose:
            out[tier.name]["per_query"] = rows
    if args.cascade:  # the whole cascade, as a call gets it (tier 1 first, tier 2 when it is not confident)
        sink = MemoryCostSink()
        router = CascadingRouter(full.tiers, sink, confidence_threshold=settings.confidence_threshold,
                                 timeout_s=args.timeout, **extra)
        rows = []
        for qid, q in questions.items():
            stream = router.answer_stream(q, sources[qid], modality=args.modality,
                                          organization_id="00000000-0000-0000-0000-000000000000")
            t0, first = time.perf_counter(), None
            async for _ in stream:
                if first is None:
                    first = (time.perf_counter() - t0) * 1000
            ans = stream.result
            spoken = speakable(ans.text)
            rows.append({"id": qid, "path": ans.cascade_path, "final_tier": ans.tier, "confidence": ans.confidence,
                         "input_tokens": ans.input_tokens, "output_tokens": ans.output_tokens, "ttft_ms": first,
                         "latency_ms": ans.latency_ms, "cost_usd": ans.cost_usd, "error": ans.error,
                         "context": ans.context, "answer": ans.text, "spoken": spoken,
                         "spoken_problems": speakable_problems(spoken, voice=args.modality in ("voice", "video"))})
        await router.aclose()
        out["cascade"] = rows
    await full.aclose()
    return out


async def run_tiers(args: argparse.Namespace) -> dict[str, Any]:
    _, queries = _beir(Path(args.corpus))
    ids = args.ids.split(",") if args.ids else list(queries)[: args.limit]
    questions = {i: queries[i] for i in ids}
    sources = await _sources_for(args, questions)
    body = await (price_only(args, questions, sources) if args.price_only else per_tier(args, questions, sources))
    return {"tiers_file": args.tiers, "corpus": args.corpus, "questions": len(questions), "modality": args.modality,
            "no_budget": args.no_budget, "legacy_self_eval": args.legacy_self_eval,
            "sources_per_question": pct([float(len(v)) for v in sources.values()], 0.5), "tiers": body}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiers", default=None, help="tiers YAML, or 'default': per-tier figures on --corpus")
    ap.add_argument("--corpus", default="bench/data/git", help="BEIR-layout public manual (with --tiers)")
    ap.add_argument("--ids", default=None, help="comma-separated query ids (with --tiers)")
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--price-only", action="store_true", help="count and price prompts, no model calls")
    ap.add_argument("--no-budget", action="store_true", help="whole parents, no context budget (before issue 14)")
    ap.add_argument("--legacy-self-eval", action="store_true", help="self-evaluation over every source (before)")
    ap.add_argument("--assume-output-tokens", type=int, default=80)
    ap.add_argument("--cascade", action="store_true", help="also answer through the whole cascade (with --tiers)")
    ap.add_argument("--timeout", type=float, default=600.0, help="per provider call, seconds (local servers are slow)")
    ap.add_argument("--data-dir", default="/tmp/callwise-bench-routing", help="ingested corpus is kept here")
    ap.add_argument("--max-docs", type=int, default=0,
                    help="ingest only the questions' judged pages plus other pages up to this many (0: all)")
    ap.add_argument("--queries", default=None)
    ap.add_argument("--org", default=None, help="organization slug with the KB ingested (default CALLWISE_DEFAULT_ORG)")
    ap.add_argument("--modality", default="voice", choices=["voice", "video", "screen_share", "text"])
    ap.add_argument("--local-samples", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="include per-query rows")
    args = ap.parse_args()
    if args.tiers is None and args.queries is None:
        ap.error("give --queries FILE (routing labels) or --tiers FILE|default (per tier on --corpus)")
    result = asyncio.run(run_tiers(args) if args.tiers else run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for k, v in result.items():
        if k != "per_query":
            print(f"{k:45s} {v}")


if __name__ == "__main__":
    main()
