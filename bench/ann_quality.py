"""Retrieval quality with the approximate index (HNSW over the memory-mapped index file) against exact search.

    python bench/ann_quality.py --json [--sets git,sqlite,apache] [--cache-dir DIR] [--candidates 25]

Each set's pages are ingested through the product's ingest path (``build_knowledge``, as
``bench/retrieval_quality.py`` does), which writes the org's index file. Every question is then
retrieved through the product's retriever three ways over the same database and file:

* ``exact``: the store without index files (the per-process matrix, exact cosine);
* ``file-exact``: the index file searched by brute force (what orgs under ``AnnParams.exact_below`` get);
* ``ann``: the index file's HNSW graph (what larger orgs get), forced here with ``exact_below=0``.

Figures: page-level nDCG@10, Recall@10 and right page first (``bench/retrieval_quality.py``'s
``page_metrics``; pages ranked by their best chunk), typed and spoken questions together; and
``neighbour_recall``: the share of exact search's top ``--candidates`` children that the dense search
returned.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval_quality as rq  # noqa: E402


async def evaluate(name: str, *, candidates: int, k: int, cache_dir: Path | None) -> dict[str, Any]:
    import numpy as np

    from callwise.knowledge.ann import AnnIndexes, AnnParams
    from callwise.knowledge.pages import PageConfig, rank_pages
    from callwise.knowledge.retriever import Retriever
    from callwise.wiring import knowledge as wiring
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    bs = rq.load_set(rq.DATA / name)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="callwise-ann-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        async with open_runtime(settings) as rt:
            org = await rt.org_id("ann-" + name + "-" + uuid.uuid4().hex[:8])
            embedder: Any = wiring.get_embedder(settings)
            if cache_dir is not None:
                embedder = rq.CachedEmbedder(embedder, cache_dir)
            kb = wiring.build_knowledge(settings, rt.pool, embedder=embedder)
            root = Path(tmp) / "corpus"
            root.mkdir()
            mapping = rq.write_corpus(bs.corpus, root)
            report = await kb.ingestor.ingest(root, org)
            if isinstance(embedder, rq.CachedEmbedder):
                embedder.save()
            store = kb.vectors.store
            out["_ingest"] = {"chunks": report.chunks, "index": report.index}
            folder = wiring.vector_indexes(settings).root
            modes = {"exact": None, "file-exact": AnnIndexes(folder, AnnParams(exact_below=10**9)),
                     "ann": AnnIndexes(folder, AnnParams(exact_below=0))}
            base = kb.retriever  # the product's retriever (without the page wrapper: chunks are ranked here)
            retriever = Retriever(base.docs, base.vectors, base.embedder, base.bm25, base.reranker, base.config)
            questions = [(qid, t) for qs in (bs.typed, bs.spoken) for qid, t in qs.items()]
            exact_top: dict[str, set[str]] = {}
            for mode, ann in modes.items():
                store.ann = ann
                metrics: list[dict[str, float]] = []
                overlap: list[float] = []
                t = time.perf_counter()
                for qid, text in questions:
                    res = await retriever.retrieve(text, org, top_k=candidates)
                    for c in res.chunks:
                        c.document = mapping.get(c.document, c.document)
                    ranked = [h.document for h in rank_pages(res.chunks, PageConfig(method="first", k=0.0, depth=1))]
                    metrics.append(rq.page_metrics(ranked, bs.qrels[qid], k))
                    vec = kb.embedder.encode([text])[0]
                    dense = {i for i, _ in await store.dense_search(org, vec, candidates)}
                    if mode == "exact":
                        exact_top[text] = dense
                    overlap.append(len(dense & exact_top[text]) / max(1, len(exact_top[text])))
                ms = (time.perf_counter() - t) * 1000 / len(questions)
                out[mode] = {key: round(float(np.mean([m[key] for m in metrics])), 4) for key in metrics[0]}
                out[mode]["neighbour_recall"] = round(float(np.mean(overlap)), 4)
                out[mode]["ms_per_question"] = round(ms, 1)
                out[mode]["questions"] = len(questions)
                out[mode]["vector_loads"] = store.reloads
            wiring.close_vector_stores()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="git,sqlite,apache")
    ap.add_argument("--candidates", type=int, default=25)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = {name: asyncio.run(evaluate(name, candidates=args.candidates, k=args.k, cache_dir=args.cache_dir))
              for name in args.sets.split(",")}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, r in result.items():
        print(f"{name} ({r['_ingest']['chunks']} chunks)")
        for mode in ("exact", "file-exact", "ann"):
            print(f"  {mode:>10}: " + ", ".join(f"{k} {v}" for k, v in r[mode].items()))


if __name__ == "__main__":
    main()
