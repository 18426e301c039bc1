"""What a real phone line throws at a call, handled on the framework's own ``AgentSession``.

* Silence: the session's user-away timer (``user_away_timeout``) marks the caller ``away`` after
  ``prompt_s`` of silence on both sides; the agent asks once whether they are still there (in the
  call's language), and after ``goodbye_s`` of silence in all it says goodbye and ends the call
  (``sessions.end_reason = 'caller_silent'``). Any sound from the caller starts the count again.
* Talking over the agent: the session's VAD barge-in, with a short ``min_duration`` so the agent
  stops within about 0.3 s of the caller's first sound; an answer that was cut off is stored with
  what the caller heard of it (``turns.heard``, from the framework's interrupted message, whose
  text is the transcript synchronised to the audio that played).
* A cough or a burst of noise: too short for a turn. The VAD's speech must last ``min_duration``
  before the agent pauses (and it resumes when no words follow: the framework's false-interruption
  resume), and a sound with no words gives no user turn, so no answer.
* A hang-up: the session closes (``participant_disconnected`` in a room, the input's end in
  ``callwise simulate --live``); what the caller had said that no answer followed is stored as an
  ``abandoned`` user turn and the end reason is ``caller_hung_up``. The call's end and the survey
  follow-up run as after any call (the worker's ordered shutdown, or ``simulate_live``).

``line_session_options`` gives the ``AgentSession`` arguments these need; ``attach_line_handlers``
wires one call's handlers and returns the ``CallLine`` whose ``settled()`` a call's shutdown awaits
before ``call.end()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import AgentSession, CloseReason, llm
from livekit.agents.voice.turn import TurnHandlingOptions

from callwise.calls import SupportCall
from callwise.calls.ending import EndReason, record_end_reason, store_abandoned
from callwise.calls.heard import answered_turn, store_heard
from callwise.calls.languages import line
from callwise.calls.store import ConversationStore, TurnRecord

log = logging.getLogger("callwise.line")

#: speech the VAD must hear before the agent stops talking: a caller's word stops it within ~0.3 s of
#: its onset; a click or a short knock does not (the framework's default, 0.5 s, stops it after ~0.6 s)
BARGE_IN_MIN_S = 0.2


@dataclass(frozen=True)
class LineTimeouts:
    """Seconds of silence (caller and agent both quiet) before the prompt and before the goodbye."""

    prompt_s: float = 30.0
    goodbye_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.prompt_s < self.goodbye_s:
            raise ValueError(f"silence timeouts need 0 < prompt ({self.prompt_s}) < goodbye ({self.goodbye_s})")

    @classmethod
    def from_settings(cls, settings: Any) -> LineTimeouts:
        return cls(prompt_s=settings.silence_prompt_s, goodbye_s=settings.silence_goodbye_s)


def line_session_options(handling: TurnHandlingOptions, timeouts: LineTimeouts) -> dict[str, Any]:
    """``AgentSession`` keyword arguments: the turn handling with the line's barge-in threshold, and
    the user-away timer at the prompt's timeout."""
    interruption = dict(handling.get("interruption") or {})
    interruption.setdefault("min_duration", BARGE_IN_MIN_S)
    out = TurnHandlingOptions(**{**handling, "interruption": interruption})  # type: ignore[typeddict-item]
    return {"turn_handling": out, "user_away_timeout": timeouts.prompt_s}


EndCall = Callable[[str], Awaitable[None] | None]


