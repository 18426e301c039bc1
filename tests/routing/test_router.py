"""Cascade, confidence, breaker, disclaimer, apology and cost rows: real SDK clients against local
vendor servers, cost events in the real Postgres."""

from __future__ import annotations

import asyncio

import pytest

from callwise.routing.costs import MemoryCostSink, PostgresCostSink, cost_report
from callwise.routing.pricing import Price
from callwise.routing.providers.extractive import ExtractiveProvider
from callwise.routing.providers.openai import OpenAIProvider
from callwise.routing.router import APOLOGY, DISCLAIMER, EMPTY_REPLY, CascadingRouter, Tier
from tests.routing.conftest import FAST_RETRY, hashing_embed
from tests.vendors.openai import FakeOpenAI

GOOD = -0.01   # exp(-0.01) = 0.99
BAD = -1.0     # exp(-1) = 0.37


def openai_tier(name: str, fake: FakeOpenAI, price: Price = Price(0.15, 0.60, 0.075), **kw: object) -> Tier:
    provider = OpenAIProvider(f"model-{name}", api_key="test", base_url=fake.base_url)
    return Tier(name, provider, price=price, **kw)  # type: ignore[arg-type]


@pytest.fixture
def fakes():  # type: ignore[no-untyped-def]
    servers = [FakeOpenAI(f"Answer from tier {i}.", logprob=GOOD).start() for i in (1, 2, 3)]
    yield servers
    for s in servers:
        s.stop()


def router_for(fakes: list[FakeOpenAI], sink=None, **kw):  # type: ignore[no-untyped-def]
    tiers = [openai_tier("tier1", fakes[0], Price(0.1, 0.4)), openai_tier("tier2", fakes[1], Price(0.15, 0.6)),
             openai_tier("tier3", fakes[2], Price(3.0, 15.0))]
    return CascadingRouter(tiers, sink, retry=FAST_RETRY, **kw)


async def test_simple_question_answered_by_tier1_with_logprob_confidence(fakes, refund_sources, pg_pool, org_id) -> None:
    router = router_for(fakes, PostgresCostSink(pg_pool))
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert ans.tier == "tier1" and ans.cascade_path == ["tier1"]
    assert ans.text == "Answer from tier 1." and not ans.low_confidence and not ans.escalate
    assert ans.confidence == pytest.approx(0.99, abs=0.001) and ans.confidence_method == "logprobs"
    assert ans.complexity["tier"] == "tier1" and ans.cost_usd > 0
    rows = await pg_pool.fetch("select * from cost_events where organization_id = $1", org_id)
    assert len(rows) == 1
    r = rows[0]
    assert (r["tier"], r["provider"], r["model"], r["purpose"]) == ("tier1", "openai", "model-tier1", "answer")
    assert r["input_tokens"] == ans.input_tokens and r["output_tokens"] == ans.output_tokens
    assert float(r["cost_usd"]) == pytest.approx(ans.cost_usd) and r["interaction_id"] == ans.interaction_id
    assert r["confidence"] == pytest.approx(0.99, abs=0.001) and r["escalated_from"] is None


async def test_low_confidence_cascades_to_next_tier(fakes, refund_sources, pg_pool, org_id) -> None:
    fakes[0].logprob = BAD
    router = router_for(fakes, PostgresCostSink(pg_pool))
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert ans.cascade_path == ["tier1", "tier2"] and ans.tier == "tier2"
    assert ans.text == "Answer from tier 2." and not ans.low_confidence
    rows = await pg_pool.fetch("select tier, escalated_from, confidence from cost_events where organization_id = $1"
                               " order by created_at", org_id)
    assert [(r["tier"], r["escalated_from"]) for r in rows] == [("tier1", None), ("tier2", "tier1")]
    assert rows[0]["confidence"] == pytest.approx(0.3679, abs=0.001)


async def test_top_tier_low_confidence_gets_disclaimer(fakes, refund_sources, org_id) -> None:
    for f in fakes:
        f.logprob = BAD
    router = router_for(fakes)
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert ans.cascade_path == ["tier1", "tier2", "tier3"] and ans.tier == "tier3"
    assert ans.low_confidence and not ans.escalate
    assert ans.text.startswith("Answer from tier 3.") and ans.text.endswith(DISCLAIMER)


async def test_complex_and_code_questions_start_higher(fakes, refund_sources, org_id) -> None:
    router = router_for(fakes)
    moderate = await router.answer("Can I get a refund and also change my plan if I upgrade?", refund_sources,
                                   organization_id=org_id)
    assert moderate.cascade_path[0] == "tier2", moderate.complexity
    code = await router.answer("Why does my python script get a 401?", refund_sources, organization_id=org_id)
    assert code.cascade_path == ["tier3"] and code.complexity["matched"]["code"] == ["python", "script"]


async def test_rate_limit_is_retried_with_backoff(fakes, refund_sources, org_id) -> None:
    fakes[0].enqueue(fakes[0].rate_limited(), fakes[0].server_error(503))
    router = router_for(fakes)
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert ans.tier == "tier1" and len(fakes[0].chat_requests) == 3


