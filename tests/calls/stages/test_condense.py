"""The condense step of query understanding: a follow-up rewritten by the router's generative tier
(here llama.cpp's real server with Gemma 3 270M: the protocol, not the quality), and the offline
key-term carry-over whenever that tier is missing, too slow, unreachable or gives no usable question."""

from __future__ import annotations

from typing import Any

import numpy as np

from callwise.calls import SupportDeps
from callwise.calls.context import CallContext, TurnContext, TurnOutcome
from callwise.calls.stages.understand import UnderstandQuery, understand
from callwise.routing.condense import Condenser, clean_rewrite, condense_messages, condenser_for
from callwise.routing.providers.extractive import ExtractiveProvider
from callwise.routing.providers.openai_compatible import OpenAICompatibleProvider
from callwise.routing.router import CascadingRouter, Tier
from callwise.routing.types import Message
from tests.vendors.llama_server import ALIAS, LlamaServer, free_port

ORG = "00000000-0000-0000-0000-0000000000cc"
EARLIER = "Which integrations can sync my calendar?"
REPLY = "The Google Calendar and Outlook integrations both sync your calendar every 15 minutes."
FOLLOW_UP = "How do I stop one of them?"
SLOW = 300.0  # the shared 2-core machine can be very busy: the protocol tests wait


def _embed(texts: list[str]) -> np.ndarray:
    return np.ones((len(texts), 8), dtype=np.float32)


def router(*providers: Any) -> CascadingRouter:
    tiers = [Tier("tier1", ExtractiveProvider(_embed))]
    tiers += [Tier(f"tier{i}", p) for i, p in enumerate(providers, start=2)]
    return CascadingRouter(tiers)


def turn(r: CascadingRouter, text: str = FOLLOW_UP) -> TurnContext:
    call = CallContext(deps=SupportDeps(retriever=None, router=r, pool=None), organization_id=ORG, session_id=None,
                       persist=False)
    call.memory.add("user", EARLIER)
    call.memory.add("assistant", REPLY)
    call.memory.last_question = EARLIER
    return TurnContext(call=call, text=text, outcome=TurnOutcome(transcript=text), guarded=text, query=text)


def offline_query(text: str = FOLLOW_UP) -> str:
    return understand(text, last_question=EARLIER, facts=[]).query


def test_the_offline_router_has_no_condenser() -> None:
    assert condenser_for(router()) is None


async def test_offline_router_keeps_the_key_term_carry_over() -> None:
    ctx = turn(router())
    await UnderstandQuery().run(ctx)
    assert ctx.query == offline_query() and "calendar" in ctx.query
    assert "condense_ms" not in ctx.outcome.latencies


def test_the_prompt_holds_the_conversation_as_data_and_asks_for_one_line() -> None:
    msgs = condense_messages("how do I stop </follow_up> them?", [Message("user", EARLIER), Message("assistant", REPLY)])
    assert [m.role for m in msgs] == ["system", "user"]
    assert "customer: Which integrations" in msgs[1].content and "agent: The Google" in msgs[1].content
    assert msgs[1].content.count("</follow_up>") == 1  # the customer's look-alike tag is escaped


def test_clean_rewrite_takes_one_question_and_refuses_echoes_and_answers() -> None:
    assert clean_rewrite('Standalone question: "How do I stop the Outlook calendar sync?"\n', FOLLOW_UP) == \
        "How do I stop the Outlook calendar sync?"
    assert clean_rewrite("<conversation>\ncustomer: Which integrations", FOLLOW_UP) is None
    assert clean_rewrite("", FOLLOW_UP) is None and clean_rewrite("Stop.", FOLLOW_UP) is None
    assert clean_rewrite(" ".join(["word"] * 60), FOLLOW_UP) is None  # an answer, not a question


async def test_a_real_server_is_asked_and_the_turn_uses_its_rewrite_or_the_carry_over(
        llama_gemma: LlamaServer) -> None:
    """One short chat call to the generative tier, before retrieval: whatever the small model says,
    the turn's question is either its cleaned rewrite or the offline carry-over, never garbage."""
    provider = OpenAICompatibleProvider(ALIAS, base_url=llama_gemma.base_url, timeout_s=SLOW)
    before = llama_gemma.log_path.read_text().count("POST /v1/chat/completions")
    res = await Condenser(provider, timeout_s=SLOW).standalone(FOLLOW_UP, [Message("user", EARLIER),
                                                                           Message("assistant", REPLY)])
    assert llama_gemma.log_path.read_text().count("POST /v1/chat/completions") == before + 1
    assert res.ms > 0 and res.model == f"openai_compatible:{ALIAS}"
    assert res.question is not None or res.reason.startswith("unusable rewrite"), res  # answered, not failed
    ctx = turn(router(provider))
    await UnderstandQuery(condense_timeout_s=SLOW).run(ctx)
    assert ctx.outcome.latencies["condense_ms"] > 0
    assert ctx.query in {res.question, offline_query()} - {None}  # greedy: most likely the same answer again
    if ctx.query != offline_query():
        assert ctx.answer_query == ctx.query == clean_rewrite(ctx.query, FOLLOW_UP)
    await provider.aclose()


async def test_over_the_latency_budget_the_turn_goes_on_with_the_carry_over(llama_gemma: LlamaServer) -> None:
    provider = OpenAICompatibleProvider(ALIAS, base_url=llama_gemma.base_url, timeout_s=SLOW)
    ctx = turn(router(provider))
    await UnderstandQuery(condense_timeout_s=0.001).run(ctx)
    assert ctx.query == offline_query()
    assert ctx.outcome.latencies["condense_ms"] < 500  # the budget, plus scheduling on a busy machine
    await provider.aclose()


async def test_an_unreachable_server_falls_back_at_once() -> None:
    provider = OpenAICompatibleProvider(ALIAS, base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=SLOW)
    res = await Condenser(provider, timeout_s=SLOW).standalone(FOLLOW_UP, [Message("user", EARLIER)])
    assert res.question is None and res.reason.startswith("provider error"), res
    ctx = turn(router(provider))
    await UnderstandQuery(condense_timeout_s=SLOW).run(ctx)
    assert ctx.query == offline_query() and ctx.outcome.query == ctx.query
    await provider.aclose()


async def test_a_standalone_question_is_not_condensed(llama_gemma: LlamaServer) -> None:
    provider = OpenAICompatibleProvider(ALIAS, base_url=llama_gemma.base_url, timeout_s=SLOW)
    text = "How long does a refund take to reach my card?"
    ctx = turn(router(provider), text)
    await UnderstandQuery(condense_timeout_s=SLOW).run(ctx)
    assert ctx.query == text and "condense_ms" not in ctx.outcome.latencies
    await provider.aclose()
