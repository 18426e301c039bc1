"""Rank fusion: Reciprocal Rank Fusion, or a convex combination of min-max normalised scores."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

Ranked = Sequence[tuple[Hashable, float]]


def rrf(lists: Sequence[Ranked], k: int = 60, weights: Sequence[float] | None = None) -> list[tuple[Hashable, float]]:
    """score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1; ties keep first-seen order."""
    weights = weights or [1.0] * len(lists)
    scores: dict[Hashable, float] = {}
    for ranked, w in zip(lists, weights, strict=True):
        for rank, (key, _) in enumerate(ranked, start=1):
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def _minmax(ranked: Ranked) -> dict[Hashable, float]:
    if not ranked:
        return {}
    vals = [s for _, s in ranked]
    lo, hi = min(vals), max(vals)
    span = hi - lo
    return {key: (1.0 if span == 0 else (s - lo) / span) for key, s in ranked}


def weighted(bm25: Ranked, vector: Ranked, alpha: float) -> list[tuple[Hashable, float]]:
    """alpha * vector + (1 - alpha) * bm25 over min-max normalised scores; missing counts as 0."""
    b, v = _minmax(bm25), _minmax(vector)
    keys = list(dict.fromkeys([*(k for k, _ in vector), *(k for k, _ in bm25)]))
    fused = {key: alpha * v.get(key, 0.0) + (1.0 - alpha) * b.get(key, 0.0) for key in keys}
    return sorted(fused.items(), key=lambda kv: -kv[1])
