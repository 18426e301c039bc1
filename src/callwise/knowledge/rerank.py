"""Rerankers: Cohere Rerank (production) and a local re-score by embedding similarity to the parent.

A reranker returns ``(candidate index, score)`` best first. It may raise or hang: the retriever
wraps every call in a timeout and falls back to fusion order, so rerankers need not be defensive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from callwise.knowledge.vectors import VectorStore


@dataclass(frozen=True)
class RerankCandidate:
    chunk_id: str
    parent_id: str | None
    text: str
    parent_text: str


class Reranker(Protocol):
    name: str

    async def rerank(
        self, query: str, query_vector: np.ndarray, candidates: list[RerankCandidate], top_n: int,
        organization_id: str,
    ) -> list[tuple[int, float]]: ...


class CohereReranker:
    """Cohere Rerank v2 through the official SDK (``AsyncClientV2``; ``base_url`` for tests/proxies)."""

    name = "cohere"

    def __init__(self, client: Any, model: str = "rerank-english-v3.0", *, timeout_s: float = 2.0,
                 max_tokens_per_doc: int = 1024) -> None:
        self.client = client
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens_per_doc = max_tokens_per_doc

    @classmethod
    def from_key(cls, api_key: str, model: str, *, base_url: str | None = None, timeout_s: float = 2.0) -> CohereReranker:
        import cohere

        kwargs: dict[str, Any] = {"api_key": api_key, "timeout": timeout_s}
        if base_url:
            kwargs["base_url"] = base_url
        return cls(cohere.AsyncClientV2(**kwargs), model, timeout_s=timeout_s)

    async def rerank(self, query: str, query_vector: np.ndarray, candidates: list[RerankCandidate], top_n: int,
                     organization_id: str) -> list[tuple[int, float]]:
        if not candidates:
            return []
        resp = await self.client.rerank(
            model=self.model, query=query, documents=[c.parent_text for c in candidates],
            top_n=min(top_n, len(candidates)), max_tokens_per_doc=self.max_tokens_per_doc,
            request_options={"timeout": self.timeout_s, "max_retries": 0},
        )
        return [(int(r.index), float(r.relevance_score)) for r in resp.results]


class EmbeddingReranker:
    """Cosine of the query to each candidate's parent vector (the normalised mean of the parent's
    children, stored at ingest), optionally blended with the child's own similarity, and
    optionally fused with the incoming (fusion) order: ``fusion_weight`` > 0 ranks by
    ``(1 - w) / (k + rerank rank) + w / (k + fusion rank)``, so the re-score moves candidates
    without discarding what BM25 and the vector search agreed on."""

    name = "embedding"

    def __init__(self, vectors: VectorStore, *, child_weight: float = 0.0, fusion_weight: float = 0.0,
                 fusion_k: float = 10.0) -> None:
        self.vectors = vectors
        self.child_weight = child_weight
        self.fusion_weight = fusion_weight
        self.fusion_k = fusion_k

    async def rerank(self, query: str, query_vector: np.ndarray, candidates: list[RerankCandidate], top_n: int,
                     organization_id: str) -> list[tuple[int, float]]:
        ids = list({c.parent_id or c.chunk_id for c in candidates} | {c.chunk_id for c in candidates})
        vecs = self.vectors.vectors(organization_id, ids)
        q = np.asarray(query_vector, dtype=np.float32)
        scored: list[tuple[int, float]] = []
        missing = 0
        for i, c in enumerate(candidates):
            pv = vecs.get(c.parent_id or c.chunk_id)
            cv = vecs.get(c.chunk_id)
            if pv is None:
                pv = cv  # the parent's vector not (yet) stored: the child's own stands in
            if pv is None:
                missing += 1
                continue
            p = float(pv @ q)
            s = float(cv @ q) if cv is not None else p
            scored.append((i, (1 - self.child_weight) * p + self.child_weight * s))
        if missing:
            # scoring a candidate 0 for a vector the store did not return would sink the page every first
            # stage agreed on (an ingest mid-way, an index out of step): the retriever keeps the fusion order
            raise LookupError(f"vectors missing for {missing} of {len(candidates)} candidates")
        scored.sort(key=lambda t: -t[1])
        if self.fusion_weight > 0:
            w, k = self.fusion_weight, self.fusion_k
            fused = [(i, (1 - w) / (k + r + 1) + w / (k + i + 1)) for r, (i, _) in enumerate(scored)]
            scored = sorted(fused, key=lambda t: -t[1])
        return scored[:top_n]
