"""Dump what the product's retriever returns for every question of a set, once, for offline work.

    python bench/rank_data.py --sets apache,git --cache-dir /tmp/embcache --out /tmp/rankdump

Each set is ingested through the product's ingest path (as ``bench/retrieval_quality.py`` does: the
same loader, chunker, embedder, stores and ``--cache-dir`` vector cache) and every question is
retrieved once through the product's retriever (query clean-up, BM25 || vector, RRF, the default
re-score) with its full candidate list (25 chunks): typed and spoken questions, each follow-up
pair (the first question; the follow-up as heard; the follow-up as query understanding makes it
standalone today) and the unanswerable questions. ``OUT/<set>.json`` holds, per question, the
chunks in the retriever's order with their page, title, headings, text and per-stage rank and
score, and the page ranking the product builds from them (``knowledge/pages.py``), so that page
metrics, the learned page ranker (``bench/learn_rank.py``), the answerability bar
(``bench/answerability.py``) and the follow-up prior (``bench/followups.py --from-dump``) can be
computed and compared without ingesting again. The dump also prints the product's figures (right
page first, nDCG@10) per group, the same figures ``retrieval_quality.py`` gives for its
``hybrid+rerank`` row.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from retrieval_quality import DATA, CachedEmbedder, load_set, page_metrics, write_corpus  # noqa: E402

SETS = ("apache", "orbitly", "pydoc", "sqlite", "git")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if not path.exists():
        return out
    for i, line in enumerate(path.read_text().splitlines()):
        parts = line.split("\t")
        if len(parts) < 3 or (i == 0 and not parts[2].strip().isdigit()):
            continue
        if int(parts[2]) > 0:
            out.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return out


def chunk_record(c: Any, mapping: dict[str, str]) -> dict[str, Any]:
    return {"doc": mapping.get(c.document, c.document), "title": c.title, "title_path": list(c.title_path),
            "text": c.text[:1200], "parent_len": len(c.parent_text or ""), "score": c.score,
            "stages": {k: [v.rank, v.score] for k, v in c.stages.items()}}


async def dump_set(name: str, *, candidates: int, cache_dir: Path | None) -> dict[str, Any]:
    from callwise.calls.stages.understand import understand
    from callwise.knowledge.pages import DEFAULT, rank_pages
    from callwise.knowledge.query import CLEAN_BY_DEFAULT, clean_query
    from callwise.knowledge.retriever import Retriever
    from callwise.wiring import knowledge as wiring
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    data = DATA / name
    bs = load_set(data)
    followups = _rows(data / "followups.jsonl")
    fu_qrels = _qrels(data / "qrels" / "followups.tsv")
    unanswerable = _rows(data / "unanswerable.jsonl")
    out: dict[str, Any] = {"set": name, "questions": []}
    with tempfile.TemporaryDirectory(prefix="callwise-rankdump-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        async with open_runtime(settings) as rt:
            org = await rt.org_id("rankdump-" + name + "-" + uuid.uuid4().hex[:8])
            embedder: Any = wiring.get_embedder(settings)
            if cache_dir is not None:
                embedder = CachedEmbedder(embedder, cache_dir)
            kb = wiring.build_knowledge(settings, rt.pool, embedder=embedder)
            root = Path(tmp) / "corpus"
            root.mkdir()
            mapping = write_corpus(bs.corpus, root)
            t = time.perf_counter()
            report = await kb.ingestor.ingest(root, org)
            if isinstance(embedder, CachedEmbedder):
                embedder.save()
            print(f"[{name}] ingested {report.chunks} chunks in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            base = kb.retriever.retriever if hasattr(kb.retriever, "retriever") else kb.retriever
            cfg = dataclasses.replace(base.config, rerank_timeout_s=max(base.config.rerank_timeout_s, 30.0))
            retriever = Retriever(base.docs, base.vectors, base.embedder, base.bm25, base.reranker, cfg)

            async def chunks_for(text: str) -> list[dict[str, Any]]:
                q = clean_query(text) if CLEAN_BY_DEFAULT else text
                res = await retriever.retrieve(q, org, top_k=candidates)
                return [chunk_record(c, mapping) for c in res.chunks]

            def add(group: str, qid: str, text: str, chunks: list[dict[str, Any]], rel: dict[str, int] | None,
                    **extra: Any) -> None:
                out["questions"].append({"group": group, "id": qid, "text": text, "chunks": chunks, "qrels": rel or {},
                                         "split": extra.pop("split", bs.split.get(qid, "dev")), **extra})

            for qid, text in bs.typed.items():
                add("typed", qid, text, await chunks_for(text), bs.qrels[qid])
            for qid, text in bs.spoken.items():
                add("spoken", qid, text, await chunks_for(text), bs.qrels[qid])
            for r in followups:
                rel = fu_qrels.get(r["_id"])
                if not rel:
                    continue
                u = understand(r["followup"], last_question=r["first"], facts=[])
                add("followup", r["_id"], r["followup"], await chunks_for(r["followup"]), rel, split=r.get("split", "dev"),
                    first=r["first"], first_chunks=await chunks_for(r["first"]), standalone=u.query,
                    standalone_chunks=await chunks_for(u.query) if u.query != r["followup"] else None)
            for r in unanswerable:
                add("unanswerable", r["_id"], r["text"], await chunks_for(r["text"]), None, split=r.get("split", "dev"),
                    kind=r.get("kind", ""))
            wiring.close_vector_stores()

    # the product's page ranking, as retrieval_quality.py computes it
    class _C:
        def __init__(self, d: dict[str, Any]) -> None:
            self.document, self.score = d["doc"], d["score"]

    tally: dict[str, list[dict[str, float]]] = {}
    for q in out["questions"]:
        if not q["qrels"]:
            continue
        chunks = q["standalone_chunks"] if q["group"] == "followup" and q.get("standalone_chunks") else q["chunks"]
        ranked = [h.document for h in rank_pages([_C(c) for c in chunks], DEFAULT)]
        m = page_metrics(ranked, q["qrels"], 10)
        tally.setdefault(q["group"], []).append(m)
        if q["group"] == "typed":
            tally.setdefault(q["split"], []).append(m)
    out["product"] = {g: {"n": len(ms), **{k: round(sum(m[k] for m in ms) / len(ms), 4) for k in ("ndcg", "first")}}
                      for g, ms in tally.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--candidates", type=int, default=25)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True, help="a folder: one <set>.json per set")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.sets.split(","):
        res = asyncio.run(dump_set(name, candidates=args.candidates, cache_dir=args.cache_dir))
        (args.out / f"{name}.json").write_text(json.dumps(res))
        print(json.dumps({name: res["product"]}), flush=True)


if __name__ == "__main__":
    main()
