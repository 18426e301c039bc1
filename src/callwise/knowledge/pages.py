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


def page_order(chunks: Sequence[_Chunk], config: PageConfig | None = None, pages: Sequence[str] | None = None) -> list[int]:
    """Chunk positions regrouped page by page: the best page's chunks first (at most ``depth`` of a
    page, in their order), then the next page's, and after every page the chunks left over in
    their original order, so a long page cannot crowd every other page out of a short list.
    ``pages``: the page order to use (a learned ranking, a prior fused in); default ``rank_pages``."""
    cfg = config or PageConfig()
    by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(chunks):
        by_doc.setdefault(c.document, []).append(i)
    head: list[int] = []
    order = list(pages) if pages is not None else [h.document for h in rank_pages(chunks, cfg)]
    for doc in order:
        head.extend(by_doc.get(doc, [])[: max(1, cfg.depth)])
    taken = set(head)
    return head + [i for i in range(len(chunks)) if i not in taken]


_SHIPPED: list[Any] = []


def shipped_ranker() -> Any:
    """The learned page ranker that ships with the package (``knowledge/data/page_ranker.json``),
    loaded once; None when the file is missing."""
    if not _SHIPPED:
        from callwise.knowledge.ranking import LearnedPageRanker

        _SHIPPED.append(LearnedPageRanker.load())
    return _SHIPPED[0]


def page_ranking(query: str, chunks: Sequence[Any], config: PageConfig | None = None,
                 ranker: Any = "shipped") -> list[str]:
    """Pages best first: by the learned ranker (``ranker``; "shipped": the packaged one) when there is
    one, else by today's blend (``rank_pages`` with ``config``, default ``DEFAULT``)."""
    r = shipped_ranker() if ranker == "shipped" else ranker
    if r is not None and chunks:
        return [d for d, _ in r.rank(query, chunks)]
    return [h.document for h in rank_pages(chunks, config or DEFAULT)]


#: how many of the previous turn's pages a follow-up's prior covers
PRIOR_PAGES = 5


def prior_from(pages: Sequence[str], n: int = PRIOR_PAGES) -> dict[str, float]:
    """A prior over pages from a previous turn's page ranking: ``1 / (1 + rank)`` for its first ``n``."""
    return {doc: 1.0 / (1 + i) for i, doc in enumerate(pages[:n])}


def fuse_prior(pages: Sequence[str], prior: dict[str, float], weight: float) -> list[str]:
    """A follow-up's own page ranking fused with the previous turn's (``prior_from``): each page scores
    ``(1 - weight) / (1 + own rank) + weight * prior``, so a page the conversation was about rises
    when the follow-up is elliptical (a large ``weight``) and its own words barely move it. Only pages
    the follow-up retrieved are ranked (a prior page it did not retrieve has no chunks to give)."""
    if weight <= 0 or not prior:
        return list(pages)
    scored = [((1 - weight) / (1 + i) + weight * prior.get(doc, 0.0), -i, doc) for i, doc in enumerate(pages)]
    scored.sort(reverse=True)
    return [doc for _, _, doc in scored]


class PageRetriever:
    """A retriever whose chunks come page by page, the page that answers first.

    Wraps ``callwise.knowledge.retriever.Retriever`` (same ``retrieve`` signature, every other attribute
    read through): the question is cleaned of fillers and stems when ``clean`` is on, the retriever
    is asked for its full candidate list, the chunks are regrouped by ``page_order`` and cut to
    ``top_k``. With ``method="first"`` and no clean-up it passes calls through unchanged.
    """

    #: ``retrieve`` takes ``prior``/``prior_weight`` (a follow-up leaning on the previous turn's pages)
    accepts_prior = True

    def __init__(self, retriever: Any, config: PageConfig | None = None, *, clean: bool | None = None,
                 ranker: Any = "shipped") -> None:
        """``ranker``: a learned page ranker (``callwise.knowledge.ranking.LearnedPageRanker``), "shipped"
        for the packaged one (today's blend when the package has none), or None for the blend."""
        from callwise.knowledge.query import CLEAN_BY_DEFAULT

        self.retriever = retriever
        self.page_config = config or DEFAULT
        self.clean = CLEAN_BY_DEFAULT if clean is None else clean
        self.ranker = shipped_ranker() if ranker == "shipped" else ranker

    def __getattr__(self, name: str) -> Any:
        return getattr(self.retriever, name)

    async def retrieve(self, query: str, organization_id: str, top_k: int | None = None,
                       mode: str = "hybrid+rerank", *, prior: dict[str, float] | None = None,
                       prior_weight: float = 0.0) -> Any:
        """``prior`` (``prior_from`` of the previous turn's pages) is fused into the page ranking with
        ``prior_weight`` (``fuse_prior``)."""
        from callwise.knowledge.query import clean_query

        q = clean_query(query) if self.clean and query and query.strip() else query
        if self.page_config.method == "first" and q == query and not prior:
            return await self.retriever.retrieve(query, organization_id, top_k=top_k, mode=mode)
        k = top_k or self.retriever.config.top_k
        pool = k if self.page_config.method == "first" and not prior else max(k, self.retriever.config.candidates)
        result = await self.retriever.retrieve(q, organization_id, top_k=pool, mode=mode)
        if self.page_config.method != "first" or prior:
            # the learned ranker reads the stage scores it was trained on: the local re-score after hybrid
            # fusion; without them (another mode, another reranker, a reranker that fell back) the blend ranks
            learned = self.ranker if (self.ranker is not None and getattr(result, "mode", "") == "hybrid+rerank"
                                      and getattr(result, "reranker", "") == self.ranker.meta.get("reranker", "embedding")
                                      and getattr(result, "rerank_fallback", None) is None) else None
            pages = page_ranking(query, result.chunks, self.page_config, learned) \
                if self.page_config.method != "first" else [h.document for h in rank_pages(result.chunks, self.page_config)]
            if prior and prior_weight > 0:
                pages = fuse_prior(pages, prior, prior_weight)
            order = page_order(result.chunks, self.page_config, pages)
            result.chunks = [result.chunks[i] for i in order]
        result.chunks = result.chunks[:k]
        result.query = query
        return result
