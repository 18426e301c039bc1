"""Warm transfer with the framework's ``WarmTransferTask``: the on-duty person is dialled into a side room, hears
a summary of the call, and accepts or declines.

:class:`WarmTransferDesk` is the call's ``WarmDial`` (``callwise.handoff.warm``): the handoff service calls it
after the caller has heard that they are being transferred. It runs :class:`CallwiseWarmTransfer` in the
caller's session (through a small host agent whose ``on_enter`` awaits the task, the place the framework lets an
``AgentTask`` run), waits for its result or for the caller to hang up, and says what happened as a
``WarmOutcome``. The task itself dials (``CreateSIPParticipant`` with ``wait_until_answered``), lets the
person's session brief them, and on ``connect_to_caller`` moves them into the caller's room (``MoveParticipant``);
on ``decline_transfer`` or ``voicemail_detected`` it ends with a ``ToolError``.

:class:`CallwiseWarmTransfer` overrides four methods of the framework's task, no more:

- ``_dial_human_agent``: with a ``side_room`` passed in, the person's session is started there instead of in a
  ``rtc.Room`` the task connects itself. Without one (the worker), the framework's own path runs unchanged
  (``rtc.Room`` + ``AccessToken``, the room deleted when the person's session closes). The side room is the
  one part that needs a real LiveKit server; tests pass one whose session runs in text mode.
- ``_originate_human_agent``: the framework's dial, keeping the SIP error (486 busy, 408 not answered, ...)
  that the task otherwise only logs, so the caller can be told the truth.
- ``_merge_calls``: the framework's move, or the same ``MoveParticipant`` for a side room passed in; a move that
  fails ends the task with that error instead of leaving it waiting.
- ``cancel``: the caller's session closes (they hung up) while the person is dialled. The framework cancels the
  task but lets its ``on_enter`` dial on until the phone is answered or rings out, and then briefs a person whom
  nobody is waiting for; here the dial stops at once, through the task's own "human agent failed" future, so
  the dial is cancelled and the side room closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from livekit import api, rtc
from livekit.agents import Agent, AgentSession, get_job_context, llm
from livekit.agents.beta.workflows.warm_transfer import WarmTransferResult, WarmTransferTask
from livekit.agents.llm import ToolError

from callwise.handoff.warm import WarmBrief, WarmOutcome

log = logging.getLogger("callwise.handoff.warm")

#: SIP statuses of a dial that rang and was not picked up, and of a phone that said busy
NOT_ANSWERED_SIP = frozenset({408, 480, 487})
BUSY_SIP = frozenset({486, 600})
DECLINED_SIP = frozenset({603})

BRIEF_LINES = 4  # the last lines of the call the person hears


class SideRoom(Protocol):
    """Where the on-duty person's session runs while they are briefed (the warm transfer's side room)."""

    name: str
    room: rtc.Room  # handed to ``_originate_human_agent`` (the framework's Twilio variant reads it)

    async def start(self, session: AgentSession, agent: Agent, *, identity: str) -> None:
        """Start the person's session (before the dial: they hear the agent as soon as they pick up)."""
        ...

    def answered(self, session: AgentSession) -> None:
        """The person picked up (the dial returned)."""
        ...

    async def aclose(self) -> None:
        """Close the side room (``DeleteRoom``): the dial still ringing into it is hung up."""
        ...


