"""What the caller heard of an answer they talked over.

An answer the caller interrupts is stored by the turn (``calls.pipeline.TurnStream.aclose``) as it
was handed to speech, and marked ``interrupted``; only the voice layer knows how much of it played
before the agent stopped (the framework's transcript, synchronised to the audio). ``store_heard``
writes that part into the stored turn's ``heard`` column (migration 0018), once the turn has a row:
persistence runs in the background after a barge-in, so the heard text may arrive first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from callwise.calls.context import TurnOutcome

log = logging.getLogger("callwise.heard")


def answered_turn(outcomes: list[TurnOutcome], question: str | None) -> TurnOutcome | None:
    """The latest turn that answered ``question`` (the caller's words before the interrupted answer); None
    when no turn did (the caller cut in before the support turn began)."""
    wanted = " ".join((question or "").split())
    for out in reversed(outcomes):
        if wanted and " ".join(out.transcript.split()) == wanted:
            return out
    return None


async def store_heard(pool: Any, organization_id: str, outcome: TurnOutcome, heard: str, *,
                      wait_s: float = 10.0) -> str | None:
    """Record ``heard`` on ``outcome``'s stored answer; the turn id, or None when the turn was never stored
    within ``wait_s`` (logged: the answer row is missing, not the heard text's fault)."""
    deadline = time.monotonic() + wait_s
    while outcome.turn_id is None:
        if time.monotonic() >= deadline:
            log.warning("the interrupted answer to %r was not stored within %.0f s; what was heard (%r) is lost",
                        outcome.transcript[:60], wait_s, heard[:60])
            return None
        await asyncio.sleep(0.02)
    await pool.execute(
        "update turns set heard = $3, error = coalesce(error, 'interrupted') where organization_id = $1 and id = $2",
        organization_id, outcome.turn_id, heard.strip())
    return outcome.turn_id
