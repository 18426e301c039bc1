"""How a call ended, and the words a caller left unanswered when the line went.

``record_end_reason`` stores why the call ended (``sessions.end_reason``, migration 0018); the first
reason recorded wins, so a hang-up after the agent's goodbye stays ``caller_silent``.
``store_abandoned`` keeps what the caller said when the line dropped before any answer: a user turn
marked ``abandoned`` (``turns.error``), so the transcript loses nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from callwise.calls.store import ConversationStore, TurnRecord

EndReason = Literal["completed", "caller_silent", "caller_hung_up"]
END_REASONS: tuple[str, ...] = ("completed", "caller_silent", "caller_hung_up")


async def record_end_reason(pool: Any, organization_id: str, session_id: str, reason: EndReason) -> None:
    if reason not in END_REASONS:
        raise ValueError(f"end reason must be one of {', '.join(END_REASONS)}, not {reason!r}")
    await pool.execute("update sessions set end_reason = coalesce(end_reason, $3) "
                       "where organization_id = $1 and id = $2", organization_id, session_id, reason)


async def store_abandoned(pool: Any, organization_id: str, session_id: str, text: str, *,
                          speaker: str = "customer") -> str | None:
    """A user turn the caller started but no answer followed (they hung up); None for no words."""
    text = text.strip()
    if not text:
        return None
    return await ConversationStore(pool, organization_id).add_turn(
        session_id, TurnRecord(speaker=speaker, role="user", text=text, error="abandoned"))
