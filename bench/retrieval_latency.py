"""Retrieval latency at scale and ingest throughput, on the embedded defaults.

    python bench/retrieval_latency.py [--sizes 10000,100000] [--queries 200] [--json]

For each size: a fresh embedded Postgres and qdrant-edge shard under a temporary directory, that
many synthetic child chunks (texts drawn from the sample KB's vocabulary, four children per parent,
vectors = real MiniLM embeddings of KB paragraphs plus noise, so they cluster like real data),
bulk-loaded into Postgres (COPY) and qdrant-edge (HNSW built by optimize). Then real questions
from bench/data/orbitly run through ``Retriever.retrieve`` in hybrid mode (no rerank: the
target), and again with the local embedding re-score; p50/p95/p99 of every stage are printed.
Ingest throughput is measured on the real pipeline (load, chunk, embed, store) over --ingest-path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def kb_material(kb: Path) -> tuple[list[str], list[str]]:
    paragraphs, words = [], []
    for p in sorted(kb.rglob("*")):
        if p.suffix in (".md", ".html", ".txt") and p.is_file():
            text = re.sub(r"<[^>]+>", " ", p.read_text(errors="replace"))
            paragraphs += [x.strip() for x in text.split("\n\n") if len(x.split()) >= 8]
            words += re.findall(r"[A-Za-z][A-Za-z'-]+|[A-Z]+-\d+[A-Z]?", text)
    return paragraphs, words


async def bulk_load(pool, store, org: str, n: int, embedder, paragraphs, words, rnd) -> float:  # type: ignore[no-untyped-def]
    from knowledge.vectors import VectorPoint

    base = embedder.encode(paragraphs[:400])
    t = time.perf_counter()
    per_doc, per_parent = 20, 4
    doc_ids = [uuid.uuid4() for _ in range((n + per_doc - 1) // per_doc)]
    org_u = uuid.UUID(org)
    await pool.copy_records_to_table("documents", records=[
        (d, org_u, f"synthetic/{i:06d}.md", f"Synthetic {i}", "text/markdown", f"h{i}", 1000) for i, d in enumerate(doc_ids)
    ], columns=["id", "organization_id", "source", "title", "mime_type", "content_hash", "size_bytes"])
    batch = 5000
    for start in range(0, n, batch):
        parents, children, points = [], [], []
        count = min(batch, n - start)
        vecs = base[[rnd.randrange(len(base)) for _ in range(count)]] + np.random.default_rng(start).normal(
            0, 0.04, (count, base.shape[1])).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        for j in range(0, count, per_parent):
            i = start + j
            doc = doc_ids[i // per_doc]
            pid = uuid.uuid4()
            kids = []
            for m in range(j, min(j + per_parent, count)):
                text = " ".join(rnd.choices(words, k=rnd.randint(60, 140)))
                cid = uuid.uuid4()
                kids.append((cid, text))
                children.append((cid, org_u, doc, pid, "child", start + m, text, len(text.split()), "synthetic", []))
                points.append(VectorPoint(str(cid), vecs[m], org, str(doc), "child"))
            ptext = "\n\n".join(t for _, t in kids)
            parents.append((pid, org_u, doc, None, "parent", i // per_parent, ptext, len(ptext.split()), "synthetic", []))
            mean = vecs[j:j + len(kids)].mean(axis=0)
            points.append(VectorPoint(str(pid), mean / np.linalg.norm(mean), org, str(doc), "parent"))
        cols = ["id", "organization_id", "document_id", "parent_id", "kind", "seq", "text", "token_count", "source",
                "title_path"]
        await pool.copy_records_to_table("chunks", records=parents, columns=cols)
        await pool.copy_records_to_table("chunks", records=children, columns=cols)
        store.upsert(points)
    return time.perf_counter() - t


async def one_size(n: int, n_queries: int, queries: list[str], embedder, paragraphs, words) -> dict:  # type: ignore[no-untyped-def]
    from agent.runtime import open_runtime
    from agent.settings import Settings
    from knowledge.docstore import PgDocumentStore
    from knowledge.lexical import BM25Registry
    from knowledge.rerank import EmbeddingReranker
    from knowledge.retriever import Retriever, RetrieverConfig
    from knowledge.vectors import EdgeVectorStore

    rnd = random.Random(n)
    out: dict = {"chunks": n}
    with tempfile.TemporaryDirectory(prefix="callwise-lat-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        async with open_runtime(settings) as rt:
            org = await rt.org_id("lat-" + uuid.uuid4().hex[:6])
            store = EdgeVectorStore(Path(tmp) / "qdrant", embedder.dim)
            load_s = await bulk_load(rt.pool, store, org, n, embedder, paragraphs, words, rnd)
            t = time.perf_counter()
            store.commit()
            out["bulk_load_s"] = load_s
            out["bulk_load_chunks_per_s"] = n / load_s
            out["hnsw_build_s"] = time.perf_counter() - t
            docs = PgDocumentStore(rt.pool)
            bm25 = BM25Registry(docs, refresh_s=2.0)
            t = time.perf_counter()
            await bm25.index(org)
            out["bm25_build_s"] = time.perf_counter() - t
            for label, reranker in (("hybrid", None), ("hybrid+rerank_embedding", EmbeddingReranker(store))):
                retriever = Retriever(docs, store, embedder, bm25, reranker, RetrieverConfig())
                mode = "hybrid" if reranker is None else "hybrid+rerank"
                for q in queries[:10]:  # warm-up
                    await retriever.retrieve(q, org, mode=mode)
                stages: dict[str, list[float]] = {}
                count = n_queries if reranker is None else max(20, n_queries // 4)
                for i in range(count):
                    res = await retriever.retrieve(queries[i % len(queries)], org, mode=mode)
                    for k, v in res.timings_ms.items():
                        stages.setdefault(k, []).append(v)
                out[label] = {k: pct(v) for k, v in stages.items()}
            store.close()
    return out


async def ingest_throughput(path: Path, embedder) -> dict:  # type: ignore[no-untyped-def]
    from agent.runtime import open_runtime
    from agent.settings import Settings
    from agent.wiring.knowledge import build_knowledge, close_vector_stores

    with tempfile.TemporaryDirectory(prefix="callwise-ing-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        async with open_runtime(settings) as rt:
            kb = build_knowledge(settings, rt.pool, embedder=embedder)
            report = await kb.ingestor.ingest(path, await rt.org_id("ingest-bench"))
            close_vector_stores()
    return {"documents": report.counts["added"], "chunks": report.chunks, "seconds": report.seconds,
            "chunks_per_s": report.chunks_per_s}


async def run(sizes: list[int], n_queries: int, ingest_path: Path | None) -> dict:
    from knowledge.embeddings import Embedder

    embedder = Embedder()
    paragraphs, words = kb_material(ROOT / "examples" / "kb")
    qfile = ROOT / "bench" / "data" / "orbitly" / "queries.jsonl"
    queries = [json.loads(line)["text"] for line in qfile.read_text().splitlines() if line.strip()]
    result: dict = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg()[0], "sizes": {}}
    if ingest_path:
        result["ingest"] = await ingest_throughput(ingest_path, embedder)
        print(f"ingest: {result['ingest']}", file=sys.stderr)
    for n in sizes:
        result["sizes"][str(n)] = await one_size(n, n_queries, queries, embedder, paragraphs, words)
        print(f"{n}: done", file=sys.stderr)
    result["load_avg_end"] = os.getloadavg()[0]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ingest-path", type=Path, default=ROOT / "examples" / "kb",
                    help="folder for the real-pipeline ingest throughput ('' to skip)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    ingest_path = args.ingest_path if str(args.ingest_path) not in ("", ".") else None
    res = asyncio.run(run(sizes, args.queries, ingest_path))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    if "ingest" in res:
        i = res["ingest"]
        print(f"ingest (real pipeline): {i['documents']} documents, {i['chunks']} chunks in {i['seconds']:.1f} s"
              f" = {i['chunks_per_s']:.1f} chunks/s")
    for n, r in res["sizes"].items():
        print(f"\n{int(n):,} chunks: bulk load {r['bulk_load_chunks_per_s']:.0f} chunks/s, HNSW build "
              f"{r['hnsw_build_s']:.1f} s, BM25 build {r['bm25_build_s']:.1f} s")
        for label in ("hybrid", "hybrid+rerank_embedding"):
            print(f"  {label:24} {'p50':>8} {'p95':>8} {'p99':>8}  (ms)")
            for stage, p in r[label].items():
                print(f"    {stage:22} {p['p50']:8.2f} {p['p95']:8.2f} {p['p99']:8.2f}")
    print(f"\nload average {res['load_avg_start']:.1f} -> {res['load_avg_end']:.1f} on {res['cpu_count']} CPUs")


if __name__ == "__main__":
    main()
