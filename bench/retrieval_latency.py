"""Retrieval latency at scale, ingest throughput, first query of a new process, and memory.

    python bench/retrieval_latency.py [--sizes 10000,100000] [--stores postgres,edge] [--queries 200] [--json]

For each size and store: a fresh embedded Postgres under a temporary directory and that many
synthetic child chunks (texts drawn from the sample KB's vocabulary, four children per parent,
vectors = real MiniLM embeddings of KB paragraphs plus noise, so they cluster like real data).

* ``postgres`` (the default store, knowledge/pgstore.py): chunks written through the store's own
  write path (vectors, BM25 weights, df) in transactions of 2,000 children, then ``reweigh``; the
  lexical query plan is printed. "first query" runs in a fresh process (``python -c``): open a
  pool, build the store, one hybrid ``Retriever.retrieve`` (it loads the organization's vectors).
* ``edge`` (the previous release: qdrant-edge in process + BM25 in memory): chunks by COPY, points
  upserted, HNSW built by ``optimize``; "first query" = the BM25 build from Postgres that every new
  process paid on its first query, plus the query itself.

Then real questions from bench/data/orbitly run through ``Retriever.retrieve`` in hybrid mode
(no rerank); p50/p95/p99 of every stage are printed. Resident memory: the Postgres server (sum of
PSS over its processes) and the querying process (RSS after its first query). Ingest throughput of
the real pipeline (load, chunk, embed, store) is measured over --ingest-path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
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

FIRST_QUERY = """
import asyncio, json, sys, time
t0 = time.perf_counter()
import psutil
from callwise.knowledge.embeddings import Embedder
from callwise.knowledge.docstore import PgDocumentStore
from callwise.knowledge.pgstore import PgKnowledgeStore, PgLexical, PgVectors
from callwise.knowledge.retriever import Retriever
from callwise.knowledge.embedders.reembed import model_name
from callwise.infra.db import create_pool

async def main():
    emb = Embedder()
    t1 = time.perf_counter()
    pool = await create_pool(sys.argv[1], min_size=1, max_size=4)
    store = PgKnowledgeStore(pool, emb.dim, model_name(emb))
    r = Retriever(PgDocumentStore(pool), PgVectors(store), emb, PgLexical(store))
    t2 = time.perf_counter()
    res = await r.retrieve(sys.argv[3], sys.argv[2], mode="hybrid")
    t3 = time.perf_counter()
    res2 = await r.retrieve(sys.argv[3], sys.argv[2], mode="hybrid")
    t4 = time.perf_counter()
    print(json.dumps({"startup_s": t1 - t0, "first_query_ms": (t3 - t2) * 1000, "second_query_ms": (t4 - t3) * 1000,
                      "first_stages_ms": res.timings_ms, "hits": len(res.chunks),
                      "rss_mb": psutil.Process().memory_info().rss / 2**20}))
    await pool.close()