async def test_failing_tier_falls_to_next_and_breaker_opens(fakes, refund_sources, pg_pool, org_id) -> None:
    fakes[0].responder = None
    for _ in range(20):
        fakes[0].enqueue(fakes[0].server_error(500))
    router = router_for(fakes, PostgresCostSink(pg_pool), breaker_failures=3, breaker_reset_s=60)
    first = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert first.tier == "tier2" and first.cascade_path == ["tier1", "tier2"]
    assert "tier1" in (first.error or "") and len(fakes[0].chat_requests) == 3  # bounded retries
    assert router.breaker_states()["openai:model-tier1"] == "open"
    second = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert second.tier == "tier2" and len(fakes[0].chat_requests) == 3  # breaker open: not called
    failed = await pg_pool.fetchval("select count(*) from cost_events where organization_id = $1 and not success",
                                    org_id)
    assert failed == 2


async def test_breaker_half_opens_after_reset(fakes, refund_sources, org_id) -> None:
    for _ in range(3):
        fakes[0].enqueue(fakes[0].server_error(500))
    router = router_for(fakes, breaker_failures=3, breaker_reset_s=0.2)
    await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert router.breaker_states()["openai:model-tier1"] == "open"
    await asyncio.sleep(0.25)
    assert router.breaker_states()["openai:model-tier1"] == "half_open"
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert ans.tier == "tier1" and router.breaker_states()["openai:model-tier1"] == "closed"


async def test_every_tier_failing_gives_apology_and_escalates(fakes, refund_sources, org_id) -> None:
    for f in fakes:
        for _ in range(5):
            f.enqueue(f.server_error(502))
    router = router_for(fakes)
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert ans.text == APOLOGY and ans.escalate and ans.tier is None
    assert ans.cascade_path == ["tier1", "tier2", "tier3"] and "502" in (ans.error or "")


async def test_unreachable_and_rejected_model_never_raise(refund_sources, org_id) -> None:
    with FakeOpenAI() as bad:
        bad.enqueue(bad.model_not_found("gpt-nope"))
        dead = OpenAIProvider("x", api_key="k", base_url="http://127.0.0.1:9/v1", timeout_s=1)
        router = CascadingRouter([Tier("tier1", OpenAIProvider("gpt-nope", api_key="k", base_url=bad.base_url)),
                                  Tier("tier2", dead)], retry=FAST_RETRY)
        ans = await router.answer("hello?", refund_sources, organization_id=org_id)
        assert ans.escalate and ans.text == APOLOGY and "404" in (ans.error or "")
        assert len(bad.chat_requests) == 1  # a rejected model is not retried


async def test_timeout_counts_as_failure(fakes, refund_sources, org_id) -> None:
    from tests.vendors._http import Reply
    fakes[0].enqueue(lambda req: Reply(200, fakes[0].handle(req).body, delay_s=1.0))
    tiers = [openai_tier("tier1", fakes[0], timeout_s=0.2), openai_tier("tier2", fakes[1])]
    router = CascadingRouter(tiers, retry=FAST_RETRY.__class__(attempts=1))
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert ans.tier == "tier2" and "timed out" in (ans.error or "")


async def test_self_evaluation_by_cheapest_tier_when_no_logprobs(fakes, refund_sources, pg_pool, org_id) -> None:
    # tier3 without logprobs: graded by the cheapest tier (tier1), whose grade is parsed from prose
    fakes[0].responder = lambda req: "Score: 9/10" if "Grade (0-10)" in str(req.body) else "t1"
    tiers = [openai_tier("tier1", fakes[0], Price(0.1, 0.4)),
             openai_tier("tier3", fakes[2], Price(3.0, 15.0), logprobs=False)]
    router = CascadingRouter(tiers, PostgresCostSink(pg_pool), retry=FAST_RETRY)
    ans = await router.answer("Why does my python script fail?", refund_sources, organization_id=org_id)
    assert ans.tier == "tier3" and ans.confidence == pytest.approx(0.9) and ans.confidence_method == "self_eval"
    rows = await pg_pool.fetch("select tier, purpose from cost_events where organization_id = $1 order by created_at",
                               org_id)
    assert sorted((r["tier"], r["purpose"]) for r in rows) == [("tier1", "self_eval"), ("tier3", "answer")]
    assert "Grade (0-10)" in fakes[0].chat_requests[-1].body["messages"][-1]["content"]


async def test_unparseable_self_evaluation_counts_as_low(fakes, refund_sources, org_id) -> None:
    fakes[0].responder = lambda req: "I think it is quite good" if "Grade (0-10)" in str(req.body) else "t1"
    tiers = [openai_tier("tier1", fakes[0], Price(0.1, 0.4)),
             openai_tier("tier3", fakes[2], Price(3.0, 15.0), logprobs=False)]
    router = CascadingRouter(tiers, retry=FAST_RETRY)
    ans = await router.answer("Why does my python script fail?", refund_sources, organization_id=org_id)
    assert ans.confidence == 0.0 and ans.low_confidence and ans.text.endswith(DISCLAIMER)


