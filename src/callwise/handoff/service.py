"""The handoff service: an escalation becomes a case, and the caller hears only what is true.

``await service.escalate(call, escalation)`` opens the case and queues its outbox actions in one
transaction, then tries the time-critical ones right away and returns a :class:`HandoffResult` with the
sentence to say:

- **callback** (outside service hours, or no live channel configured, or the live attempt failed): "I've
  opened case CW 1 0 4 2 ... during service hours, 9:00 to 18:00 UTC". The case number is spoken only
  because the case row is committed; a Zendesk ticket number replaces it only once the ticket exists.
- **live, SIP caller** with ``CALLWISE_HANDOFF_TRANSFER_TO`` and LiveKit configured: the caller hears that
  they are being transferred (with the case number in case the line drops), then :meth:`HandoffResult.follow_up`
  sends the ``livekit.transfer`` outbox row and waits while it rings (up to ``ringing_timeout_s``, a hold
  line every ``hold_line_s``); a refused, unanswered or unconfirmed transfer turns the case into a callback
  and returns the sentence that says so.
- **live, SIP caller, warm** (``transfer_mode`` ``warm`` for the org, or ``CALLWISE_HANDOFF_TRANSFER_MODE``, and a
  worker whose line can dial: :class:`WarmLine`): the caller hears the same sentence, then the on-duty person is
  dialled into a side room, hears a summary and accepts or declines (``callwise.agent.warm_transfer``). Accepted:
  the person is moved into the caller's room and the agent goes quiet. Declined, busy, not answered or voicemail:
  the case becomes a callback and the caller hears one sentence that says so. A warm transfer that fails for any
  other reason (the trunk refused the dial, the move failed) falls back to the cold transfer. A caller who hangs up
  while the person is dialled leaves a callback case; the side room is closed.
- **live, app or web caller** with an on-duty channel (Slack) for the org: the notice with the case link is
  delivered *before* the caller hears "a colleague has been asked to join"; :class:`LiveWait` then keeps
  the caller company every ``keepalive_s`` and, with nobody joined after ``timeout_s``, turns the case into a
  callback and says so; when the human joins it introduces them and the agent goes quiet.

``handoff_status`` on the case records what happened: ``pending``, ``notified``, ``transfer_ringing``,
``transferred`` (the destination answered), ``warm_dialling``, ``warm_accepted``, ``warm_declined``,
``warm_busy``, ``warm_no_answer``, ``warm_voicemail``, ``warm_failed``, ``caller_left``, ``transfer_unconfirmed`` (LiveKit took the transfer but did not
confirm an answer: a callback too), ``human_joined``, ``notify_failed``, ``transfer_failed``, ``timed_out``,
``callback``.

A row this service delivers itself (the transfer, the live notice, the ticket whose number the caller
hears) is queued due at its deadline, so the background dispatcher running in the same worker cannot
deliver it first (``callwise.integrations.outbox.enqueue``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from callwise.handoff.cases import Case, CaseDesk, spoken_case_number
from callwise.handoff.escalation import Escalation, EscalationRules, reason_sentence
from callwise.handoff.escalator import CallHandoff, CallLine, Escalated
from callwise.handoff.warm import WARM_FAILURES, WarmBrief, WarmDial, WarmLine, WarmOutcome, warm_fallback_message
from callwise.integrations.priority import crm_priority

log = logging.getLogger("callwise.handoff")

CallerKind = Literal["sip", "app"]
Say = Callable[[str], Awaitable[None]]

# ------------------------------------------------------------------------------------------------ sentences
# (why a person is brought in: callwise.handoff.escalation.reason_sentence)
KEEPALIVE = "I'm still finding a colleague for you; thanks for waiting."
HOLD_LINE = "It's still ringing; please stay on the line."


def _reference(ref: str) -> str:
    return f"ticket number {ref}" if ref.isdigit() else f"case number {spoken_case_number(ref)}"


def _contact_promise(contact: dict[str, Any]) -> str:
    if contact.get("phone"):
        return "a member of our support team will call you back"
    if contact.get("email"):
        return "a member of our support team will email you"
    return "a member of our support team will follow up"


def crm_case_payload(base: dict[str, Any], label: str, contact: dict[str, Any]) -> dict[str, Any]:
    """A HubSpot ticket / Salesforce Case for the case (``callwise.integrations.crm.actions``), linked to the CRM contact."""
    lines = "\n".join(base.get("recent") or [])
    return {"provider": contact.get("crm_provider"), "customer_id": contact.get("crm_id"),
            "case": {"case_id": label, "subject": f"Support call escalated: {base.get('reason', '')}",
                     "description": f"Reason: {base.get('reason')} ({base.get('rule') or ''})\n"
                                    f"Matched: {', '.join(base.get('matched') or [])}\nLast words:\n{lines}",
                     "priority": crm_priority(base.get("reason"))}}  # the one reason -> priority map


def callback_message(ref: str, hours: str, contact: dict[str, Any], *, offline: bool) -> str:
    why = "Our team is offline right now, so " if offline else ""
    return (f"{why}I've opened a case for you, {_reference(ref)}, and {_contact_promise(contact)} "
            f"during service hours, {hours}.")


def transfer_message(ref: str) -> str:
    return (f"I'm transferring you to a member of our support team now. If we get cut off, your "
            f"{_reference(ref)} is on file and we'll get back to you.")


def notified_message(ref: str) -> str:
    return (f"I've asked a colleague from our support team to join this call, and they have your "
            f"{_reference(ref)}. Please stay on the line; I'll stay with you until they're here.")


def fallback_message(ref: str, hours: str, contact: dict[str, Any], what: str) -> str:
    return (f"I'm sorry, {what}, so I've made this a callback instead: {_contact_promise(contact)} "
            f"during service hours, {hours}. Your {_reference(ref)}.")


def unconfirmed_message(ref: str, hours: str, contact: dict[str, Any]) -> str:
    return (f"I couldn't confirm that the transfer went through. If you're not connected in a moment, "
            f"{_contact_promise(contact)} during service hours, {hours}. Your {_reference(ref)}.")


_TRANSFER_FAILURES = {"refused": "our colleague's line was busy", "no_answer": "no one could pick up in time"}


def transfer_failure(last_error: str | None) -> str:
    """What to tell the caller from the transfer row's error (``callwise.integrations.livekit_sip``)."""
    for kind, words in _TRANSFER_FAILURES.items():
        if f"({kind})" in (last_error or ""):
            return f"the transfer didn't go through: {words}"
    return "the transfer didn't go through"


