"""Hybrid retrieval: BM25 || vector -> fusion -> rerank -> small2big, with per-stage ranks and timings."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from callwise.knowledge.classify import classify_query
from callwise.knowledge.fusion import rrf, weighted
from callwise.knowledge.lexical import BM25Registry
from callwise.knowledge.rerank import RerankCandidate, Reranker
from callwise.knowledge.types import MODES, RetrievalResult, RetrievedChunk, StageScore
from callwise.knowledge.vectors import VectorStore

log = logging.getLogger(__name__)

DEFAULT_ALPHAS: dict[str, float] = {"conceptual": 0.7, "technical": 0.5, "conversational": 0.8, "exact_match": 0.3}


@dataclass
class RetrieverConfig:
    candidates: int = 25
    top_k: int = 5
    fusion: str = "rrf"  # "rrf" | "weighted"
    rrf_k: int = 60
    rrf_weights: tuple[float, float] = (1.0, 1.0)  # (BM25, vector)
    alphas: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ALPHAS))
    rerank_timeout_s: float = 2.0
    dedupe_parents: bool = True


@dataclass
class RetrieverStats:
    queries: int = 0
    rerank_fallbacks: int = 0
    fallback_reasons: Counter = field(default_factory=Counter)


class Retriever:
    def __init__(self, docs: Any, vectors: VectorStore, embedder: Any, bm25: BM25Registry | None = None,
                 reranker: Reranker | None = None, config: RetrieverConfig | None = None) -> None:
        self.docs = docs
        self.vectors = vectors
        self.embedder = embedder
        self.bm25 = bm25 or BM25Registry(docs)
        self.reranker = reranker
        self.config = config or RetrieverConfig()
        self.stats = RetrieverStats()

    async def retrieve(self, query: str, organization_id: str, top_k: int | None = None,
                       mode: str = "hybrid+rerank") -> RetrievalResult:
        if not query or not query.strip():
            raise ValueError("query is empty")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        cfg = self.config
        top_k = top_k or cfg.top_k
        n_cand = max(cfg.candidates, top_k)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        self.stats.queries += 1
        qtype = classify_query(query)

        async def run_bm25() -> list[tuple[str, float]]:
            t = time.perf_counter()
            if hasattr(self.bm25, "search_async"):  # the Postgres store: scored in the database
                hits = await self.bm25.search_async(organization_id, query, n_cand)
            else:
                idx = await self.bm25.index(organization_id)
                hits = await asyncio.to_thread(idx.search, query, n_cand)
            timings["bm25"] = (time.perf_counter() - t) * 1000
            return [(str(k), s) for k, s in hits]

        qvec_box: list[np.ndarray] = []

        async def run_vector() -> list[tuple[str, float]]:
            if hasattr(self.vectors, "search_async"):
                t = time.perf_counter()
                fresh = asyncio.ensure_future(self.vectors.freshen(organization_id)) \
                    if hasattr(self.vectors, "freshen") else None  # the version check overlaps the embedding
                qv = await asyncio.to_thread(self.embedder.encode_query, query)
                qvec_box.append(qv)
                t1 = time.perf_counter()
                timings["embed"] = (t1 - t) * 1000
                if fresh is not None:
                    hits = await self.vectors.search_async(qv, organization_id, n_cand, await fresh)
                else:
                    hits = await self.vectors.search_async(qv, organization_id, n_cand)
                timings["vector"] = (time.perf_counter() - t1) * 1000
                return hits

            def work() -> list[tuple[str, float]]:
                t = time.perf_counter()
                qv = self.embedder.encode_query(query)
                qvec_box.append(qv)
                t1 = time.perf_counter()
                timings["embed"] = (t1 - t) * 1000
                hits = self.vectors.search(qv, organization_id, n_cand)
                timings["vector"] = (time.perf_counter() - t1) * 1000
                return hits

            return await asyncio.to_thread(work)

        bm25_hits: list[tuple[str, float]] = []
        vec_hits: list[tuple[str, float]] = []
        if mode == "bm25":
            bm25_hits = await run_bm25()
        elif mode == "vector":
            vec_hits = await run_vector()
        else:
            bm25_hits, vec_hits = await asyncio.gather(run_bm25(), run_vector())

        t = time.perf_counter()
        ranked: Sequence[tuple[Hashable, float]]
        if mode == "bm25":
            ranked = bm25_hits
        elif mode == "vector":
            ranked = vec_hits
        elif cfg.fusion == "weighted":
            ranked = weighted(bm25_hits, vec_hits, cfg.alphas.get(qtype, 0.5))
        else:
            ranked = rrf([bm25_hits, vec_hits], k=cfg.rrf_k, weights=cfg.rrf_weights)
        fused = [(str(k), s) for k, s in ranked[:n_cand]]
        timings["fusion"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        texts = await self.docs.chunk_texts(organization_id, [k for k, _ in fused])
        fused = [(k, s) for k, s in fused if k in texts]  # a vector whose chunk row is gone never surfaces
        timings["fetch"] = (time.perf_counter() - t) * 1000

        stages: dict[str, dict[str, StageScore]] = {k: {} for k, _ in fused}
        for name, hits in (("bm25", bm25_hits), ("vector", vec_hits)):
            for rank, (k, s) in enumerate(hits, start=1):
                if k in stages:
                    stages[k][name] = StageScore(rank, s)
        if mode not in ("bm25", "vector"):
            for rank, (k, s) in enumerate(fused, start=1):
                stages[k]["fused"] = StageScore(rank, s)

        order = fused
        reranker_name = "none"
        fallback: str | None = None
        if mode == "hybrid+rerank" and self.reranker is not None and fused:
            reranker_name = self.reranker.name
            t = time.perf_counter()
            order, fallback = await self._rerank(query, qvec_box[0] if qvec_box else None, fused, texts,
                                                 organization_id)
            timings["rerank"] = (time.perf_counter() - t) * 1000
            if fallback is None:
                for rank, (k, s) in enumerate(order, start=1):
                    stages[k]["rerank"] = StageScore(rank, s)

        chunks: list[RetrievedChunk] = []
        seen_parents: set[str] = set()
        for k, s in order:
            ct = texts[k]
            parent_key = ct.parent_id or k
            if cfg.dedupe_parents and parent_key in seen_parents:
                continue
            seen_parents.add(parent_key)
            chunks.append(RetrievedChunk(
                chunk_id=k, document_id=ct.document_id, document=ct.source, title=ct.title,
                title_path=list(ct.title_path), text=ct.text, parent_text=ct.parent_text, score=float(s),
                stages=stages[k], parent_id=ct.parent_id,
            ))
            if len(chunks) >= top_k:
                break
        timings["total"] = (time.perf_counter() - t0) * 1000
        return RetrievalResult(query=query, query_type=qtype, chunks=chunks, timings_ms=timings, mode=mode,
                               reranker=reranker_name, rerank_fallback=fallback)

    async def _rerank(self, query: str, qvec: np.ndarray | None, fused: list[tuple[str, float]],
                      texts: dict[str, Any], organization_id: str) -> tuple[list[tuple[str, float]], str | None]:
        assert self.reranker is not None
        cands = [RerankCandidate(k, texts[k].parent_id, texts[k].text, texts[k].parent_text) for k, _ in fused]
        if hasattr(self.vectors, "prefetch"):  # the Postgres store: fetch the vectors a local reranker reads
            await self.vectors.prefetch(organization_id, [c.chunk_id for c in cands] + [
                c.parent_id for c in cands if c.parent_id])
        try:
            qv = qvec if qvec is not None else await asyncio.to_thread(self.embedder.encode_query, query)
            ranked = await asyncio.wait_for(
                self.reranker.rerank(query, qv, cands, len(cands), organization_id),
                timeout=self.config.rerank_timeout_s,
            )
        except TimeoutError:
            return self._fallback(fused, "timeout")
        except Exception as exc:  # a reranker failure must never reach the caller
            return self._fallback(fused, f"{type(exc).__name__}: {exc}"[:200])
        out = [(fused[i][0], s) for i, s in ranked if 0 <= i < len(fused)]
        if not out:
            return self._fallback(fused, "empty rerank result")
        ranked_keys = {k for k, _ in out}
        out.extend((k, 0.0) for k, _ in fused if k not in ranked_keys)  # a top_n reranker: keep the tail in fusion order
        return out, None

    def _fallback(self, fused: list[tuple[str, float]], reason: str) -> tuple[list[tuple[str, float]], str]:
        self.stats.rerank_fallbacks += 1
        kind = reason.split(":", 1)[0]
        self.stats.fallback_reasons[kind] += 1
        log.warning("reranker failed (%s); using fusion order", reason,
                    extra={"reranker": getattr(self.reranker, "name", "?"), "fallbacks": self.stats.rerank_fallbacks})
        return fused, reason
