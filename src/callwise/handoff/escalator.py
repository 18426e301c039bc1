"""The escalator contract: what a call hands to the handoff when it escalates, and what comes back.

A call keeps one ``CallHandoff`` on its context: the line (what only the worker knows: the room, a SIP
or app caller, how to speak outside a turn), the caller's contact and last lines, and, after the first
escalation, the ``AfterEscalation`` its escalator left (what to say if the caller triggers another,
what to do once the turn is stored, a human joining). Nothing per call is kept by the escalator.

``Escalator.escalate(call, escalation)`` returns ``Escalated``: the sentence and the escalation record;
the call's escalate stage (``callwise.calls.stages.escalate``) writes them into the turn. ``RulesEscalator``
is the built-in one: it records a case on the desk and says so, and nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from callwise.handoff.cases import CaseDesk
from callwise.handoff.escalation import Escalation, already_recorded_message, recorded_message

log = logging.getLogger("callwise.handoff")

CallerKind = Literal["sip", "app"]
Say = Callable[[str], Awaitable[None]]


@dataclass
class CallLine:
    """What only the worker knows about a call: the room, whether the caller dialled in over SIP, the
    caller's participant identity, and how to speak outside a turn (keep-alive lines, a failed transfer)."""

    room: str | None = None
    caller: CallerKind = "app"
    participant_identity: str | None = None
    speak: Say | None = None
    settle: Callable[[], Awaitable[None]] | None = None  # wait until the agent has finished speaking
    quiet: Callable[[], None] | None = None  # a human took over: stop answering the caller


class AfterEscalation(Protocol):
    """What an escalator leaves on the call after its first escalation."""

    def already(self) -> str:
        """What to say when the caller triggers another escalation."""
        ...

    async def stored(self, escalation_id: str, turn_id: str | None) -> None:
        """The turn and the escalation row are stored: link them, start what follows the sentence."""
        ...

    def human_joined(self, identity: str, name: str | None = None) -> bool:
        """A person joined the room; True when a handoff was waiting for one."""
        ...


@dataclass
class CallHandoff:
    """One call's handoff state; it lives on the call's context (``CallContext.handoff``)."""

    organization_id: str
    session_id: str | None
    persist: bool = True
    line: CallLine = field(default_factory=CallLine)
    contact: dict[str, Any] = field(default_factory=dict)  # name, email, phone, CRM ids
    recent: list[str] = field(default_factory=list)  # the caller's last lines, oldest first
    after: AfterEscalation | None = None

    def human_joined(self, identity: str, name: str | None = None) -> bool:
        """The worker calls this when a participant ``agent-*`` joins; True when a handoff was waiting."""
        return self.after.human_joined(identity, name) if self.after is not None else False


@dataclass
class Escalated:
    """What an escalator did: the caller's words and the escalation as stored on the turn."""

    say: str
    escalation: dict[str, Any]
    after: AfterEscalation | None = None


class Escalator(Protocol):
    async def escalate(self, call: CallHandoff, esc: Escalation, *, with_reason: bool = True) -> Escalated:
        """Decide and start the handoff for the call's first escalation."""
        ...


@dataclass
class _Recorded:
    pool: Any
    organization_id: str
    label: str | None

    def already(self) -> str:
        return already_recorded_message(self.label)

    async def stored(self, escalation_id: str, turn_id: str | None) -> None:
        """Link the case to the agent's turn, now that the turn is stored."""
        if turn_id is None:
            return
        await self.pool.execute(
            "update escalations set turn_id = $3 where organization_id = $1 and id = $2 and turn_id is null",
            self.organization_id, escalation_id, turn_id)

    def human_joined(self, identity: str, name: str | None = None) -> bool:
        return False


class RulesEscalator:
    """One escalation per call, recorded and nothing more: it opens a case on the desk (status
    ``waiting``, ``handoff_status`` ``recorded``: nothing was sent to anyone) and tells the caller
    exactly that, with the case number. It transfers no one and notifies no one, so it never says it
    does; without a stored call (the nightly run) or when the case cannot be stored, it says it
    could not pass the call on."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def escalate(self, call: CallHandoff, esc: Escalation, *, with_reason: bool = True) -> Escalated:
        case = None
        if call.persist and call.session_id is not None and self.pool is not None:
            try:
                async with self.pool.acquire() as conn:
                    case = await CaseDesk(self.pool, call.organization_id).open(
                        conn, session_id=call.session_id, reason=esc.reason, handoff="callback",
                        details={**esc.details, "transcript": call.recent[-1] if call.recent else ""},
                        status="waiting", handoff_status="recorded")
            except Exception:  # noqa: BLE001 - nothing stored: the caller is told so, not promised a case
                log.exception("could not record the escalation")
        record: dict[str, Any] = {"reason": esc.reason, "handoff": "callback" if case else "none", **esc.details}
        if case is not None:
            record.update(case_id=case.id, case=case.label, handoff_status="recorded")
        else:
            record["handoff_status"] = "not_recorded"
        label = case.label if case else None
        return Escalated(recorded_message(esc.reason, label, with_reason=with_reason), record,
                         _Recorded(self.pool, call.organization_id, label))
