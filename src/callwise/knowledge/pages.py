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
from typing import Any, Protocol


class _Chunk(Protocol):
    document: str
    score: float


@dataclass(frozen=True)
class PageConfig:
    """``k`` of the rank weight; ``depth`` chunks per page at most; ``method`` "first" or "rrf"."""

    method: str = "rrf"
    k: float = 2.0
    depth: int = 3


# The page ranking the product uses (PageRetriever, wired in agent/wiring/knowledge.py), chosen on the dev
# questions' mean over the public manuals (bench/lexical_headers.py, BM25 over the product's chunks): right
# page first 0.336 -> 0.387 (with clean-up) against ranking pages by their best chunk; k=5 tied on all four sets.
# Issue 9, second session: with the local re-score as the default reranker (agent/wiring/knowledge.py),
# k=1 over 2 chunks matched or beat k=2 over 3 on the dev questions (public-manual mean nDCG@10 0.705 vs
# 0.704, right page first 0.536 vs 0.529) and on spoken ones (0.621 / 0.459 vs 0.607 / 0.414);
# python bench/retrieval_quality.py --experiments --cache-dir DIR.
DEFAULT = PageConfig(method="rrf", k=1.0, depth=2)


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
    """Chunk positions regrouped page by page: the best page's chunks first (at most ``depth`` of a
    page, in their order), then the next page's, and after every page the chunks left over in
    their original order, so a long page cannot crowd every other page out of a short list."""
    cfg = config or PageConfig()
    by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(chunks):
        by_doc.setdefault(c.document, []).append(i)
    head: list[int] = []
    for h in rank_pages(chunks, cfg):
        head.extend(by_doc[h.document][: max(1, cfg.depth)])
    taken = set(head)
    return head + [i for i in range(len(chunks)) if i not in taken]


class PageRetriever:
    """A retriever whose chunks come page by page, the page that answers first.

    Wraps ``callwise.knowledge.retriever.Retriever`` (same ``retrieve`` signature, every other attribute
    read through): the question is cleaned of fillers and stems when ``clean`` is on, the retriever
    is asked for its full candidate list, the chunks are regrouped by ``page_order`` and cut to
    ``top_k``. With ``method="first"`` and no clean-up it passes calls through unchanged.
    """

    def __init__(self, retriever: Any, config: PageConfig | None = None, *, clean: bool | None = None) -> None:
        from callwise.knowledge.query import CLEAN_BY_DEFAULT

        self.retriever = retriever
        self.page_config = config or DEFAULT
        self.clean = CLEAN_BY_DEFAULT if clean is None else clean

    def __getattr__(self, name: str) -> Any:
        return getattr(self.retriever, name)

    async def retrieve(self, query: str, organization_id: str, top_k: int | None = None,
                       mode: str = "hybrid+rerank") -> Any:
        from callwise.knowledge.query import clean_query

        q = clean_query(query) if self.clean and query and query.strip() else query
        if self.page_config.method == "first" and q == query:
            return await self.retriever.retrieve(query, organization_id, top_k=top_k, mode=mode)
        k = top_k or self.retriever.config.top_k
        pool = k if self.page_config.method == "first" else max(k, self.retriever.config.candidates)
        result = await self.retriever.retrieve(q, organization_id, top_k=pool, mode=mode)
        if self.page_config.method != "first":
            order = page_order(result.chunks, self.page_config)
            result.chunks = [result.chunks[i] for i in order]
        result.chunks = result.chunks[:k]
        result.query = query
        return result
