"""Which page answers this: chunk rankings aggregated into page rankings.

The retriever ranks chunks; a caller wants the page (the help article, the manual page) that
answers, and the answerer reads the chunks of that page first. A page whose several chunks match
is usually a better answer than a page with one lucky chunk, so a page's score is a sum over its
chunks of a rank-based weight, ``1 / (k + rank)`` (rank from 1 in the retriever's order). With a
small ``k`` the best chunk dominates (``k`` -> 0 is "rank by the first chunk"); a larger ``k`` lets
the number of matching chunks count. Rank-based weights work the same for BM25, cosine, fused or
reranked scores, which are not on one scale. ``depth`` bounds how many chunks per page count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class _Chunk(Protocol):
    document: str
    score: float


@dataclass(frozen=True)
class PageConfig:
    """``k`` of the rank weight; ``depth`` chunks per page at most; ``method`` "first" or "rrf"."""

    method: str = "rrf"
    k: float = 2.0
    depth: int = 3


# The page ranking the product uses (agent/wiring/knowledge.py); chosen on the mean over the sets.
DEFAULT = PageConfig(method="first")


@dataclass
class PageHit:
    document: str
    score: float
    chunk_ranks: list[int] = field(default_factory=list)  # 0-based positions in the chunk list


def rank_pages(chunks: Sequence[_Chunk], config: PageConfig | None = None) -> list[PageHit]:
    """Pages best first; ties keep the order of each page's best chunk."""
    cfg = config or PageConfig()
    pages: dict[str, PageHit] = {}
    for rank, c in enumerate(chunks):
        hit = pages.get(c.document)
        if hit is None:
            hit = pages[c.document] = PageHit(c.document, 0.0)
        if len(hit.chunk_ranks) >= cfg.depth:
            continue
        hit.chunk_ranks.append(rank)
        if cfg.method == "first":
            if len(hit.chunk_ranks) == 1:
                hit.score = 1.0 / (1 + rank)
        else:
            hit.score += 1.0 / (cfg.k + rank + 1)
    return sorted(pages.values(), key=lambda h: (-h.score, h.chunk_ranks[0]))


def page_order(chunks: Sequence[_Chunk], config: PageConfig | None = None) -> list[int]:
    """Chunk positions regrouped page by page (best page first, each page's chunks in their order)."""
    out: list[int] = []
    hits = rank_pages(chunks, config)
    by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(chunks):
        by_doc.setdefault(c.document, []).append(i)
    for h in hits:
        out.extend(by_doc[h.document])
    return out
