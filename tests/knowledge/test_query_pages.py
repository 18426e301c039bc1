"""Query clean-up for speech and the page ranking built from chunk rankings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from callwise.knowledge.pages import PageConfig, page_order, rank_pages
from callwise.knowledge.query import clean_query


@pytest.mark.parametrize(
    ("spoken", "topic"),
    [
        ("um, hi, so how do I, like, get my money back?", "get my money back?"),
        ("is there a way to see who last changed each line of a file", "see who last changed each line of a file"),
        ("can you tell me how to reset my password please", "reset my password"),
        ("I need a scratch file that gets cleaned up automatically", "a scratch file that gets cleaned up automatically"),
        ("what's the right way to measure how long a small piece of code takes",
         "measure how long a small piece of code takes"),
        ("E-1042", "E-1042"),
    ],
)
def test_clean_query_keeps_the_topic(spoken: str, topic: str) -> None:
    assert clean_query(spoken) == topic


def test_clean_query_never_empties_a_query() -> None:
    assert clean_query("um, okay, thanks") == "um, okay, thanks"
    assert clean_query("  how do I  ") == "how do I"


@dataclass
class Chunk:
    document: str
    score: float = 0.0


def test_first_ranks_pages_by_their_best_chunk() -> None:
    chunks = [Chunk("a"), Chunk("b"), Chunk("b"), Chunk("b"), Chunk("c")]
    assert [h.document for h in rank_pages(chunks, PageConfig(method="first"))] == ["a", "b", "c"]


def test_rrf_lets_several_matching_chunks_outrank_one_lucky_chunk() -> None:
    chunks = [Chunk("a"), Chunk("b"), Chunk("b"), Chunk("b"), Chunk("c")]
    hits = rank_pages(chunks, PageConfig(method="rrf", k=2.0, depth=3))
    assert [h.document for h in hits] == ["b", "a", "c"]
    assert hits[0].chunk_ranks == [1, 2, 3]
    # depth bounds the chunks a page may count: with one, the best chunk decides again
    assert [h.document for h in rank_pages(chunks, PageConfig(method="rrf", k=2.0, depth=1))] == ["a", "b", "c"]


def test_page_order_groups_chunks_page_by_page() -> None:
    chunks = [Chunk("a"), Chunk("b"), Chunk("a"), Chunk("b"), Chunk("b")]
    order = page_order(chunks, PageConfig(method="rrf", k=2.0, depth=3))
    assert [chunks[i].document for i in order] == ["b", "b", "b", "a", "a"]
    assert sorted(order) == list(range(len(chunks)))
    # at most depth chunks of a page before the next page; the rest keep their order at the end
    order = page_order(chunks, PageConfig(method="rrf", k=2.0, depth=2))
    assert order == [0, 2, 1, 3, 4]  # a: 1/3 + 1/5 beats b: 1/4 + 1/6; b's third chunk waits at the end


class _Result:
    def __init__(self, query: str, chunks: list[Chunk]) -> None:
        self.query, self.chunks = query, chunks


class _Inner:
    """A stand-in for the Retriever below the page layer: records what it was asked."""

    class config:  # noqa: N801 - mirrors Retriever.config
        top_k = 2
        candidates = 6

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []

    async def retrieve(self, query: str, organization_id: str, top_k: int | None = None, mode: str = "hybrid") -> _Result:
        self.calls.append((query, top_k))
        docs = ["a", "b", "b", "b", "c", "a"][: top_k or 2]
        return _Result(query, [Chunk(d) for d in docs])


async def test_page_retriever_asks_for_candidates_and_returns_the_best_page_first() -> None:
    from callwise.knowledge.pages import PageRetriever

    inner = _Inner()
    pr = PageRetriever(inner, PageConfig(method="rrf", k=2.0, depth=3), clean=True, ranker=None)  # the blend
    res = await pr.retrieve("um, so how do I find page b", "org")
    assert inner.calls == [("find page b", 6)]
    assert [c.document for c in res.chunks] == ["b", "b"] and res.query == "um, so how do I find page b"
    assert pr.config.candidates == 6  # every other attribute is the wrapped retriever's

    passthrough = PageRetriever(inner, PageConfig(method="first"), clean=False)
    res = await passthrough.retrieve("how do I find page b", "org", top_k=3)
    assert inner.calls[-1] == ("how do I find page b", 3) and [c.document for c in res.chunks] == ["a", "b", "b"]


async def test_page_retriever_ranks_pages_with_the_shipped_ranker_even_on_bare_chunks() -> None:
    from callwise.knowledge.pages import PageRetriever, shipped_ranker

    assert shipped_ranker() is not None  # knowledge/data/page_ranker.json ships with the package
    class Reranked(_Inner):
        async def retrieve(self, *a, **kw):  # type: ignore[no-untyped-def]
            res = await super().retrieve(*a, **kw)
            res.mode, res.reranker, res.rerank_fallback = "hybrid+rerank", "embedding", None
            return res

    seen: list[str] = []

    class Spy:
        meta = {"reranker": "embedding"}

        def rank(self, query, chunks):  # type: ignore[no-untyped-def]
            seen.append(query)
            return [("c", 1.0), ("a", 0.5), ("b", 0.1)]

    pr = PageRetriever(Reranked(), clean=True)  # chunks with no stage scores, titles or text still rank
    res = await pr.retrieve("how do I find page b", "org")
    assert {c.document for c in res.chunks} <= {"a", "b", "c"} and len(res.chunks) == 2
    spy = PageRetriever(Reranked(), clean=True, ranker=Spy())
    res = await spy.retrieve("um, how do I find page b", "org")
    assert seen == ["um, how do I find page b"] and [c.document for c in res.chunks] == ["c", "a"]
    blend = PageRetriever(_Inner(), clean=True, ranker=Spy())  # no re-score stage: the blend, not the ranker
    res = await blend.retrieve("how do I find page b", "org")
    assert len(seen) == 1 and res.chunks[0].document == "a"  # the blend: a has the first chunk