class CallwiseWarmTransfer(WarmTransferTask):
    """The framework's warm transfer with the side room passed in and its failures kept (module docstring)."""

    def __init__(self, *args: Any, side_room: SideRoom | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.side_room = side_room
        self.dial_error: api.TwirpError | None = None
        self.move_error: Exception | None = None
        self.person_session: AgentSession | None = None  # the person's side, once dialled
        self.caller_left = False
        self._closing: set[asyncio.Future[None]] = set()

    def cancel(self) -> None:
        self.caller_left = True
        with contextlib.suppress(asyncio.InvalidStateError):
            self._human_agent_failed_fut.set_result(None)  # on_enter stops waiting for the dial and cancels it
        super().cancel()

    async def _dial_human_agent(self) -> AgentSession:
        if self.side_room is None:
            session = await super()._dial_human_agent()
            self.person_session = session
            return session
        side = self.side_room
        person: AgentSession = AgentSession()
        agent = Agent(instructions=self.instructions, llm=self.llm, tools=self.tools, chat_ctx=self.chat_ctx)

        def closed(_: Any) -> None:  # as the framework's side room: deleted when the person's session closes
            task = asyncio.ensure_future(side.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

        try:
            await side.start(person, agent, identity=self._human_agent_identity)
            person.on("close", closed)
            await self._originate_human_agent(room_name=side.name, identity=self._human_agent_identity,
                                              room=side.room)
        except BaseException:
            person.off("close", closed)
            person.shutdown(drain=False)
            with contextlib.suppress(Exception):
                await asyncio.shield(side.aclose())
            raise
        self.person_session = person
        side.answered(person)
        return person

    async def _originate_human_agent(self, *, room_name: str, identity: str, room: rtc.Room) -> None:
        try:
            await super()._originate_human_agent(room_name=room_name, identity=identity, room=room)
        except api.TwirpError as exc:
            self.dial_error = exc
            raise

    async def _merge_calls(self) -> None:
        try:
            if self.side_room is None:
                await super()._merge_calls()
            else:
                assert self._caller_room is not None
                await get_job_context().api.room.move_participant(api.MoveParticipantRequest(
                    room=self.side_room.name, identity=self._human_agent_identity,
                    destination_room=self._caller_room.name))
        except Exception as exc:
            self.move_error = exc
            self._set_result(ToolError(f"could not move the on-duty person into the caller's room: {exc}"))
            raise


class _TransferHost(Agent):
    """Holds the caller's session while the warm transfer runs: ``on_enter`` is where an ``AgentTask`` may be
    awaited. ``done`` gets the task's result or its error."""

    def __init__(self, task: CallwiseWarmTransfer, instructions: str | Any) -> None:
        super().__init__(instructions=instructions)
        self.task = task
        self.done: asyncio.Future[WarmTransferResult | Exception] = asyncio.get_running_loop().create_future()

    async def on_enter(self) -> None:
        try:
            result: WarmTransferResult | Exception = await self.task
        except Exception as exc:  # noqa: BLE001 - the task's ToolError says why; the desk reads it
            result = exc
        if not self.done.done():
            self.done.set_result(result)


def outcome_of(result: WarmTransferResult | Exception, task: CallwiseWarmTransfer) -> WarmOutcome:
    """What happened, from the task's result and the errors it kept."""
    if isinstance(result, WarmTransferResult):
        return WarmOutcome("accepted", person=result.human_agent_identity)
    if task.caller_left:
        return WarmOutcome("caller_left", str(result))
    text = str(result)
    if task.move_error is not None:
        return WarmOutcome("failed", f"MoveParticipant: {task.move_error}")
    if text.startswith("human agent declined"):
        return WarmOutcome("declined", text.split(":", 1)[-1].strip())
    if text.startswith("voicemail detected"):
        return WarmOutcome("voicemail")
    if text.startswith("room closed"):
        return WarmOutcome("declined", "the on-duty person hung up before deciding")
    err = task.dial_error
    if isinstance(err, api.SipCallError) and err.sip_status_code is not None:
        code = err.sip_status_code
        detail = f"SIP {code} {err.sip_status or ''}".strip()
        if code in BUSY_SIP:
            return WarmOutcome("busy", detail)
        if code in NOT_ANSWERED_SIP:
            return WarmOutcome("no_answer", detail)
        if code in DECLINED_SIP:
            return WarmOutcome("declined", detail)
        return WarmOutcome("failed", detail)
    if err is not None:
        return WarmOutcome("failed", f"CreateSIPParticipant: {err}")
    return WarmOutcome("failed", text)


#: why the call came to a person, as the on-duty person is told it (``callwise.handoff.escalation`` reasons)
WHY: dict[str, str] = {
    "explicit_request": "they asked for a person",
    "frustration": "they are frustrated",
    "billing_dispute": "they dispute a charge",
    "security_privacy": "an account security or privacy matter",
    "legal_refund": "a legal or refund matter that needs approval",
    "outage": "they are reporting an outage",
    "repeated_failure": "the assistant could not solve it after several tries",
    "low_confidence": "the assistant was not sure of the answer",
    "router_failure": "the assistant had technical trouble",
}


def briefing(brief: WarmBrief, history: str) -> str:
    """What the on-duty person hears first: the case, why it came to a person, the last lines of the call
    (``WarmTransferTask._format_conversation_history``, without the agent's own transfer sentence at its end)."""
    who = brief.customer.get("name") or "a caller"
    why = WHY.get(brief.reason, brief.reason.replace("_", " "))
    matched = f', in their words "{brief.matched[0]}"' if brief.matched else ""
    lines = [ln.strip() for ln in history.strip().splitlines() if ln.strip()]
    while lines and lines[-1].startswith("Assistant:"):
        lines.pop()  # the sentence that told the caller about this transfer
    lines = lines[-BRIEF_LINES:] or [f"Caller: {t}" for t in brief.recent[-BRIEF_LINES:]]
    said = " ".join(ln if ln.endswith((".", "?", "!")) else ln + "." for ln in lines)
    return (f"Hello, this is the support assistant with a transfer. {who.capitalize() if who == 'a caller' else who}, "
            f"case {brief.case}, needs a person: {why}{matched}. The call so far: {said} Can you take the call now? "
            f"Say yes and I'll put them through, or no and I'll book a callback.")


@dataclass(frozen=True)
class WarmDialConfig:
    """How the on-duty person is dialled (``CALLWISE_HANDOFF_TRANSFER_TO``, the outbound trunk, the ring time)."""

    sip_call_to: str  # +15550001111 or sip:user@host
    sip_trunk_id: str
    sip_number: str = ""
    ringing_timeout_s: float = 30.0
    language: str = "en"
    hold_audio: Any = None  # None: the framework's hold music; False: none (no room to play it in)


def sip_call_to(transfer_to: str) -> str:
    """``tel:+1555...`` -> ``+1555...`` (what ``CreateSIPParticipant`` dials); a ``sip:`` URI stays as it is."""
    return transfer_to.removeprefix("tel:")


class WarmTransferDesk:
    """The call's ``WarmDial``: runs :class:`CallwiseWarmTransfer` in the caller's session and reports the outcome.

    ``desk_llm`` builds the side room's LLM from the briefing (``callwise.agent.plugins.llm_transfer_desk`` or a
    configured generative tier); ``side_room`` (tests) replaces the framework's own ``rtc.Room`` path."""

    def __init__(self, session: AgentSession, config: WarmDialConfig, *, desk_llm: Callable[[str], llm.LLM],
                 side_room: Callable[[str], SideRoom] | None = None) -> None:
        self.session = session
        self.config = config
        self.desk_llm = desk_llm
        self.side_room = side_room
        self.last_task: CallwiseWarmTransfer | None = None

    def task_for(self, brief: WarmBrief) -> CallwiseWarmTransfer:
        chat_ctx = self.session.history.copy()
        history = WarmTransferTask._format_conversation_history(chat_ctx)
        caller_room = get_job_context().room.name
        hold: dict[str, Any] = {} if self.config.hold_audio is None else {
            "hold_audio": self.config.hold_audio or None}
        return CallwiseWarmTransfer(
            sip_call_to=self.config.sip_call_to, sip_trunk_id=self.config.sip_trunk_id,
            sip_number=self.config.sip_number, ringing_timeout=self.config.ringing_timeout_s,
            chat_ctx=chat_ctx, llm=self.desk_llm(briefing(brief, history)),
            extra_instructions=f"This is case {brief.case}; the caller needs a person because of "
                               f"{brief.reason.replace('_', ' ')}.",
            side_room=self.side_room(f"{caller_room}-human-agent") if self.side_room else None, **hold)

    async def __call__(self, brief: WarmBrief) -> WarmOutcome:
        task = self.task_for(brief)
        self.last_task = task
        previous = self.session.current_agent
        host = _TransferHost(task, previous.instructions)
        gone = asyncio.Event()

        def on_close(_: Any) -> None:
            gone.set()

        self.session.on("close", on_close)
        try:
            self.session.update_agent(host)
            waiting: asyncio.Future[Any] = asyncio.ensure_future(gone.wait())
            try:
                await asyncio.wait([host.done, waiting], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()
        finally:
            self.session.off("close", on_close)
        if not host.done.done():
            log.info("the caller hung up during the warm transfer of %s", brief.case)
            return WarmOutcome("caller_left")
        outcome = outcome_of(host.done.result(), task)
        log.info("warm transfer of %s: %s %s", brief.case, outcome.kind, outcome.detail)
        if outcome.kind not in ("accepted", "caller_left"):
            self.session.update_agent(previous)  # back to the support agent: the caller hears what happened
        return outcome


# ------------------------------------------------------------------------------------------------ wiring
GENERATIVE_PROVIDERS = ("openai", "openai_compatible")  # tiers the framework's OpenAI plugin can drive


def desk_llm_for(settings: Any, language: Callable[[], str] = lambda: "en") -> Callable[[str], llm.LLM]:
    """The side room's LLM: the highest configured generative tier that speaks the OpenAI API (it follows the
    task's instructions and calls its tools), else the offline :class:`TransferDeskLLM`."""
    import os

    from callwise.agent.plugins.llm_transfer_desk import TransferDeskLLM
    from callwise.wiring.routing import plan_tiers

    try:
        plan = plan_tiers(settings)
    except Exception:  # noqa: BLE001 - a broken tiers file is the router's error to report; the desk stays offline
        log.warning("tiers not readable; the transfer desk uses its offline voice", exc_info=True)
        plan = None
    tiers = [] if plan is None or plan.offline else [
        cfg for name, cfg in sorted(plan.tiers.items(), reverse=True) if cfg.provider in GENERATIVE_PROVIDERS]
    if not tiers:
        return lambda text: TransferDeskLLM(text, language=language())
    cfg = tiers[0]
    key = (os.environ.get(cfg.api_key_env) if cfg.api_key_env else None) or (
        settings.openai_api_key.get_secret_value() if settings.openai_api_key else None)
    from livekit.plugins import openai

    log.info("the transfer desk speaks through %s (%s)", cfg.name, cfg.model)
    from livekit.agents.types import NOT_GIVEN

    return lambda text: openai.LLM(model=cfg.model, base_url=cfg.base_url or NOT_GIVEN, api_key=key or "none")


def warm_config(settings: Any, language: str = "en") -> WarmDialConfig | None:
    """The dial for a warm transfer, or None where one is impossible (no on-duty number, no outbound trunk,
    LiveKit's server API not configured): then the cold transfer is the only one."""
    import os

    trunk = settings.handoff_sip_trunk  # CALLWISE_HANDOFF_SIP_TRUNK or LIVEKIT_SIP_OUTBOUND_TRUNK
    to = settings.handoff_transfer_to
    if not (to and trunk and settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret):
        return None
    return WarmDialConfig(sip_call_to=sip_call_to(to), sip_trunk_id=trunk,
                          sip_number=os.environ.get("LIVEKIT_SIP_NUMBER", ""),
                          ringing_timeout_s=float(settings.handoff_ringing_timeout_s), language=language)
