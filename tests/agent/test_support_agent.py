"""The support agent through the framework's own testing helpers: an AgentSession driven with text
turns, our router behind the in-process ``PipelineLLM``, replies judged by an in-process LLM."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from livekit.agents import AgentSession, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from callwise.agent.support import SupportAgent
from callwise.calls import SupportCall


class KeywordJudge(llm.LLM):
    """A deterministic judge: ``check_intent(success=True)`` when the judged message holds every phrase."""

    def __init__(self, *phrases: str) -> None:
        super().__init__()
        self.phrases = [p.lower() for p in phrases]

    @property
    def model(self) -> str:
        return "keyword-judge"

    def chat(self, *, chat_ctx: llm.ChatContext, tools: Any = None, conn_options: Any = DEFAULT_API_CONNECT_OPTIONS,
             **_: Any) -> llm.LLMStream:
        return _JudgeStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _JudgeStream(llm.LLMStream):
    async def _run(self) -> None:
        prompt = self._chat_ctx.items[-1].text_content or ""
        message = prompt.split("Message:\n", 1)[-1].lower()
        missing = [p for p in self._llm.phrases if p not in message]  # type: ignore[attr-defined]
        args = json.dumps({"success": not missing, "reason": f"missing {missing}" if missing else "all present"})
        self._event_ch.send_nowait(llm.ChatChunk(id="judge", delta=llm.ChoiceDelta(
            role="assistant", tool_calls=[llm.FunctionToolCall(name="check_intent", arguments=args, call_id="c1")])))


async def _session(call: SupportCall) -> AgentSession:
    session: AgentSession = AgentSession(vad=None)
    await session.start(SupportAgent(call, greet=False))
    return session


async def test_answers_from_the_knowledge_base_with_sources(support_deps, kb_org, pg_pool) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="test-room", modality="text")
    session = await _session(call)
    try:
        result = await session.run(user_input="How long does a refund take to show up on my card?")
        event = result.expect.next_event().is_message(role="assistant")
        await event.judge(KeywordJudge("business days"), intent="Says when the refund reaches the card")
        result.expect.no_more_events()
    finally:
        await session.aclose()
    await call.end()

    rows = await pg_pool.fetch("select * from turns where organization_id = $1 and session_id = $2 order by seq",
                               kb_org, call.session_id)
    assert [r["role"] for r in rows] == ["user", "assistant"]
    answer = rows[1]
    sources = json.loads(answer["sources"])
    assert sources and sources[0]["document"] == "examples/kb/billing/refunds.md"
    assert answer["tier"] in ("tier1", "tier2", "tier3") and answer["confidence"] is not None
    latencies = json.loads(answer["latencies"])
    assert {"retrieval_ms", "ttft_ms", "first_token_ms", "total_ms"} <= set(latencies)
    cost = await pg_pool.fetchval("select count(*) from cost_events where organization_id = $1 and turn_id = $2",
                                  kb_org, answer["id"])
    assert cost >= 1, "the answer's cost events are linked to the turn"
    session_row = await pg_pool.fetchrow("select status, resolved_by_ai from sessions where id = $1", call.session_id)
    assert session_row["status"] == "ended" and session_row["resolved_by_ai"] is True


@pytest.mark.parametrize("text, reason", [
    ("I want to speak to a human please", "explicit_request"),
    ("My account was hacked and someone changed my email", "security_privacy"),
    ("I'm going to call my lawyer about this charge", "legal_refund"),
    ("Your whole service is down for everyone", "outage"),
    ("I was charged $450 twice and I want to dispute it", "billing_dispute"),
    ("This is TERRIBLE!! worst support ever", "frustration"),
])
async def test_escalation_through_the_session(support_deps, kb_org, pg_pool, text: str, reason: str) -> None:
    events: list[dict] = []

    async def publish(ev: dict) -> None:
        events.append(ev)

    call = await SupportCall.start(support_deps, organization_id=kb_org, room="esc", modality="text", on_event=publish)
    session = await _session(call)
    try:
        result = await session.run(user_input=text)
        await result.expect.next_event().is_message(role="assistant").judge(
            KeywordJudge("recorded your request for our support team as case number"),
            intent="Tells the customer what was done (no handoff service is wired: the request is recorded as a case)")
    finally:
        await session.aclose()
    await call.end()
    row = await pg_pool.fetchrow("select * from escalations where organization_id = $1 and session_id = $2",
                                 kb_org, call.session_id)
    assert row is not None and row["reason"] == reason and row["handoff"] in ("live", "callback")
    assert events and events[0]["type"] == "escalation" and events[0]["reason"] == reason
    status = await pg_pool.fetchval("select status from sessions where id = $1", call.session_id)
    assert status == "escalated"


async def test_two_unhelpful_answers_escalate(support_deps, kb_org, pg_pool) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="rep", modality="text")
    first = await call.run_turn("How do I reset my password?")
    assert not first.escalated and first.sources
    await call.run_turn("That didn't help at all")
    third = await call.run_turn("It still doesn't work")
    assert third.escalated and third.escalation["reason"] == "repeated_failure"
    await call.end()
    assert await pg_pool.fetchval("select reason from escalations where session_id = $1", call.session_id) \
        == "repeated_failure"


async def test_survey_at_the_end_of_the_call(support_deps, kb_org, pg_pool) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="survey", modality="voice")
    await call.run_turn("How do I reset my password?")
    ask = await call.run_turn("Great, that's all I needed, thanks.")
    assert ask.kind == "survey" and "one to five" in ask.answer
    comment = await call.run_turn("pretty bad")
    assert "anything you'd like to tell us" in comment.answer
    bye = await call.run_turn("The reset link had expired")
    assert "Goodbye" in bye.answer
    await call.end()
    row = await pg_pool.fetchrow("select * from survey_responses where organization_id = $1 and session_id = $2",
                                 kb_org, call.session_id)
    assert row["rating"] == 2 and row["requires_followup"] and row["channel_used"] == "voice"
    assert "reset link had expired" in row["feedback_text"]


async def test_pipeline_llm_keeps_only_the_draft_whose_user_turn_the_session_commits(support_deps, kb_org,
                                                                                     pg_pool) -> None:
    """The framework's preemptive sequence: a reply drafted on the first pause's transcript, then the caller goes
    on and the session commits a longer user turn; only the reply to that one is stored."""
    from callwise.agent.plugins.llm_pipeline import PipelineLLM

    call = await SupportCall.start(support_deps, organization_id=kb_org, room="drafts", modality="voice")
    pipeline_llm = PipelineLLM(call)
    pipeline_llm.drafting = True

    async def reply(message: llm.ChatMessage) -> str:
        ctx = llm.ChatContext()
        ctx.insert(message)
        out = []
        async with pipeline_llm.chat(chat_ctx=ctx) as stream:
            async for chunk in stream:
                if chunk.delta and chunk.delta.content:
                    out.append(chunk.delta.content)
        return "".join(out)

    early = llm.ChatMessage(role="user", content=["I want to speak to"])
    final = llm.ChatMessage(role="user", content=["How long does a refund take to show up on my card?"])
    early_reply = asyncio.ensure_future(reply(early))
    await asyncio.sleep(1.0)
    pipeline_llm.user_turn_committed(final.id)  # the session committed the longer turn: the early draft is dropped
    await asyncio.wait_for(early_reply, 20)
    said = await reply(final)  # committed before its reply started
    await call.end()
    rows = await pg_pool.fetch("select role, text from turns where organization_id = $1 and session_id = $2 "
                               "order by seq", kb_org, call.session_id)
    assert [(r["role"], r["text"]) for r in rows] == [("user", final.text_content), ("assistant", said.strip())]
    stats = pipeline_llm.draft_stats()
    assert (stats.drafted, stats.committed, stats.discarded) == (2, 1, 1)


async def test_an_end_of_speech_no_reply_took_does_not_time_the_next_turn(support_deps, kb_org) -> None:
    """With preemptive generation the reply can start before the end of speech is marked; the mark it never took
    must not become the next turn's (its first-word deadline would already have passed: the holding line)."""
    from livekit.agents.voice.events import UserStateChangedEvent

    from callwise.agent.support import track_end_of_speech

    call = await SupportCall.start(support_deps, organization_id=kb_org, room="eos-marks", modality="voice")
    agent = SupportAgent(call, greet=False)
    session: AgentSession = AgentSession(vad=None)
    track_end_of_speech(session, agent)
    session.emit("user_state_changed", UserStateChangedEvent(old_state="speaking", new_state="listening"))
    session.emit("user_state_changed", UserStateChangedEvent(old_state="listening", new_state="speaking"))
    assert agent.pipeline_llm.take_timing() == (None, None)
    session.emit("user_state_changed", UserStateChangedEvent(old_state="speaking", new_state="listening"))
    eos, _ = agent.pipeline_llm.take_timing()
    assert eos is not None
    await call.end()


async def test_the_greeting_is_said_in_the_calls_language(support_deps, kb_org) -> None:
    from callwise.calls.languages import LINES

    call = await SupportCall.start(support_deps, organization_id=kb_org, room="greeting-es", modality="text")
    call.ctx.language = "es"  # set before the session starts (SIP header, room metadata, the org's language)
    said: list[str] = []
    session: AgentSession = AgentSession(vad=None)
    session.on("conversation_item_added", lambda ev: said.append(ev.item.text_content or "")
               if ev.item.role == "assistant" else None)
    await session.start(SupportAgent(call))
    try:
        for _ in range(50):
            if said:
                break
            await asyncio.sleep(0.1)
    finally:
        await session.aclose()
    await call.end()
    assert said and said[0].strip() == LINES["greeting"]["es"].strip()
