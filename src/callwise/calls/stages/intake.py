"""The first stages: store the customer's words, then guard them."""

from __future__ import annotations

import logging

from callwise.calls.context import TurnContext
from callwise.calls.guard import guard
from callwise.calls.store import ConversationStore, TurnRecord

log = logging.getLogger("callwise.turn")


class RecordCustomerWords:
    """Stage: store the customer's words (the original text; STT latency when known) first, so a
    turn that fails later still shows what was said."""

    name = "record"

    async def run(self, ctx: TurnContext) -> None:
        call = ctx.call
        if not call.persist or call.session_id is None:
            return
        await ConversationStore(ctx.deps.pool, call.organization_id).add_turn(call.session_id, TurnRecord(
            speaker=call.speaker, role="user", text=ctx.text, latencies=dict(ctx.outcome.latencies)))


class Guard:
    """Stage: PII redaction (per setting) for everything that leaves for a model; injection
    markers are logged (the prompt fences customer text as data either way)."""

    name = "guard"

    async def run(self, ctx: TurnContext) -> None:
        guarded = guard(ctx.text, redact=ctx.deps.redact_pii)
        ctx.guarded = guarded.text
        ctx.query = guarded.text
        ctx.injection_markers = list(guarded.injection_markers)
        if guarded.injection_markers:
            log.warning("injection markers in a customer turn: %s", guarded.injection_markers)