def human_joined_message(name: str) -> str:
    return f"{name} from our support team has joined and has the details of your call. I'll hand over to them now."


def _json_field(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        import json

        return dict(json.loads(value) or {})
    return dict(value or {})


# ------------------------------------------------------------------------------------------------ types
@dataclass
class CallContext:
    """What the handoff needs to know about the call."""

    organization_id: str
    session_id: str
    room: str | None = None
    caller: CallerKind = "app"
    participant_identity: str | None = None
    customer: dict[str, Any] = field(default_factory=dict)  # name, email, phone
    recent: list[str] = field(default_factory=list)  # the caller's last few lines, oldest first
    warm: WarmDial | None = None  # the worker can dial the on-duty person into a side room (warm transfer)


@dataclass
class HandoffResult:
    say: str
    case: Case
    handoff: str  # live | callback
    handoff_status: str
    reference: str  # what the caller was given: CW-1042 or the ticket number
    follow_up: Callable[..., Awaitable[str | None]] | None = None  # run after ``say`` was spoken (a SIP transfer)
    wait: LiveWait | None = None  # for an app caller waiting for a human

    def as_dict(self) -> dict[str, Any]:
        # the case's state, which a follow-up (a transfer, a wait) moves on after the first sentence
        return {"case": self.case.label, "case_id": self.case.id, "status": self.case.status,
                "handoff": self.case.handoff or self.handoff, "handoff_status": self.case.handoff_status,
                "reference": self.reference, "ticket_id": self.case.ticket_id}


DeliverNow = Callable[[list[str], float], Awaitable[dict[str, bool]]]
Channels = Callable[[str], Awaitable[set[str]]]


@dataclass(frozen=True)
class HandoffConfig:
    transfer_to: str | None = None  # tel:+1... or sip:...
    livekit_configured: bool = False  # URL + key + secret: transfers and join links possible
    timeout_s: float = 120.0
    keepalive_s: float = 30.0
    immediate_timeout_s: float = 4.0  # how long the caller waits for the live action / ticket before we speak
    ringing_timeout_s: int = 30  # how long a SIP transfer may ring before it counts as not answered
    hold_line_s: float = 10.0  # while it rings, the caller hears HOLD_LINE this often
    speak_allowance_s: float = 60.0  # the transfer sentence is spoken before the transfer starts
    transfer_mode: Literal["cold", "warm"] = "cold"  # an org's settings.transfer_mode wins

    @property
    def transfer_deadline_s(self) -> float:
        """Until then the transfer row is the handoff's own; only after it may a background dispatcher take it."""
        return self.speak_allowance_s + self.ringing_timeout_s + 10.0

    @property
    def immediate_deadline_s(self) -> float:
        return self.immediate_timeout_s + 10.0


class HandoffService:
    """Opens cases, queues and (for the live path) delivers their actions, and words the result."""

    def __init__(self, pool: Any, rules: EscalationRules, *, config: HandoffConfig | None = None,
                 channels: Channels | None = None, deliver_now: DeliverNow | None = None,
                 desk_factory: Callable[[str], CaseDesk] | None = None) -> None:
        self.pool = pool
        self.rules = rules
        self.config = config or HandoffConfig()
        self._channels = channels
        self._deliver_now = deliver_now
        self._desk_factory = desk_factory or (lambda org: CaseDesk(pool, org))

    def desk(self, organization_id: str) -> CaseDesk:
        return self._desk_factory(organization_id)

    @property
    def service_hours(self) -> str:
        p = self.rules.policy
        return f"{p.service_start:%-H:%M} to {p.service_end:%-H:%M} {p.service_tz}"

    async def channels(self, organization_id: str) -> set[str]:
        found = set(await self._channels(organization_id)) if self._channels else set()
        if self.config.livekit_configured and self.config.transfer_to:
            found.add("sip_transfer")
        return found

    async def transfer_mode(self, organization_id: str) -> str:
        """``cold`` or ``warm``: the org's ``settings.transfer_mode``, else ``CALLWISE_HANDOFF_TRANSFER_MODE``."""
        try:
            own = await self.pool.fetchval("select settings->>'transfer_mode' from organizations where id = $1",
                                           organization_id)
        except Exception:  # noqa: BLE001 - no org row readable: the deployment's setting
            log.warning("could not read the org's transfer mode", exc_info=True)
            own = None
        return own if own in ("cold", "warm") else self.config.transfer_mode

    async def escalate(self, call: CallContext, esc: Escalation, *, with_reason: bool = True) -> HandoffResult:
        from callwise.integrations.outbox import enqueue

        channels = await self.channels(call.organization_id)
        in_hours = self.rules.handoff() == "live"
        live_action: str | None = None
        if in_hours and call.room:
            if call.caller == "sip" and "sip_transfer" in channels and call.participant_identity:
                use_warm = call.warm is not None and await self.transfer_mode(call.organization_id) == "warm"
                live_action = "warm.transfer" if use_warm else "livekit.transfer"
            elif call.caller == "app" and "slack" in channels:
                live_action = "slack.notify"
        handoff = "live" if live_action else "callback"
        desk = self.desk(call.organization_id)
        details = {**esc.details, "transcript": call.recent[-1] if call.recent else ""}
        ids: dict[str, str] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            case = await desk.open(conn, session_id=call.session_id, reason=esc.reason, handoff=handoff,
                                   details=details, status="waiting" if live_action else "callback",
                                   handoff_status="pending" if live_action else "callback", room=call.room,
                                   contact=call.customer)
            base = {"case_id": case.id, "case": case.label, "reason": esc.reason, "rule": esc.rule,
                    "matched": esc.matched, "recent": call.recent[-3:], "customer": call.customer,
                    "room": call.room, "handoff": handoff, "service_hours": self.service_hours}
            if live_action == "livekit.transfer":
                ids["live"] = await self._enqueue_transfer(conn, call, case, base)
            if "slack" in channels:  # the on-duty notice: a join request when live, a heads-up for a callback
                live_notice = live_action == "slack.notify"
                ids["slack"] = await enqueue(conn, organization_id=call.organization_id, action="slack.notify",
                                             payload=base, idempotency_key=f"{case.id}:notify", case_id=case.id,
                                             session_id=call.session_id, max_attempts=1 if live_notice else 8,
                                             delay_s=self.config.immediate_deadline_s if live_notice else 0.0) or ""
            if "zendesk" in channels:
                ids["ticket"] = await enqueue(conn, organization_id=call.organization_id, action="zendesk.ticket",
                                              payload=base, idempotency_key=f"{case.id}:ticket", case_id=case.id,
                                              session_id=call.session_id,
                                              delay_s=self.config.immediate_deadline_s) or ""
            elif channels & {"hubspot", "salesforce"}:  # the org's tickets live in its CRM: a ticket / Case there
                await enqueue(conn, organization_id=call.organization_id, action="crm.open_case",
                              payload=crm_case_payload(base, case.label, call.customer), case_id=case.id,
                              idempotency_key=f"{case.id}:crm-case", session_id=call.session_id)
        now_ids = [ids[k] for k in ("slack", "ticket") if ids.get(k)]
        if live_action == "slack.notify" or "ticket" in ids:
            delivered = await self._deliver(now_ids)
        else:
            delivered = {}
        ticket_id = None
        if ids.get("ticket") and delivered.get(ids["ticket"]):
            ticket_id = await self.pool.fetchval("select ticket_id from escalations where organization_id = $1 and id = $2",
                                                 call.organization_id, case.id)
            case.ticket_id = ticket_id
        reference = ticket_id or case.label
        first = reason_sentence(esc.reason) + " " if with_reason else ""
        contact = call.customer or {}

        if live_action == "slack.notify":
            if delivered.get(ids.get("slack", "")):
                await desk.set_handoff(case.id, "notified")
                case.handoff_status = "notified"
                wait = LiveWait(self, call, case, reference)
                return HandoffResult(first + notified_message(reference), case, "live", "notified", reference,
                                     wait=wait)
            await desk.set_handoff(case.id, "notify_failed", status="callback",
                                   note="the on-duty notice could not be delivered")
            case.status, case.handoff, case.handoff_status = "callback", "callback", "notify_failed"
            return HandoffResult(first + fallback_message(reference, self.service_hours, contact,
                                                          "I couldn't reach our on-duty team just now"),
                                 case, "callback", "notify_failed", reference)
        if live_action == "livekit.transfer":
            transfer_id = ids.get("live", "")

            async def transfer(say: Say | None = None) -> str | None:
                return await self._cold_transfer(call, case, base, transfer_id, reference, say)

            return HandoffResult(first + transfer_message(reference), case, "live", "pending", reference,
                                 follow_up=transfer)
        if live_action == "warm.transfer":
            async def warm(say: Say | None = None) -> str | None:
                return await self._warm_transfer(call, case, base, esc, reference, say)

            return HandoffResult(first + transfer_message(reference), case, "live", "pending", reference,
                                 follow_up=warm)
        return HandoffResult(first + callback_message(reference, self.service_hours, contact, offline=not in_hours),
                             case, "callback", "callback", reference)

    async def _enqueue_transfer(self, conn: Any, call: CallContext, case: Case, base: dict[str, Any]) -> str:
        """The ``livekit.transfer`` row, due only at its deadline: this call delivers it (one owner per row)."""
        from callwise.integrations.outbox import enqueue

        return await enqueue(conn, organization_id=call.organization_id, action="livekit.transfer",
                             payload={**base, "participant_identity": call.participant_identity,
                                      "transfer_to": self.config.transfer_to,
                                      "ringing_timeout_s": self.config.ringing_timeout_s},
                             idempotency_key=f"{case.id}:transfer", case_id=case.id, session_id=call.session_id,
                             max_attempts=1, delay_s=self.config.transfer_deadline_s) or ""

    async def _cold_transfer(self, call: CallContext, case: Case, base: dict[str, Any], transfer_id: str,
                             reference: str, say: Say | None) -> str | None:
        """Rings the on-duty number (the caller hears HOLD_LINE meanwhile) until it is answered, refused or rings
        out; returns what to tell the caller, ``None`` once they are connected."""
        desk, contact = self.desk(call.organization_id), call.customer or {}
        case.handoff_status = "transfer_ringing"
        await desk.set_handoff(case.id, "transfer_ringing")
        pending = asyncio.ensure_future(self._deliver([transfer_id], timeout_s=self.config.ringing_timeout_s + 5.0))
        while say is not None and not pending.done():
            done, _ = await asyncio.wait({pending}, timeout=self.config.hold_line_s)
            if not done:
                await say(HOLD_LINE)
        await pending
        row = await self.pool.fetchrow(
            "select status, result, last_error from outbox where organization_id = $1 and id = $2",
            call.organization_id, transfer_id)
        result = _json_field(row["result"]) if row else {}
        if row and row["status"] == "delivered" and result.get("transfer") == "connected":
            await desk.set_handoff(case.id, "transferred", note="the on-duty number answered the transfer")
            case.handoff_status = "transferred"
            return None
        if row and row["status"] == "delivered":  # LiveKit took the REFER, but no one confirmed an answer
            await desk.set_handoff(case.id, "transfer_unconfirmed", status="callback",
                                   note=f"LiveKit answered {result.get('status')}: the transfer was not "
                                        "confirmed; call back if the caller was not connected")
            await self.callback_notice(call, case, base)
            case.status, case.handoff, case.handoff_status = "callback", "callback", "transfer_unconfirmed"
            return unconfirmed_message(reference, self.service_hours, contact)
        await desk.set_handoff(case.id, "transfer_failed", status="callback",
                               note="the SIP transfer failed or was not answered")
        await self.callback_notice(call, case, base)
        case.status, case.handoff, case.handoff_status = "callback", "callback", "transfer_failed"
        return fallback_message(reference, self.service_hours, contact,
                                transfer_failure(row["last_error"] if row else None))

    async def _warm_transfer(self, call: CallContext, case: Case, base: dict[str, Any], esc: Escalation,
                             reference: str, say: Say | None) -> str | None:
        """Dials the on-duty person into a side room (the worker's ``WarmDial``); returns what to tell the caller:
        that a colleague is on the line, or one sentence saying the case is a callback; ``None`` when the caller
        has gone. A warm transfer that failed for a technical reason falls back to the cold transfer."""
        assert call.warm is not None
        desk, contact = self.desk(call.organization_id), call.customer or {}
        case.handoff_status = "warm_dialling"
        await desk.set_handoff(case.id, "warm_dialling", note=f"warm transfer: dialling {self.config.transfer_to}")
        brief = WarmBrief(case=case.label, reason=esc.reason, rule=esc.rule, matched=list(esc.matched),
                          recent=list(call.recent), customer=dict(contact))
        try:
            outcome = await call.warm(brief)
        except Exception as exc:  # noqa: BLE001 - a broken dialler is a failed warm transfer, not a lost call
            log.exception("warm transfer of %s failed", case.label)
            outcome = WarmOutcome("failed", f"{type(exc).__name__}: {exc}")
        if outcome.kind == "accepted":
            who = outcome.person or "the on-duty person"
            await desk.set_handoff(case.id, "warm_accepted",
                                   note=f"warm transfer accepted by {who}; moved into the caller's room")
            case.handoff_status = "warm_accepted"
            return human_joined_message("A colleague")
        if outcome.kind == "caller_left":
            await desk.set_handoff(case.id, "caller_left", status="callback",
                                   note="the caller hung up while the on-duty person was being dialled; the side "
                                        "room was closed; call back")
            await self.callback_notice(call, case, base)
            case.status, case.handoff, case.handoff_status = "callback", "callback", "caller_left"
            return None
        if outcome.kind == "failed" and call.participant_identity:
            await desk.set_handoff(case.id, "warm_failed", note=f"warm transfer failed ({outcome.detail}); falling "
                                                                "back to a cold transfer")
            async with self.pool.acquire() as conn:
                transfer_id = await self._enqueue_transfer(conn, call, case, base)
            return await self._cold_transfer(call, case, base, transfer_id, reference, say)
        status = f"warm_{outcome.kind}"
        await desk.set_handoff(case.id, status, status="callback",
                               note=f"warm transfer {outcome.kind.replace('_', ' ')}"
                                    f"{': ' + outcome.detail if outcome.detail else ''}; turned into a callback")
        await self.callback_notice(call, case, base)
        case.status, case.handoff, case.handoff_status = "callback", "callback", status
        return warm_fallback_message(self.service_hours, _contact_promise(contact),
                                     WARM_FAILURES.get(outcome.kind, "the transfer didn't go through"))

    async def callback_notice(self, call: CallContext, case: Case, base: dict[str, Any] | None = None) -> None:
        """A live handoff became a callback: the on-duty channel hears that too (through the outbox)."""
        from callwise.integrations.outbox import enqueue

        try:
            if "slack" not in await self.channels(call.organization_id):
                return
            payload = {**(base or {"case_id": case.id, "case": case.label, "reason": case.reason,
                                    "rule": case.details.get("rule"), "matched": case.details.get("matched", []),
                                    "recent": call.recent[-3:], "customer": call.customer, "room": call.room,
                                    "service_hours": self.service_hours}), "handoff": "callback"}
            async with self.pool.acquire() as conn:
                await enqueue(conn, organization_id=call.organization_id, action="slack.notify", payload=payload,
                              idempotency_key=f"{case.id}:notify:callback", case_id=case.id, session_id=call.session_id)
        except Exception:  # noqa: BLE001 - the case says callback either way
            log.exception("could not queue the callback notice for %s", case.label)

    async def _deliver(self, ids: list[str], timeout_s: float | None = None) -> dict[str, bool]:
        ids = [i for i in ids if i]
        if not ids or self._deliver_now is None:
            return {}
        budget = self.config.immediate_timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(self._deliver_now(ids, budget), timeout=budget + 1)
        except (TimeoutError, Exception):  # noqa: BLE001 - the outbox retries; the caller hears the truth
            log.warning("immediate delivery of %s did not finish", ids, exc_info=True)
            return {}

    def already_escalated(self, result: HandoffResult) -> str:
        """What to say when the caller triggers another escalation after the first."""
        case = result.case
        if case.handoff_status == "human_joined":
            return "A colleague is with you on this call now."
        if case.status in ("waiting", "claimed") and case.handoff_status in ("notified", "pending"):
            return (f"A colleague from our support team has been asked to join and has your "
                    f"{_reference(result.reference)}; they'll be with you as soon as they're free.")
        if case.handoff_status in ("transfer_ringing", "transferred", "warm_dialling", "warm_accepted"):
            return "Your transfer to our support team is under way."
        return (f"I've already opened a case for you, {_reference(result.reference)}; "
                f"{_contact_promise(case.contact)} during service hours, {self.service_hours}.")


class LiveWait:
    """Stays with an app caller until a human joins (introduce, go quiet) or the timeout (callback, say so)."""

    def __init__(self, service: HandoffService, call: CallContext, case: Case, reference: str) -> None:
        self.service = service
        self.call = call
        self.case = case
        self.reference = reference
        self.joined = asyncio.Event()
        self.human: str | None = None
        self.outcome: str | None = None  # human_joined | timed_out

    def human_joined(self, identity: str, name: str | None = None) -> None:
        """Call when a participant whose identity starts with ``agent-`` enters the room."""
        who = (name or identity.removeprefix("agent-")).strip()
        self.human = None if who in ("", "on-duty") else who  # the shared on-duty link has no person's name
        self.joined.set()

    async def run(self, say: Say, *, timeout_s: float | None = None, keepalive_s: float | None = None) -> str:
        cfg = self.service.config
        timeout_s = cfg.timeout_s if timeout_s is None else timeout_s
        keepalive_s = cfg.keepalive_s if keepalive_s is None else keepalive_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        desk = self.service.desk(self.call.organization_id)
        while True:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self.joined.wait(), timeout=min(keepalive_s, left))
            except TimeoutError:
                if deadline - loop.time() > 0.001:
                    await say(KEEPALIVE)
                continue
            name = self.human or "A colleague"
            await desk.set_handoff(self.case.id, "human_joined", note=f"{name} joined the call")
            self.case.handoff_status = "human_joined"
            self.outcome = "human_joined"
            await say(human_joined_message(name))
            return self.outcome
        await desk.set_handoff(self.case.id, "timed_out", status="callback",
                               note=f"nobody joined within {timeout_s:g} s; turned into a callback")
        await self.service.callback_notice(self.call, self.case)
        self.case.status, self.case.handoff, self.case.handoff_status = "callback", "callback", "timed_out"
        self.outcome = "timed_out"
        await say(fallback_message(self.reference, self.service.service_hours, self.call.customer,
                                   "no one from the team could join in time"))
        return self.outcome


