"""The generative judge: one short structured call on a generative tier (here the OpenAI provider against a
local stand-in speaking the Chat Completions wire format), within its budget, only for unsure turns."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from callwise.calls.context import CallContext, TurnContext, TurnOutcome
from callwise.calls.stages.escalate import EscalateOnWords
from callwise.handoff.detector import REASONS, LearnedDetector
from callwise.handoff.escalation import EscalationPolicy, EscalationRules
from callwise.handoff.judge import EscalationJudge, parse_reason
from callwise.routing.providers.openai import OpenAIProvider
from tests.vendors.openai import FakeOpenAI


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    with FakeOpenAI(text='{"reason": "none"}') as server:
        yield server


def _judge(fake: FakeOpenAI, budget_s: float = 2.0) -> EscalationJudge:
    return EscalationJudge(OpenAIProvider("gpt-4o-mini", api_key="test", base_url=fake.base_url + "/v1"),
                           budget_s=budget_s)


async def test_the_judge_reads_the_call_and_names_a_reason(fake: FakeOpenAI) -> None:
    fake.responder = lambda req: '{"reason": "explicit_request"}'
    verdict = await _judge(fake).judge(["how do i set up payroll", "can you put me through to the payroll team"],
                                       ["Open Settings, then Payroll."], "explicit_request")
    assert verdict is not None and verdict.reason == "explicit_request" and verdict.model == "openai:gpt-4o-mini"
    [req] = fake.chat_requests
    body = json.dumps(req.body)
    assert "put me through to the payroll team" in body and "Agent: Open Settings" in body
    assert req.body["temperature"] == 0.0


async def test_none_and_unreadable_answers(fake: FakeOpenAI) -> None:
    fake.responder = lambda req: 'sure: {"reason": "none"}'
    verdict = await _judge(fake).judge(["how do i pin a message"], [], None)
    assert verdict is not None and verdict.reason is None
    fake.responder = lambda req: "I think the caller wants a manager"
    assert await _judge(fake).judge(["x"], [], None) is None
    assert parse_reason('{"reason": "something_else"}') is False and parse_reason('{"reason": "Outage"}') == "outage"


async def test_a_late_judge_decides_nothing_within_its_budget(fake: FakeOpenAI) -> None:
    def slow(req):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return '{"reason": "outage"}'

    fake.responder = slow
    start = time.perf_counter()
    assert await _judge(fake, budget_s=0.3).judge(["is it down for everyone"], [], "outage") is None
    assert time.perf_counter() - start < 0.9


async def test_the_stage_asks_the_judge_only_about_unsure_turns(fake: FakeOpenAI, support_deps, org_id) -> None:
    """A detector whose thresholds make every turn unsure: the judge's reason decides; with a sure detector
    the judge is not asked."""
    unsure = LearnedDetector(_embedder())
    unsure.high = dict.fromkeys(REASONS, 1.01)
    unsure.low = dict.fromkeys(REASONS, 0.0)
    rules = EscalationRules(EscalationPolicy(), detector=unsure)
    fake.responder = lambda req: '{"reason": "explicit_request"}'
    deps = replace(support_deps, rules=rules, judge=_judge(fake))
    call = CallContext(deps=deps, organization_id=org_id, session_id=None, persist=False)
    ctx = TurnContext(call=call, text="honestly i'd rather go through this with one of your payroll people",
                      outcome=TurnOutcome(transcript="x"))
    await EscalateOnWords().run(ctx)
    assert ctx.done and ctx.outcome.escalation["reason"] == "explicit_request"
    assert ctx.outcome.escalation["rule"].startswith("generative judge openai:gpt-4o-mini")
    assert len(fake.chat_requests) == 1
    sure = LearnedDetector(_embedder())
    sure.low = dict.fromkeys(REASONS, 1.0)
    sure.high = dict.fromkeys(REASONS, 1.01)
    deps = replace(support_deps, rules=EscalationRules(EscalationPolicy(), detector=sure), judge=_judge(fake))
    call = CallContext(deps=deps, organization_id=org_id, session_id=None, persist=False)
    ctx = TurnContext(call=call, text="how do i pin a message", outcome=TurnOutcome(transcript="x"))
    await EscalateOnWords().run(ctx)
    assert not ctx.done and len(fake.chat_requests) == 1


def _embedder():  # type: ignore[no-untyped-def]
    from callwise.knowledge.embeddings import Embedder

    return Embedder().encode
