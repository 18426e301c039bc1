"""The support agent as a livekit ``Agent``.

Replies come from ``PipelineLLM`` (the support pipeline behind the ``llm.LLM`` interface), which
the framework's default ``llm_node`` calls for every user turn, typed or spoken (the
``on_user_turn_completed`` hook only fires for audio turns). VAD, turn detection, barge-in and TTS
stay the framework's.
"""

from __future__ import annotations

import time
from typing import Any

from livekit.agents import Agent, AgentSession

from callwise.agent.plugins.llm_pipeline import PipelineLLM
from callwise.calls import GREETING, SupportCall
from callwise.calls.languages import localize

INSTRUCTIONS = ("You are a customer support agent. Answers come from the organization's knowledge base "
                "through the callwise router; escalation and survey rules are applied before answering.")


class SupportAgent(Agent):
    def __init__(self, call: SupportCall, *, greet: bool = True, **kwargs: Any) -> None:
        self.call = call
        self.pipeline_llm = PipelineLLM(call)
        self._greet = greet
        super().__init__(instructions=INSTRUCTIONS, llm=self.pipeline_llm, **kwargs)

    async def on_enter(self) -> None:
        # replies are drafts, kept when the session commits their user turn (safe preemptive generation)
        self.session.on("conversation_item_added", self._on_item_added)
        self.pipeline_llm.drafting = True
        if self._greet:
            self._greet = False  # re-entered after a declined warm transfer: no second greeting
            self.session.say(localize(GREETING, self.call.ctx.language))  # the call's language, when set before

    async def on_exit(self) -> None:
        self.session.off("conversation_item_added", self._on_item_added)

    def _on_item_added(self, ev: Any) -> None:
        item = ev.item
        if getattr(item, "role", None) == "user" and getattr(item, "id", None):
            self.pipeline_llm.user_turn_committed(item.id)


def track_end_of_speech(session: AgentSession, agent: SupportAgent) -> None:
    """Time each turn from the customer's end of speech (VAD) to the first answer token."""

    def on_user_state(ev: Any) -> None:
        if ev.old_state == "speaking" and ev.new_state != "speaking":
            agent.pipeline_llm.mark_end_of_speech(time.perf_counter())
        elif ev.new_state == "speaking":  # a new utterance: an end of speech no reply took is stale now
            agent.pipeline_llm.take_timing()

    session.on("user_state_changed", on_user_state)