class CallLine:
    """One call's line handlers (see the module docstring); ``end_reason`` once the call is over."""

    def __init__(self, session: AgentSession, call: SupportCall, *, timeouts: LineTimeouts,
                 end_call: EndCall) -> None:
        self.session = session
        self.call = call
        self.timeouts = timeouts
        self._end_call = end_call
        self.end_reason: EndReason | None = None
        self.prompts = 0
        self.ended = asyncio.Event()
        self._goodbye_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._user_items: list[llm.ChatMessage] = []
        self._interim = ""  # the caller's words not yet committed as a user message
        self._hung_up = False
        self._closed = False

    # ------------------------------------------------------------------ wiring
    def attach(self) -> None:
        s = self.session
        s.on("user_state_changed", self._on_user_state)
        s.on("speech_created", self._on_speech_created)
        s.on("conversation_item_added", self._on_item)
        s.on("user_input_transcribed", self._on_transcribed)
        s.on("close", self._on_close)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def settled(self) -> None:
        """Every write the handlers started is done (the call's shutdown awaits this before ``call.end``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ silence
    def _on_user_state(self, ev: Any) -> None:
        if ev.new_state == "away" and self.end_reason is None and self._goodbye_timer is None:
            self.prompts += 1
            self._spawn(self._say_stored("still_there"))
            wait = self.timeouts.goodbye_s - self.timeouts.prompt_s
            self._goodbye_timer = asyncio.get_running_loop().call_later(wait, self._goodbye_due)
        elif ev.new_state == "speaking" and self._goodbye_timer is not None:
            self._goodbye_timer.cancel()  # the caller is back: a new silence starts from zero
            self._goodbye_timer = None

    def _goodbye_due(self) -> None:
        self._goodbye_timer = None
        if self.end_reason is None:
            self._spawn(self._goodbye())

    async def _goodbye(self) -> None:
        await self._finish_reason("caller_silent")
        await self._say_stored("away_goodbye", allow_interruptions=False)
        result = self._end_call("caller_silent")
        if result is not None:
            await result

    async def _say_stored(self, key: str, *, allow_interruptions: bool = True) -> None:
        """Say a fixed line in the call's language and store it as the agent's turn."""
        text = line(key, getattr(self.call.ctx, "language", "en"))
        handle = self.session.say(text, allow_interruptions=allow_interruptions)
        if self.call.session_id:
            await ConversationStore(self.call.deps.pool, self.call.organization_id).add_turn(
                self.call.session_id, TurnRecord(speaker="agent", role="assistant", text=text))
        try:
            await handle
        except Exception:  # noqa: BLE001 - the session closed under it; the line is stored
            log.debug("line %s not fully played", key, exc_info=True)

    # ------------------------------------------------------------------ barge-in: what was heard
    def _on_speech_created(self, ev: Any) -> None:
        if ev.source == "generate_reply":
            ev.speech_handle.add_done_callback(self._speech_done)

    def _speech_done(self, handle: Any) -> None:
        if not handle.interrupted:
            return
        said = [i for i in handle.chat_items if isinstance(i, llm.ChatMessage) and i.role == "assistant"]
        if not said or not self.call.session_id or not self.call.ctx.persist:
            # nothing played (a discarded draft, or cut before its first sound): the turn keeps what the
            # stream stored, marked interrupted by the turn itself
            return
        question = self._question_before(said[0].id)
        if question is None:
            return
        heard = " ".join(i.text_content or "" for i in said)
        self._spawn(self._store_heard(question, heard))

    def _question_before(self, item_id: str) -> str | None:
        """The caller's words the answer ``item_id`` replied to (the last user message before it)."""
        question = None
        for item in self.session.history.items:
            if item.id == item_id:
                break
            if isinstance(item, llm.ChatMessage) and item.role == "user":
                question = item.text_content
        return question

    async def _store_heard(self, question: str, heard: str) -> None:
        await self.call.settled()  # a committed draft joins the call's turns as it is stored
        outcome = answered_turn(self.call.outcomes, question)
        if outcome is None:  # interrupted before the support turn began: nothing was answered
            return
        await store_heard(self.call.deps.pool, self.call.organization_id, outcome, heard)

    # ------------------------------------------------------------------ hang-up
    def _on_item(self, ev: Any) -> None:
        item = ev.item
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            self._user_items.append(item)
            self._interim = ""

    def _on_transcribed(self, ev: Any) -> None:
        self._interim = ev.transcript if not ev.is_final else (self._interim + " " + ev.transcript).strip()

    def hang_up(self) -> None:
        """The caller left (the input ended): the session's close records ``caller_hung_up``."""
        self._hung_up = True

    def _on_close(self, ev: Any) -> None:
        if self._closed:
            return
        self._closed = True
        if self._goodbye_timer is not None:
            self._goodbye_timer.cancel()
            self._goodbye_timer = None
        hung_up = self._hung_up or ev.reason == CloseReason.PARTICIPANT_DISCONNECTED
        self._spawn(self._after_close("caller_hung_up" if hung_up else "completed"))

    async def _after_close(self, reason: EndReason) -> None:
        await self._finish_reason(reason)
        if not self.call.session_id:
            return
        await self.call.settled()  # turns being stored (a barge-in's, a committed draft's)
        stored = {" ".join(r["text"].split()) for r in await self.call.deps.pool.fetch(
            "select text from turns where organization_id = $1 and session_id = $2 and role = 'user'",
            self.call.organization_id, self.call.session_id)}
        said = [i.text_content or "" for i in self._user_items]
        if self._interim:
            said.append(self._interim)
        for text in said:
            if " ".join(text.split()) not in stored:
                stored.add(" ".join(text.split()))
                await store_abandoned(self.call.deps.pool, self.call.organization_id, self.call.session_id, text,
                                      speaker=self.call.ctx.speaker)
        self.ended.set()

    async def _finish_reason(self, reason: EndReason) -> None:
        if self.end_reason is not None:
            return
        self.end_reason = reason
        if self.call.session_id:
            await record_end_reason(self.call.deps.pool, self.call.organization_id, self.call.session_id, reason)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("line handler failed", exc_info=task.exception())


def attach_line_handlers(session: AgentSession, call: SupportCall, *, timeouts: LineTimeouts,
                         end_call: EndCall) -> CallLine:
    """Wire ``call``'s line handlers on ``session`` (built with ``line_session_options``). ``end_call(reason)``
    ends the call after the goodbye (the worker shuts the job down; ``simulate_live`` stops playing)."""
    if session.options.user_away_timeout is None:
        raise ValueError("the session needs user_away_timeout (line_session_options) for the silence prompt")
    handlers = CallLine(session, call, timeouts=timeouts, end_call=end_call)
    handlers.attach()
    return handlers
