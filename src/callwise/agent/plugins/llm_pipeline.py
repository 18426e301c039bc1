"""The support pipeline behind livekit's ``llm.LLM`` interface, in process.

The framework keeps doing what it is good at (VAD, turn detection, barge-in, TTS, transcripts) and
asks this "LLM" for the reply in its ``llm_node``; the reply is our support turn (escalation
rules, retrieval, the cascading router, persistence: ``callwise.calls``). When the customer
interrupts, the framework cancels the stream and the turn is stored as ``interrupted``.

Once the agent tells it which user turns the session commits (``drafting``), every reply is a draft
(``callwise.calls.draft``): the framework's preemptive generation may start one on the transcript at the
caller's first pause and throw it away when the caller goes on. A draft is committed when the session adds
its user message to the conversation (the framework does that only for the generation it will speak), and
discarded when another user turn is committed, a newer draft starts, or the stream is closed first.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from callwise.calls import SupportCall
from callwise.calls.draft import Draft


@dataclass(frozen=True)
class DraftStats:
    """How many replies were drafted, kept and thrown away, and the wall time the thrown-away ones ran."""

    drafted: int
    committed: int
    discarded: int
    discarded_busy_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"drafted": self.drafted, "committed": self.committed, "discarded": self.discarded,
                "discarded_busy_s": round(self.discarded_busy_s, 3)}


class PipelineLLM(llm.LLM):
    """``chat()`` answers the last user message of the context through a ``SupportCall``."""

    def __init__(self, call: SupportCall) -> None:
        super().__init__()
        self.call = call
        self._eos_at: float | None = None
        self._stt_ms: float | None = None
        self.drafting = False  # set by the agent once it reports the session's committed user turns
        self._waiting: dict[str, Draft] = {}  # user message id -> the draft answering it, not yet kept
        self._committed: deque[str] = deque(maxlen=64)

    @property
    def model(self) -> str:
        return "callwise-router"

    @property
    def provider(self) -> str:
        return "callwise"

    def mark_end_of_speech(self, at: float | None = None, *, stt_ms: float | None = None) -> None:
        """Called by the session's event handlers: when the customer stopped talking (perf_counter)."""
        self._eos_at = time.perf_counter() if at is None else at
        self._stt_ms = stt_ms

    def take_timing(self) -> tuple[float | None, float | None]:
        eos, stt = self._eos_at, self._stt_ms
        self._eos_at = self._stt_ms = None
        return eos, stt

    def user_turn_committed(self, message_id: str) -> None:
        """The session added this user message to the conversation: its draft is the reply it speaks; a draft
        for any other message will not be said."""
        self._committed.append(message_id)
        waiting, self._waiting = self._waiting, {}
        for mid, draft in waiting.items():
            (draft.commit if mid == message_id else draft.discard)()

    def draft_for(self, message_id: str) -> Draft:
        """A draft for a reply to ``message_id``; already committed when the session added it before."""
        waiting, self._waiting = self._waiting, {}
        for draft in waiting.values():  # superseded: the framework cancels a preemptive reply before the next
            draft.discard()
        draft = Draft()
        if message_id in self._committed:
            draft.commit()
        else:
            self._waiting[message_id] = draft
        return draft

    def draft_stats(self) -> DraftStats:
        drafts = self.call.drafts
        thrown = [d for d in drafts if d.discarded]
        return DraftStats(drafted=len(drafts), committed=sum(d.committed for d in drafts), discarded=len(thrown),
                          discarded_busy_s=sum(d.busy_s for d in thrown))

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list[Any] | None = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN, tool_choice: NotGivenOr[Any] = NOT_GIVEN,
             extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN) -> PipelineStream:
        return PipelineStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


def last_user_message(chat_ctx: llm.ChatContext) -> llm.ChatMessage | None:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item
    return None


def last_user_text(chat_ctx: llm.ChatContext) -> str:
    message = last_user_message(chat_ctx)
    return (message.text_content or "") if message is not None else ""


class PipelineStream(llm.LLMStream):
    def __init__(self, llm_: PipelineLLM, *, chat_ctx: llm.ChatContext, tools: list[Any],
                 conn_options: APIConnectOptions) -> None:
        super().__init__(llm_, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._pipeline_llm = llm_

    async def _run(self) -> None:
        request_id = uuid.uuid4().hex[:12]
        owner = self._pipeline_llm
        eos_at, stt_ms = owner.take_timing()
        message = last_user_message(self._chat_ctx)
        text = (message.text_content or "") if message is not None else ""
        if owner.drafting and message is not None:
            turn = await owner.call.draft_turn(text, owner.draft_for(message.id), eos_at=eos_at, stt_ms=stt_ms)
        else:
            turn = owner.call.turn(text, eos_at=eos_at, stt_ms=stt_ms)
        try:
            async for delta in turn:
                self._event_ch.send_nowait(
                    llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=delta)))
        finally:
            await turn.aclose()
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, usage=llm.CompletionUsage(
            completion_tokens=0, prompt_tokens=0, total_tokens=0)))
