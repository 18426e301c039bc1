"""Retrieval stage: the standalone question against the organization's knowledge base."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from callwise.calls.context import TurnContext
from callwise.calls.stages.understand import key_terms, leans_back
from callwise.routing.types import sources_from

log = logging.getLogger("callwise.turn")

#: weight of the previous turn's pages in a follow-up's page ranking, by how elliptical it is: one
#: content word or none, two or three, four or more (``bench/followup_pages.py --fit``, dev pairs)
PRIOR_WEIGHTS: tuple[float, float, float] = (0.7, 0.6, 0.6)


def prior_weight(text: str, weights: tuple[float, float, float] = PRIOR_WEIGHTS, previous: str | None = None) -> float:
    """How much a turn leans on the previous one's pages: a turn that leans back ("it", "them",
    "and ...", "too", "the same one", or "the file" the previous question ``previous`` named:
    ``leans_back``) or says almost nothing leans by its number of content words; a turn with its own
    subject (two content words or more, nothing leaning back) not at all."""
    n = len(key_terms(text))
    if n <= 1:
        return weights[0]
    if not leans_back(text, previous):
        return 0.0
    return weights[1] if n <= 3 else weights[2]


def page_list(chunks: list[Any]) -> list[str]:
    """The pages of a page-ordered chunk list, best first."""
    return list(dict.fromkeys(str(getattr(c, "document", "")) for c in chunks if getattr(c, "document", "")))


def passage_records(chunks: list[Any]) -> list[dict[str, Any]]:
    """What the answering model saw, as stored with the answer turn: per source its chunk ids, the
    text given to the model (the parent text, small2big) and that text's sha256."""
    out = []
    for i, c in enumerate(chunks, start=1):
        text = getattr(c, "parent_text", None) or getattr(c, "text", "") or ""
        out.append({"index": i, "chunk_id": str(getattr(c, "chunk_id", "") or "") or None,
                    "parent_id": str(getattr(c, "parent_id", "") or "") or None,
                    "document": getattr(c, "document", ""), "text": text,
                    "sha256": hashlib.sha256(text.encode()).hexdigest()})
    return out


class Retrieve:
    """Stage: retrieve ``retrieve_k`` chunks (default: the call's top-k); the first ``top_k`` become
    the sources the router sees. The caller's A/B config may set ``top_k``/``chunk_count`` and
    ``rerank`` (off: hybrid fusion order). A failure leaves the turn without sources, not failed."""

    name = "retrieve"

    def __init__(self, retrieve_k: int | None = None) -> None:
        self.retrieve_k = retrieve_k

    async def run(self, ctx: TurnContext) -> None:
        retriever = ctx.deps.retriever
        if retriever is None:
            return
        ov = ctx.call.overrides
        top_k = int(ov.get("top_k") or ov.get("chunk_count") or ctx.deps.top_k)
        kwargs: dict[str, Any] = {}
        if ov.get("rerank") is not None:
            kwargs["mode"] = "hybrid+rerank" if ov["rerank"] else "hybrid"
        memory = ctx.call.memory
        if memory.last_pages and getattr(retriever, "accepts_prior", False) and ctx.outcome.screen is None:
            # a follow-up keeps its subject: the previous answer's pages, weighted by how elliptical it is
            # ("this error" with a shared screen is about the screen: callwise.calls.stages.screen)
            w = prior_weight(ctx.guarded or ctx.query, previous=memory.last_question)
            if w > 0:
                from callwise.knowledge.pages import prior_from

                kwargs.update(prior=prior_from(memory.last_pages), prior_weight=w)
        t = time.perf_counter()
        try:
            result = await retriever.retrieve(ctx.query, ctx.call.organization_id,
                                              top_k=max(top_k, self.retrieve_k or 0), **kwargs)
        except Exception as exc:  # noqa: BLE001 - answer without sources rather than fail the call
            log.exception("retrieval failed")
            ctx.retrieval_error = f"retrieval failed: {type(exc).__name__}: {exc}"
            return
        finally:
            ctx.outcome.latencies["retrieval_ms"] = (time.perf_counter() - t) * 1000
        ctx.outcome.query_type = getattr(result, "query_type", None)
        ctx.retrieved = list(result.chunks)
        memory.turn_pages = page_list(ctx.retrieved)  # the next follow-up's prior, once this turn is answered
        top = ctx.retrieved[:top_k]
        ctx.sources = sources_from(top)
        ctx.passages = passage_records(top)
        ctx.outcome.sources = [{"index": s.index, "document": s.document, "title": s.title} for s in ctx.sources]
