"""Retrieval quality on a BEIR-layout dataset: Recall@10, MRR@10, nDCG@10 per retrieval mode.

    python bench/retrieval_quality.py --data bench/data/orbitly [--json] [--k 10]

Reads ``corpus.jsonl`` ({_id, title, text}), ``queries.jsonl`` ({_id, text}) and ``qrels/test.tsv``
(query-id, corpus-id, graded score), ingests the corpus into a fresh organization (embedded
Postgres and qdrant-edge under a temporary directory unless DATABASE_URL / QDRANT_URL are set),
and ranks documents by their first chunk in each mode's result list. Modes: bm25, vector, hybrid
RRF, hybrid weighted (alpha per query type), hybrid RRF + local embedding re-score, and hybrid RRF
+ Cohere Rerank when COHERE_API_KEY is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_beir(data: Path) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").read_text().splitlines() if line.strip()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, filter(str.strip, (data / "queries.jsonl").read_text().splitlines()))}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for i, line in enumerate((data / "qrels" / "test.tsv").read_text().splitlines()):
        parts = line.split("\t")
        if i == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        qid, did, score = parts[0], parts[1], int(parts[2])
        if score > 0:
            qrels[qid][did] = score
    return corpus, {q: t for q, t in queries.items() if q in qrels}, dict(qrels)


def metrics(ranked: list[str], rel: dict[str, int], k: int) -> dict[str, float]:
    top = ranked[:k]
    dcg = sum((rel.get(d, 0)) / math.log2(i + 2) for i, d in enumerate(top))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    rr = next((1.0 / (i + 1) for i, d in enumerate(top) if rel.get(d, 0) > 0), 0.0)
    recall = len(set(top) & set(rel)) / len(rel)
    return {"ndcg": dcg / idcg if idcg else 0.0, "mrr": rr, "recall": recall}


def write_corpus(corpus: list[dict], root: Path) -> dict[str, str]:
    """One Markdown file per corpus entry; returns source -> corpus id."""
    mapping: dict[str, str] = {}
    for i, doc in enumerate(corpus):
        name = f"{i:05d}.md"
        text = doc.get("text", "")
        title = doc.get("title", "")
        if title and not text.lstrip().startswith("#"):
            text = f"# {title}\n\n{text}"
        (root / name).write_text(text)
        mapping[f"{root}/{name}"] = doc["_id"]
    return mapping


async def run(data: Path, k: int, candidates: int) -> dict[str, dict[str, float]]:
    from agent.runtime import open_runtime
    from agent.settings import Settings
    from agent.wiring.knowledge import build_knowledge, close_vector_stores
    from knowledge.rerank import CohereReranker, EmbeddingReranker
    from knowledge.retriever import Retriever, RetrieverConfig

    corpus, queries, qrels = load_beir(data)
    with tempfile.TemporaryDirectory(prefix="callwise-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        async with open_runtime(settings) as rt:
            org = await rt.org_id("bench-" + uuid.uuid4().hex[:8])
            kb = build_knowledge(settings, rt.pool)
            root = Path(tmp) / "corpus"
            root.mkdir()
            mapping = write_corpus(corpus, root)
            t = time.perf_counter()
            report = await kb.ingestor.ingest(root, org)
            ingest_s = time.perf_counter() - t
            print(f"ingested {report.counts['added']} documents, {report.chunks} chunks in {ingest_s:.1f} s "
                  f"({report.chunks / ingest_s:.1f} chunks/s); {len(queries)} queries", file=sys.stderr)

            def variant(fusion: str = "rrf", reranker=None) -> Retriever:  # type: ignore[no-untyped-def]
                cfg = RetrieverConfig(candidates=candidates, top_k=2 * candidates, fusion=fusion,
                                      alphas=dict(settings.fusion_alphas), rerank_timeout_s=30)
                return Retriever(kb.docs, kb.vectors, kb.embedder, kb.bm25, reranker, cfg)

            modes: dict[str, tuple[Retriever, str]] = {
                "bm25": (variant(), "bm25"),
                "vector": (variant(), "vector"),
                "hybrid_rrf": (variant(), "hybrid"),
                "hybrid_weighted": (variant("weighted"), "hybrid"),
                "hybrid_rrf+rerank_embedding": (variant(reranker=EmbeddingReranker(kb.vectors)), "hybrid+rerank"),
                "hybrid_rrf+rerank_embedding_blend": (
                    variant(reranker=EmbeddingReranker(kb.vectors, child_weight=0.5)), "hybrid+rerank"),
            }
            if settings.cohere_api_key:
                modes["hybrid_rrf+rerank_cohere"] = (variant(reranker=CohereReranker.from_key(
                    settings.cohere_api_key.get_secret_value(), settings.rerank_model,
                    base_url=settings.cohere_base_url, timeout_s=10)), "hybrid+rerank")
            results: dict[str, dict[str, float]] = {}
            for name, (retriever, mode) in modes.items():
                sums: dict[str, float] = defaultdict(float)
                t = time.perf_counter()
                for qid, text in queries.items():
                    res = await retriever.retrieve(text, org, mode=mode)
                    ranked = list(dict.fromkeys(mapping[c.document] for c in res.chunks))
                    for m, v in metrics(ranked, qrels[qid], k).items():
                        sums[m] += v
                n = len(queries)
                results[name] = {f"ndcg@{k}": sums["ndcg"] / n, f"mrr@{k}": sums["mrr"] / n,
                                 f"recall@{k}": sums["recall"] / n,
                                 "ms_per_query": (time.perf_counter() - t) * 1000 / n,
                                 "fallbacks": retriever.stats.rerank_fallbacks}
            close_vector_stores()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("bench/data/orbitly"))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=25, help="BM25 and vector candidates per query")
    ap.add_argument("--json", action="store_true", help="one JSON object keyed by mode")
    args = ap.parse_args()
    results = asyncio.run(run(args.data, args.k, args.candidates))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    k = args.k
    print(f"{'mode':36} {'nDCG@' + str(k):>9} {'MRR@' + str(k):>9} {'Recall@' + str(k):>10} {'ms/q':>8}")
    for name, r in results.items():
        print(f"{name:36} {r[f'ndcg@{k}']:9.4f} {r[f'mrr@{k}']:9.4f} {r[f'recall@{k}']:10.4f} {r['ms_per_query']:8.1f}")


if __name__ == "__main__":
    main()
