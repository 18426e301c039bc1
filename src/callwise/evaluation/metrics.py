"""Retrieval metrics over ranked document lists: Recall@k, MRR@k, nDCG@k (binary relevance).

Inputs are document identifiers in rank order (best first) and the set of relevant identifiers.
Rankings are judged at document level: a document retrieved twice (two chunks of one article)
counts once, at its best rank, so a retriever cannot score by repeating one article.
When there are no relevant documents the metrics are undefined and return ``None`` (callers
leave such examples out of the mean rather than counting them as 0 or 1).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence


def dedupe(ranked: Iterable[str]) -> list[str]:
    """Keep the first occurrence of every identifier, in order."""
    seen: set[str] = set()
    out: list[str] = []
    for doc in ranked:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return out


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float | None:
    """Share of the relevant documents found in the top ``k``."""
    _check_k(k)
    rel = set(relevant)
    if not rel:
        return None
    top = dedupe(ranked)[:k]
    return sum(1 for d in top if d in rel) / len(rel)


def mrr_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float | None:
    """Reciprocal rank of the first relevant document within the top ``k`` (0 when none)."""
    _check_k(k)
    rel = set(relevant)
    if not rel:
        return None
    for i, d in enumerate(dedupe(ranked)[:k], start=1):
        if d in rel:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float | None:
    """Normalised discounted cumulative gain with gain 1 per relevant document, log2(rank+1) discount."""
    _check_k(k)
    rel = set(relevant)
    if not rel:
        return None
    top = dedupe(ranked)[:k]
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(top, start=1) if d in rel)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(rel), k) + 1))
    return dcg / idcg


def mean_defined(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not ``None``/NaN; ``None`` when there are none."""
    xs = [v for v in values if v is not None and not math.isnan(v)]
    return sum(xs) / len(xs) if xs else None


def retrieval_scores(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> dict[str, float | None]:
    """The three metrics at ``k``, keyed as the report names them (``recall@10`` ...)."""
    return {
        f"recall@{k}": recall_at_k(ranked, relevant, k),
        f"mrr@{k}": mrr_at_k(ranked, relevant, k),
        f"ndcg@{k}": ndcg_at_k(ranked, relevant, k),
    }
