"""Compare the offline answerers (extractive vs the local Gemma 3 270M) on the sample KB.

    python bench/offline_answerers.py --golden evaluation/data/golden.jsonl --org orbitly [--limit 40] [--json]

Needs the KB ingested for the organization (``callwise ingest examples/kb --org orbitly``). For each
golden question that has an expected answer (edge cases excluded), retrieves the top-5 sources and asks
both answerers. Scores: semantic similarity of answer to expected answer (MiniLM cosine), recall of the
expected answer's numbers and content words, "correct" = similarity >= 0.7 and every number in the
expected answer present; plus latency. The better answerer becomes ``OFFLINE_DEFAULT`` in
``agent/wiring/routing.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agent.runtime import open_runtime  # noqa: E402
from agent.settings import Settings  # noqa: E402
from routing.providers.extractive import ExtractiveProvider  # noqa: E402
from routing.types import Grounding, SourceDoc  # noqa: E402

STOP = set("the a an of to and or in on for is are be with your you it this that we our can do does how what "
           "when which who by at as from if i my me".split())


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9$%.,-]+", text.lower().replace(",", "")) if w not in STOP and len(w) > 2}


def numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:[.,]\d+)?", text.replace(",", "")))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", default="evaluation/data/golden.jsonl")
    ap.add_argument("--org", default="orbitly")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--answerers", default="extractive,local")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.golden).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("category") != "edge_case" and r.get("expected_answer")]
    # spread over categories deterministically
    rows = sorted(rows, key=lambda r: r["id"])[:: max(1, len(rows) // args.limit)][: args.limit]
    settings = Settings()
    from agent.wiring.knowledge import build_knowledge

    async with open_runtime(settings) as rt:
        org_id = await rt.org_id(args.org)
        kn = build_knowledge(settings, rt.pool)
        embed = kn.embedder.encode
        answerers = {}
        names = args.answerers.split(",")
        if "extractive" in names:
            answerers["extractive"] = ExtractiveProvider(embed)
        if "local" in names:
            from routing.providers.local import LocalLlamaProvider, default_model_path

            local = LocalLlamaProvider(default_model_path(settings.data_dir / "models"))
            t = time.perf_counter()
            local.warm()
            print(f"local model loaded in {time.perf_counter() - t:.2f}s", file=sys.stderr)
            answerers["local"] = local
        results: dict[str, list[dict]] = {n: [] for n in answerers}
        for i, r in enumerate(rows):
            res = await kn.retriever.retrieve(r["query"], org_id, top_k=5)
            sources = tuple(SourceDoc(j + 1, c.document, c.title or "", c.parent_text or c.text)
                            for j, c in enumerate(res.chunks))
            g = Grounding(r["query"], sources)
            for name, prov in answerers.items():
                gen = await prov.generate([], grounding=g, max_tokens=80, temperature=0.0)
                vecs = embed([gen.text or "-", r["expected_answer"]])
                sim = float(vecs[0] @ vecs[1])
                exp_nums = numbers(r["expected_answer"])
                num_ok = exp_nums <= numbers(gen.text)
                cw = content_words(r["expected_answer"])
                recall = len(cw & content_words(gen.text)) / max(1, len(cw))
                results[name].append({"id": r["id"], "category": r["category"], "similarity": sim, "numbers_ok": num_ok,
                                      "recall": recall, "correct": sim >= 0.7 and num_ok, "latency_ms": gen.latency_ms,
                                      "ttft_ms": gen.ttft_ms, "output_tokens": gen.output_tokens,
                                      "confidence": gen.confidence, "answer": gen.text})
            print(f"{i + 1}/{len(rows)} {r['id']} " + " ".join(
                f"{n}: sim={results[n][-1]['similarity']:.2f} ok={results[n][-1]['correct']} "
                f"{results[n][-1]['latency_ms']:.0f}ms" for n in results), file=sys.stderr, flush=True)
    summary = {}
    for name, rs in results.items():
        summary[name] = {
            "n": len(rs),
            "correct": round(sum(x["correct"] for x in rs) / len(rs), 3),
            "similarity_mean": round(statistics.mean(x["similarity"] for x in rs), 3),
            "numbers_ok": round(sum(x["numbers_ok"] for x in rs) / len(rs), 3),
            "content_recall": round(statistics.mean(x["recall"] for x in rs), 3),
            "latency_ms_p50": round(pct([x["latency_ms"] for x in rs], 0.5), 1),
            "latency_ms_p95": round(pct([x["latency_ms"] for x in rs], 0.95), 1),
        }
        if name == "extractive":
            ok = [x["confidence"] for x in rs if x["correct"]]
            bad = [x["confidence"] for x in rs if not x["correct"]]
            summary[name]["confidence_when_correct_p50"] = round(pct(ok, 0.5), 3) if ok else None
            summary[name]["confidence_when_wrong_p50"] = round(pct(bad, 0.5), 3) if bad else None
    if args.json:
        print(json.dumps({"summary": summary, "results": results}, indent=2))
    else:
        for name, s in summary.items():
            print(name, json.dumps(s))
        for k in range(min(6, len(rows))):
            print(f"\nQ {rows[k]['query']}\n  expected: {rows[k]['expected_answer']}")
            for name in results:
                print(f"  {name}: {results[name][k]['answer'][:200]}")


if __name__ == "__main__":
    asyncio.run(main())