# ------------------------------------------------------------------------------------------------ the turn's escalate stage
class HandoffEscalator:
    """``callwise.handoff.escalator.Escalator`` backed by the handoff service: the case exists before the caller
    hears its number. One instance per worker process; per-call state lives on the call (``CallHandoff``)."""

    def __init__(self, service: HandoffService) -> None:
        self.service = service
        self._tasks: set[asyncio.Task[Any]] = set()

    async def escalate(self, call: CallHandoff, esc: Escalation, *, with_reason: bool = True) -> Escalated:
        if not call.persist or call.session_id is None:  # the nightly run: no case, nothing promised
            return Escalated(reason_sentence(esc.reason), {"reason": esc.reason, "handoff": "none", **esc.details})
        line = call.line
        cc = CallContext(organization_id=call.organization_id, session_id=call.session_id, room=line.room,
                         caller=line.caller, participant_identity=line.participant_identity,
                         customer=call.contact, recent=call.recent,
                         warm=line.warm if isinstance(line, WarmLine) else None)
        try:
            result = await self.service.escalate(cc, esc, with_reason=with_reason)
        except Exception:  # noqa: BLE001 - no case could be opened: promise nothing that is not true
            log.exception("could not open a case")
            return Escalated(
                reason_sentence(esc.reason) + " I'm sorry, I couldn't reach our support team's system just now; "
                f"please call us again during service hours, {self.service.service_hours}.",
                {"reason": esc.reason, "handoff": "callback", "handoff_status": "no_case", **esc.details})
        record = {"reason": esc.reason, "handoff": result.handoff, **esc.details, **result.as_dict()}
        return Escalated(result.say, record, _AfterHandoff(self, call, result, record))

    async def _wait(self, wait: LiveWait, line: CallLine) -> None:
        assert line.speak is not None
        if await wait.run(line.speak) == "human_joined" and line.quiet is not None:
            line.quiet()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for follow-ups in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class _AfterHandoff:
    """What a handoff leaves on the call: its result, and what follows once the turn is stored (the SIP
    transfer; the wait for a human)."""

    def __init__(self, escalator: HandoffEscalator, call: CallHandoff, result: HandoffResult,
                 record: dict[str, Any]) -> None:
        self.escalator, self.call, self.result, self.record = escalator, call, result, record

    def already(self) -> str:
        return self.escalator.service.already_escalated(self.result)

    def human_joined(self, identity: str, name: str | None = None) -> bool:
        if self.result.wait is None:
            return False
        self.result.wait.human_joined(identity, name)
        return True

    async def stored(self, escalation_id: str, turn_id: str | None) -> None:
        """Link the agent's turn to the case, then start what follows the sentence."""
        result, line = self.result, self.call.line
        if turn_id:
            await self.escalator.service.desk(self.call.organization_id).link_turn(result.case.id, turn_id)
        if result.follow_up is not None:
            follow_up, result.follow_up = result.follow_up, None
            self.escalator._spawn(self._follow_up(follow_up, line))
        if result.wait is not None and line.speak is not None and result.wait.outcome is None:
            self.escalator._spawn(self.escalator._wait(result.wait, line))

    async def _follow_up(self, follow_up: Callable[..., Awaitable[str | None]], line: CallLine) -> None:
        if line.settle is not None:  # the caller hears "I'm transferring you" before the line is handed over
            await line.settle()
        fallback = await follow_up(line.speak)
        self.record.update(self.result.as_dict())  # the call's escalation record (the same dict)
        if fallback and line.speak is not None:
            await line.speak(fallback)
        if self.result.case.handoff_status == "warm_accepted" and line.quiet is not None:
            line.quiet()  # the on-duty person is in the room now