asyncio.run(main())
"""


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


def synthetic(n: int, base: np.ndarray, words: list[str], rnd: random.Random, start: int, count: int
              ) -> tuple[list[str], np.ndarray]:
    texts = [" ".join(rnd.choices(words, k=rnd.randint(60, 140))) for _ in range(count)]
    vecs = base[[rnd.randrange(len(base)) for _ in range(count)]] + np.random.default_rng(start).normal(
        0, 0.04, (count, base.shape[1])).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return texts, vecs.astype(np.float32)


def pg_pss_mb(pgdata: Path) -> float:
    import psutil

    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return 0.0
    master = psutil.Process(int(pid_file.read_text().split()[0]))
    total = 0
    for p in [master, *master.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.Error, AttributeError):
            total += p.memory_info().rss
    return total / 2**20


async def load_postgres(pool, org: str, n: int, base, words, rnd, model: str) -> dict:  # type: ignore[no-untyped-def]
    from callwise.knowledge.pgstore import PgKnowledgeStore
    from callwise.knowledge.types import ChunkRecord

    store = PgKnowledgeStore(pool, base.shape[1], model)
    t = time.perf_counter()
    per_tx, per_parent = 2000, 4
    for start in range(0, n, per_tx):
        count = min(per_tx, n - start)
        texts, vecs = synthetic(n, base, words, rnd, start, count)
        async with pool.acquire() as conn, conn.transaction():
            doc = str(await conn.fetchval(
                "insert into documents (organization_id, source, title, mime_type, content_hash, size_bytes)"
                " values ($1, $2, $3, 'text/markdown', $4, 1000) returning id",
                org, f"synthetic/{start:07d}.md", f"Synthetic {start}", f"h{start}"))
            parents, children, pvecs = [], [], []
            for j in range(0, count, per_parent):
                pid = str(uuid.uuid4())
                kids = range(j, min(j + per_parent, count))
                parents.append(ChunkRecord(pid, doc, "parent", j // per_parent, "\n\n".join(texts[k] for k in kids),
                                           sum(len(texts[k].split()) for k in kids), ()))
                for k in kids:
                    children.append(ChunkRecord(str(uuid.uuid4()), doc, "child", k, texts[k], len(texts[k].split()), (),
                                                parent_id=pid))
                mean = vecs[list(kids)].mean(axis=0)
                pvecs.append(mean / np.linalg.norm(mean))
            await store.write_chunks(conn, org, f"synthetic/{start:07d}.md", parents, children, texts, vecs,
                                     np.asarray(pvecs, dtype=np.float32))
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    rewritten = await store.reweigh(org)
    await pool.execute("analyze chunks")
    out = {"load_s": load_s, "load_chunks_per_s": n / load_s, "index_build_s": time.perf_counter() - t,
           "reweighed_chunks": rewritten}
    from callwise.knowledge.pgstore import LEXICAL_SQL, term_hash
    from callwise.knowledge.text import tokenize

    terms = sorted({term_hash(org, t) for t in tokenize("How do I get a refund for my annual plan?")})
    plan = await pool.fetch("explain (analyze) " + LEXICAL_SQL, org, terms, [1] * len(terms), 0.25, 25)
    out["lexical_plan"] = [r[0] for r in plan]
    return out


async def load_edge(pool, store, org: str, n: int, base, words, rnd) -> dict:  # type: ignore[no-untyped-def]
    from callwise.knowledge.vectors import VectorPoint

    t = time.perf_counter()
    per_doc, per_parent, batch = 20, 4, 5000
    doc_ids = [uuid.uuid4() for _ in range((n + per_doc - 1) // per_doc)]
    org_u = uuid.UUID(org)
    await pool.copy_records_to_table("documents", records=[
        (d, org_u, f"synthetic/{i:06d}.md", f"Synthetic {i}", "text/markdown", f"h{i}", 1000) for i, d in enumerate(doc_ids)
    ], columns=["id", "organization_id", "source", "title", "mime_type", "content_hash", "size_bytes"])
    cols = ["id", "organization_id", "document_id", "parent_id", "kind", "seq", "text", "token_count", "source",
            "title_path"]
    for start in range(0, n, batch):
        count = min(batch, n - start)
        texts, vecs = synthetic(n, base, words, rnd, start, count)
        parents, children, points = [], [], []
        for j in range(0, count, per_parent):
            i = start + j
            doc = doc_ids[i // per_doc]
            pid = uuid.uuid4()
            kids = list(range(j, min(j + per_parent, count)))
            for m in kids:
                cid = uuid.uuid4()
                children.append((cid, org_u, doc, pid, "child", start + m, texts[m], len(texts[m].split()), "synthetic", []))
                points.append(VectorPoint(str(cid), vecs[m], org, str(doc), "child"))
            ptext = "\n\n".join(texts[m] for m in kids)
            parents.append((pid, org_u, doc, None, "parent", i // per_parent, ptext, len(ptext.split()), "synthetic", []))
            mean = vecs[kids].mean(axis=0)
            points.append(VectorPoint(str(pid), mean / np.linalg.norm(mean), org, str(doc), "parent"))
        await pool.copy_records_to_table("chunks", records=parents, columns=cols)
        await pool.copy_records_to_table("chunks", records=children, columns=cols)
        store.upsert(points)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    store.commit()
    return {"load_s": load_s, "load_chunks_per_s": n / load_s, "index_build_s": time.perf_counter() - t}


async def query_latency(retriever, org: str, queries: list[str], n_queries: int) -> dict:  # type: ignore[no-untyped-def]
    for q in queries[:10]:  # warm-up
        await retriever.retrieve(q, org, mode="hybrid")
    stages: dict[str, list[float]] = {}
    for i in range(n_queries):
        res = await retriever.retrieve(queries[i % len(queries)], org, mode="hybrid")
        for k, v in res.timings_ms.items():
            stages.setdefault(k, []).append(v)
    return {k: pct(v) for k, v in stages.items()}


async def one_size(kind: str, n: int, n_queries: int, queries: list[str], embedder, base, words) -> dict:  # type: ignore[no-untyped-def]
    import psutil

    from callwise.knowledge.docstore import PgDocumentStore
    from callwise.knowledge.retriever import Retriever, RetrieverConfig
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    rnd = random.Random(n)
    out: dict = {"store": kind, "chunks": n}
    with tempfile.TemporaryDirectory(prefix="callwise-lat-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", _env_file=None, database_url=None, qdrant_url=None)
        async with open_runtime(settings) as rt:
            org = await rt.org_id("lat-" + uuid.uuid4().hex[:6])
            docs = PgDocumentStore(rt.pool)
            if kind == "postgres":
                from callwise.knowledge.embedders.reembed import model_name
                from callwise.knowledge.pgstore import PgKnowledgeStore, PgLexical, PgVectors

                out.update(await load_postgres(rt.pool, org, n, base, words, rnd, model_name(embedder)))
                proc = subprocess.run([sys.executable, "-c", FIRST_QUERY, rt.db.embedded.url, org, queries[0]],
                                      cwd=ROOT, capture_output=True, text=True, timeout=900)
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr[-2000:])
                out["new_process"] = json.loads(proc.stdout.strip().splitlines()[-1])
                store = PgKnowledgeStore(rt.pool, embedder.dim, model_name(embedder))
                retriever = Retriever(docs, PgVectors(store), embedder, PgLexical(store), None, RetrieverConfig())
            else:
                from callwise.knowledge.lexical import BM25Registry
                from callwise.knowledge.vectors import EdgeVectorStore

                edge = EdgeVectorStore(Path(tmp) / "qdrant", embedder.dim)
                out.update(await load_edge(rt.pool, edge, org, n, base, words, rnd))
                bm25 = BM25Registry(docs, refresh_s=2.0)
                retriever = Retriever(docs, edge, embedder, bm25, None, RetrieverConfig())
                rss0 = psutil.Process().memory_info().rss
                t = time.perf_counter()
                res = await retriever.retrieve(queries[0], org, mode="hybrid")
                out["new_process"] = {"first_query_ms": (time.perf_counter() - t) * 1000,
                                      "first_stages_ms": res.timings_ms,
                                      "index_memory_mb": (psutil.Process().memory_info().rss - rss0) / 2**20}
            out["hybrid"] = await query_latency(retriever, org, queries, n_queries)
            out["postgres_pss_mb"] = pg_pss_mb(settings.data_dir / "pg")
            out["bench_process_rss_mb"] = psutil.Process().memory_info().rss / 2**20
            if kind == "edge":
                edge.close()
    return out


async def ingest_throughput(path: Path, embedder) -> dict:  # type: ignore[no-untyped-def]
    from callwise.wiring.knowledge import build_knowledge
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    with tempfile.TemporaryDirectory(prefix="callwise-ing-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", _env_file=None, database_url=None, qdrant_url=None)
        async with open_runtime(settings) as rt:
            kb = build_knowledge(settings, rt.pool, embedder=embedder)
            report = await kb.ingestor.ingest(path, await rt.org_id("ingest-bench"))
    return {"documents": report.counts["added"], "chunks": report.chunks, "seconds": report.seconds,
            "chunks_per_s": report.chunks_per_s}


async def run(sizes: list[int], stores: list[str], n_queries: int, ingest_path: Path | None) -> dict:
    from callwise.knowledge.embeddings import Embedder

    embedder = Embedder()
    paragraphs, words = kb_material(ROOT / "examples" / "kb")
    base = embedder.encode(paragraphs[:400])
    qfile = ROOT / "bench" / "data" / "orbitly" / "queries.jsonl"
    queries = [json.loads(line)["text"] for line in qfile.read_text().splitlines() if line.strip()]
    result: dict = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg()[0], "runs": []}
    if ingest_path:
        result["ingest"] = await ingest_throughput(ingest_path, embedder)
        print(f"ingest: {result['ingest']}", file=sys.stderr)
    for n in sizes:
        for kind in stores:
            result["runs"].append(await one_size(kind, n, n_queries, queries, embedder, base, words))
            print(f"{kind} {n}: " + json.dumps(result["runs"][-1]), file=sys.stderr, flush=True)
    result["load_avg_end"] = os.getloadavg()[0]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    ap.add_argument("--stores", default="postgres,edge", help="postgres (the default) and/or edge (previous release)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ingest-path", type=Path, default=ROOT / "examples" / "kb",
                    help="folder for the real-pipeline ingest throughput ('' to skip)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    ingest_path = args.ingest_path if str(args.ingest_path) not in ("", ".") else None
    res = asyncio.run(run(sizes, stores, args.queries, ingest_path))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    if "ingest" in res:
        i = res["ingest"]
        print(f"ingest (real pipeline, postgres store): {i['documents']} documents, {i['chunks']} chunks in "
              f"{i['seconds']:.1f} s = {i['chunks_per_s']:.1f} chunks/s")
    for r in res["runs"]:
        fq = r["new_process"]
        print(f"\n{r['store']} · {r['chunks']:,} chunks: bulk load {r['load_chunks_per_s']:.0f} chunks/s, index build "
              f"{r['index_build_s']:.1f} s, first query of a new process {fq['first_query_ms']:.0f} ms"
              + (f" (process RSS {fq['rss_mb']:.0f} MB)" if "rss_mb" in fq else
                 f" (in-memory indexes {fq.get('index_memory_mb', 0):.0f} MB)")
              + f", Postgres PSS {r['postgres_pss_mb']:.0f} MB")
        print(f"  {'hybrid':24} {'p50':>8} {'p95':>8} {'p99':>8}  (ms)")
        for stage, p in r["hybrid"].items():
            print(f"    {stage:22} {p['p50']:8.2f} {p['p95']:8.2f} {p['p99']:8.2f}")
        if "lexical_plan" in r:
            print("  lexical plan: " + " | ".join(line.strip() for line in r["lexical_plan"][:6]))
    print(f"\nload average {res['load_avg_start']:.1f} -> {res['load_avg_end']:.1f} on {res['cpu_count']} CPUs")


if __name__ == "__main__":
    main()
