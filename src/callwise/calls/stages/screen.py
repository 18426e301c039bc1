"""Screen stage: the customer's shared screen joins the question when the turn refers to it.

"What does this error mean?" says nothing a knowledge base can find; the dialog on the customer's
screen says ``E-4290 Rate limit exceeded``. When the call has a shared screen
(``CallContext.screen``, a ``callwise.calls.screen.ScreenReader``) and the turn refers to it,
retrieval searches the question plus the screen's words (codes first); the OCR text is reported
with the turn (``TurnOutcome.screen``). The text is data: it extends the search, it is never
given to a model as instructions (``callwise.calls.screen.as_source`` fences it for prompts).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from callwise.calls.context import TurnContext
from callwise.calls.guard import guard
from callwise.calls.screen import screen_query

log = logging.getLogger("callwise.screen")

#: seconds a turn that refers to the screen waits for its latest frame to be read (a live share's
#: ``prepare``, callwise.agent.screen_share); past it the turn goes on with the last text read
PREPARE_S = 4.0


class ReadScreen:
    """Stage: between query understanding and retrieval."""

    name = "screen"

    async def run(self, ctx: TurnContext) -> None:
        reader = ctx.call.screen
        if reader is None:
            return
        prepare = getattr(reader, "prepare", None)
        if prepare is not None:  # a live share: the frame on screen now, read if it is new
            try:
                await asyncio.wait_for(prepare(ctx.text), PREPARE_S)
            except TimeoutError:
                log.warning("the shared screen's latest frame was not read within %.0f s; using the last one", PREPARE_S)
        screen = reader.for_turn(ctx.text)
        if screen is None:
            return
        # what leaves for a model or a search API gets the org's PII redaction, like the caller's words
        guarded = guard(screen.text, redact=ctx.deps.redact_pii)
        if guarded.injection_markers:
            log.warning("injection markers on the shared screen (kept as data): %s", guarded.injection_markers)
        screen = replace(screen, text=guarded.text)
        ctx.query = screen_query(ctx.query or ctx.guarded, screen)
        ctx.outcome.query = ctx.query
        # the answerer is asked the question with what the screen says where its codes are ("E-4290 Rate
        # limit exceeded"): "this error" alone names no page's sentences
        shown = screen_query("", screen, max_words=12)
        ctx.answer_query = f"{(ctx.answer_query or ctx.guarded).rstrip()} (on the customer's screen: {shown})"
        ctx.outcome.screen = screen.as_dict()
        if not screen.cached:
            ctx.outcome.latencies["ocr_ms"] = screen.ocr_ms
