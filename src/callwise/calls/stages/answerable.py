"""Answerability stage: before an answer is composed, is this a question the knowledge base answers?

Small talk, world knowledge, off-topic requests and account actions the agent cannot take, and
questions no retrieved source is relevant enough to (``callwise.routing.answerability``), get one
sentence saying so and an offer, instead of whatever manual sentence shares a word with them. The
turn ends there: no answerer runs, no source is claimed, no case is opened. When the offer is a
person (an account or billing action, a question the help centre does not cover), the call's
memory keeps it (``CallMemory.offered_person``) and the call's escalation state waits for the reply
(``CallState.offer_pending``), so that the caller's "yes" is taken as a request for a colleague.
"""

from __future__ import annotations

import logging

from callwise.calls.context import TurnContext
from callwise.routing.answerability import DEFAULT_BAR, OFFERS_PERSON, Verdict, intent_of, relevant, reply_for

log = logging.getLogger("callwise.turn")


class Answerable:
    """Stage: refuse, in one sentence with an offer, what the knowledge base cannot answer."""

    name = "answerable"

    async def run(self, ctx: TurnContext) -> None:
        if ctx.deps.retriever is None or ctx.retrieval_error is not None:
            return  # no knowledge base here, or it failed: the answerer's own not-found stands
        chunks = ctx.retrieved[: len(ctx.sources)]  # what the answerer would see
        # the bar reads the vector search's cosine: without one (a BM25-only retriever) only the intent rules apply
        scored = any((getattr(c, "stages", None) or {}).get("vector") for c in chunks)
        # the intent is in the caller's words; the bar reads the standalone question (a follow-up's
        # carried terms included), which is what was retrieved
        verdict: Verdict = intent_of(ctx.guarded or ctx.query) or "answer"
        p: float | None = None
        # the bar was fitted on English questions over English text: its word-coverage signals say nothing
        # about a question in another language (issue 25), so such a call keeps only the intent rules
        if verdict == "answer" and ((scored and ctx.call.language == "en") or not chunks):
            ok, p = relevant(ctx.query or ctx.guarded, chunks, DEFAULT_BAR)
            verdict = "answer" if ok else "no_source"
        offers = verdict in OFFERS_PERSON
        ctx.call.memory.offered_person = offers
        if verdict == "answer":
            return
        if offers:  # the caller's "yes" on the next turn is taken as a request for a colleague (EscalateOnWords)
            ctx.call.state.offer_pending = True
            ctx.outcome.offered_colleague = True
        log.info("not answerable (%s, p=%s): %r", verdict, p, (ctx.guarded or ctx.query)[:200])
        ctx.sources, ctx.passages = [], []
        ctx.outcome.sources = []
        await ctx.say(reply_for(verdict))
        ctx.finish("answer")
