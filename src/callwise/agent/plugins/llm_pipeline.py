"""The support pipeline behind livekit's ``llm.LLM`` interface, in process.

The framework keeps doing what it is good at (VAD, turn detection, barge-in, TTS, transcripts) and
asks this "LLM" for the reply in its ``llm_node``; the reply is our support turn (escalation
rules, retrieval, the cascading router, persistence: ``callwise.calls``). When the customer
interrupts, the framework cancels the stream and the turn is stored as ``interrupted``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from callwise.calls import SupportCall


class PipelineLLM(llm.LLM):
    """``chat()`` answers the last user message of the context through a ``SupportCall``."""

    def __init__(self, call: SupportCall) -> None:
        super().__init__()
        self.call = call
        self._eos_at: float | None = None
        self._stt_ms: float | None = None

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

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list[Any] | None = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN, tool_choice: NotGivenOr[Any] = NOT_GIVEN,
             extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN) -> PipelineStream:
        return PipelineStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


def last_user_text(chat_ctx: llm.ChatContext) -> str:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item.text_content or ""
    return ""


class PipelineStream(llm.LLMStream):
    def __init__(self, llm_: PipelineLLM, *, chat_ctx: llm.ChatContext, tools: list[Any],
                 conn_options: APIConnectOptions) -> None:
        super().__init__(llm_, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._pipeline_llm = llm_

    async def _run(self) -> None:
        request_id = uuid.uuid4().hex[:12]
        eos_at, stt_ms = self._pipeline_llm.take_timing()
        turn = self._pipeline_llm.call.turn(last_user_text(self._chat_ctx), eos_at=eos_at, stt_ms=stt_ms)
        try:
            async for delta in turn:
                self._event_ch.send_nowait(
                    llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=delta)))
        finally:
            await turn.aclose()
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, usage=llm.CompletionUsage(
            completion_tokens=0, prompt_tokens=0, total_tokens=0)))
