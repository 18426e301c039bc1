"""Screen stage: the customer's shared screen joins the question when the turn refers to it.

"What does this error mean?" says nothing a knowledge base can find; the dialog on the customer's
screen says ``E-4290 Rate limit exceeded``. When the call has a shared screen
(``CallContext.screen``, a ``callwise.calls.screen.ScreenReader``) and the turn refers to it,
retrieval searches the question plus the screen's words (codes first); the OCR text is reported
with the turn (``TurnOutcome.screen``). The text is data: it extends the search, it is never
given to a model as instructions (``callwise.calls.screen.as_source`` fences it for prompts).

Stored (``callwise.calls.screen_store``, migration 0017): the text the turn used, after the org's PII
redaction, on the customer's turn row (``turns.screen``); the frame only where the organization allows
it (``organizations.store_screen_frames``, default off).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import replace
from typing import Any

from callwise.calls.context import TurnContext
from callwise.calls.guard import guard
from callwise.calls.screen import ScreenText, screen_query
from callwise.calls.screen_store import frames_allowed, save_frame, save_turn_screen
from callwise.routing.providers.images import TurnImage, use_turn_image

log = logging.getLogger("callwise.screen")

#: seconds a turn that refers to the screen waits for its latest frame to be read (a live share's
#: ``prepare``, callwise.agent.screen_share); past it the turn goes on with the last text read
PREPARE_S = 4.0


def sees_images(router: Any) -> bool:
    """A tier of ``router`` takes the turn's frame (``vision`` providers)."""
    return any(getattr(t.provider, "vision", False) for t in getattr(router, "tiers", None) or [])


def png_bytes(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class ReadScreen:
    """Stage: between query understanding and retrieval."""

    name = "screen"

    def __init__(self) -> None:
        self._frames_allowed: dict[str, bool] = {}  # per call: the organization's setting, read once

    async def run(self, ctx: TurnContext) -> None:
        use_turn_image(None)  # a frame is for the turn that used it, never the next one
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
        self._show(ctx, reader, screen)
        await self._keep(ctx, reader, screen)

    @staticmethod
    def _show(ctx: TurnContext, reader: Any, screen: ScreenText) -> None:
        """The frame itself for a tier that can see (callwise.routing.providers.vision), for this turn only. Not
        where the org redacts PII: a frame cannot be redacted, so such a model gets the redacted text alone."""
        if not sees_images(ctx.deps.router):
            return
        if ctx.deps.redact_pii:
            log.info("shared screen frame not sent to the vision tier: the organization redacts PII")
            return
        image = getattr(reader, "image", lambda _sha: None)(screen.frame_sha)
        if image is None:
            return
        started = time.perf_counter()
        png = png_bytes(image)
        use_turn_image(TurnImage(png, image.width, image.height))
        ctx.outcome.latencies["frame_png_ms"] = (time.perf_counter() - started) * 1000

    async def _keep(self, ctx: TurnContext, reader: Any, screen: ScreenText) -> None:
        """The redacted text with the customer's turn; the frame only where the organization allows it."""
        call = ctx.call
        if not call.persist or call.session_id is None or ctx.outcome.screen is None:
            return
        try:
            await save_turn_screen(ctx.deps.pool, call.organization_id, call.session_id, ctx.outcome.screen)
            if call.session_id not in self._frames_allowed:
                self._frames_allowed[call.session_id] = await frames_allowed(ctx.deps.pool, call.organization_id)
            image = getattr(reader, "image", lambda _sha: None)(screen.frame_sha)
            if self._frames_allowed[call.session_id] and image is not None:
                await save_frame(ctx.deps.pool, call.organization_id, call.session_id, screen.frame_sha, image)
        except Exception:  # noqa: BLE001 - a storage hiccup must not end the turn; the answer goes on
            log.exception("could not store the shared screen with the turn")
