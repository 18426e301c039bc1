"""Routing benchmark over labelled support queries.

    python bench/routing.py --queries bench/data/routing_queries.jsonl [--org orbitly] [--json]
                            [--local-samples 20] [--modality voice]

Each line of the queries file: ``{"id", "query", "expected_tier"}``. For every query the bench retrieves
sources (when the organization has ingested the KB), runs the router built from the current settings
(``agent.wiring.routing.build_router``; offline that is the offline answerer on every tier) and reports:

- the complexity decision: start-tier distribution and agreement with the labels (with a confusion matrix);
- the router's outcome: final-tier distribution, cascade rate, low-confidence and escalation rates;
- cost per interaction at the configured tier prices (tiers file or defaults): each attempted tier's
  rendered prompt and the answer's tokens priced at that tier, plus a self-evaluation by the cheapest
  tier when the answering tier gives no logprobs; and the saving against sending everything to tier3.
  Offline the recorded cost is $0; the estimate is what the same traffic costs on the cloud tiers;
- the local llama.cpp provider: time to first token and tokens/s, p50 and p95, over ``--local-samples``
  queries (0 to skip).
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

from agent.runtime import open_runtime  # noqa: E402
from agent.settings import Settings  # noqa: E402
from agent.wiring.routing import build_router, plan_tiers  # noqa: E402
from routing.complexity import analyze  # noqa: E402
from routing.confidence import self_eval_messages  # noqa: E402
from routing.costs import MemoryCostSink  # noqa: E402
from routing.prompts import PromptLibrary  # noqa: E402
from routing.text import approx_tokens  # noqa: E402
from routing.tiers import TIER_NAMES, load_tiers  # noqa: E402
from routing.types import Grounding, SourceDoc  # noqa: E402


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
            from agent.wiring.knowledge import build_knowledge

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
        from routing.providers.local import LocalLlamaProvider, default_model_path
        import llama_cpp  # noqa: F401
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", required=True)
    ap.add_argument("--org", default=None, help="organization slug with the KB ingested (default CALLWISE_DEFAULT_ORG)")
    ap.add_argument("--modality", default="voice", choices=["voice", "video", "screen_share", "text"])
    ap.add_argument("--local-samples", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="include per-query rows")
    args = ap.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for k, v in result.items():
        if k != "per_query":
            print(f"{k:45s} {v}")


if __name__ == "__main__":
    main()