async def test_empty_and_huge_questions(fakes, refund_sources, org_id) -> None:
    router = router_for(fakes)
    empty = await router.answer("   ", refund_sources, organization_id=org_id)
    assert empty.text == EMPTY_REPLY and empty.error == "empty_query" and not fakes[0].chat_requests
    huge = await router.answer("refund " * 20_000 + "?", refund_sources, organization_id=org_id)
    assert huge.tier is not None and not huge.escalate
    sent = fakes[int(huge.cascade_path[0][-1]) - 1].chat_requests[-1]
    assert len(sent.body["messages"][-1]["content"]) < 5_000  # the question was clipped


async def test_any_subset_of_tiers_works(fakes, refund_sources, org_id) -> None:
    router = CascadingRouter([openai_tier("tier2", fakes[1])], retry=FAST_RETRY)
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert ans.tier == "tier2"
    # a code question wants tier3; the highest available answers
    ans = await router.answer("Why does my python script fail?", refund_sources, organization_id=org_id)
    assert ans.tier == "tier2"
    none = await CascadingRouter([]).answer("hi?", refund_sources, organization_id=org_id)
    assert none.escalate and none.text == APOLOGY


async def test_offline_tiers_share_one_provider_and_do_not_repeat(refund_sources, org_id) -> None:
    ex = ExtractiveProvider(hashing_embed)
    sink = MemoryCostSink()
    router = CascadingRouter([Tier(n, ex) for n in ("tier1", "tier2", "tier3")], sink)
    ans = await router.answer("How long are refunds processed?", refund_sources, organization_id=org_id)
    assert ans.cascade_path == ["tier1"] and ans.provider == "extractive"
    assert "5 to 7 business days" in ans.text and ans.confidence_method == "extractive"  # calibrated signals
    assert len(sink.events) == 1 and sink.events[0].cost_usd == 0


async def test_answer_stream_buffers_lower_tiers_and_streams_the_last(fakes, refund_sources, org_id) -> None:
    fakes[0].logprob = BAD
    router = router_for(fakes)
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id)
    deltas = [d async for d in stream]
    assert stream.result is not None and stream.result.tier == "tier2"
    assert "".join(deltas) == stream.result.text == "Answer from tier 2."
    assert stream.result.ttft_ms is not None
    # tier3 is the last: it streams token by token
    stream = router.answer_stream("Why does my python script fail?", refund_sources, organization_id=org_id)
    deltas = [d async for d in stream]
    assert len(deltas) > 1 and stream.result.tier == "tier3"


async def test_answer_stream_live_and_all_failing(fakes, refund_sources, org_id) -> None:
    router = router_for(fakes)
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id, live=True)
    deltas = [d async for d in stream]
    assert len(deltas) > 1 and stream.result.tier == "tier1"
    for f in fakes:
        for _ in range(5):
            f.enqueue(f.server_error(500))
    stream = router_for(fakes).answer_stream("How long do refunds take?", refund_sources, organization_id=org_id)
    assert [d async for d in stream] == [APOLOGY] and stream.result.escalate


async def test_complete_uses_cheapest_tier_and_records_purpose(fakes, pg_pool, org_id) -> None:
    from callwise.routing.types import Message
    router = router_for(fakes, PostgresCostSink(pg_pool))
    text = await router.complete([Message("user", "Summarise: ...")], "summary", organization_id=org_id)
    assert text == "Answer from tier 1."
    row = await pg_pool.fetchrow("select tier, purpose from cost_events where organization_id = $1", org_id)
    assert (row["tier"], row["purpose"]) == ("tier1", "summary")


async def test_cost_report(fakes, refund_sources, pg_pool, org_id) -> None:
    router = router_for(fakes, PostgresCostSink(pg_pool))
    await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    fakes[0].logprob = BAD
    await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    report = await cost_report(pg_pool, org_id, Price(3.0, 15.0))
    assert report.interactions == 2 and report.cascade_rate == 0.5
    assert report.tier_counts == {"tier1": 1, "tier2": 1}
    assert 0 < report.total_cost_usd < report.all_tier3_cost_usd and 0 < report.saving_vs_tier3 < 1


async def test_a_caller_in_another_language_gets_the_generative_answer_asked_in_it(fakes, refund_sources, org_id) -> None:
    router = router_for(fakes)
    await router.answer("¿Cuánto tarda el reembolso?", refund_sources, organization_id=org_id, language="Spanish")
    asked = fakes[0].chat_requests[-1].body["messages"][-1]["content"]
    assert asked.rstrip().endswith("Keep product names, error codes, settings and commands exactly as the sources write them.")
    assert "write your whole answer in Spanish" in asked
    await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert "write your whole answer in" not in fakes[0].chat_requests[-1].body["messages"][-1]["content"]
