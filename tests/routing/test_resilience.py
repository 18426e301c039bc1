"""The breaker (a cancelled half-open trial must not stick it open), tenacity retries for background
work, and a live turn's deadline: real SDK clients against local OpenAI-wire servers."""

from __future__ import annotations

import asyncio
import time

import pytest

from callwise.routing.pricing import Price
from callwise.routing.providers.base import ProviderError
from callwise.routing.providers.openai import OpenAIProvider
from callwise.routing.resilience import HOLDING_LINE, CircuitBreaker, CircuitOpen, RetryPolicy, call_once, call_with_retries
from callwise.routing.router import APOLOGY, CascadingRouter, Tier
from tests.routing.conftest import FAST_RETRY
from tests.vendors._http import Reply
from tests.vendors.openai import FakeOpenAI

GOOD, BAD = -0.01, -1.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def hang(seconds: float = 30.0) -> Reply:
    return Reply(200, {"hang": True}, delay_s=seconds)


@pytest.fixture
def fakes():  # type: ignore[no-untyped-def]
    servers = [FakeOpenAI(f"Answer from tier {i}.", logprob=GOOD).start() for i in (1, 2, 3)]
    yield servers
    for s in servers:
        s.stop()


def make_router(fakes: list[FakeOpenAI], **kw: object) -> CascadingRouter:
    tiers = [Tier(n, OpenAIProvider(f"model-{n}", api_key="test", base_url=f.base_url), price=Price(1, 1))
             for n, f in zip(("tier1", "tier2", "tier3")[:len(fakes)], fakes, strict=True)]
    kw.setdefault("retry", FAST_RETRY)
    return CascadingRouter(tiers, **kw)  # type: ignore[arg-type]


async def collect(stream) -> tuple[list[str], list[float]]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    deltas, at = [], []
    async for d in stream:
        deltas.append(d)
        at.append(time.perf_counter() - t0)
    return deltas, at


# --------------------------------------------------------------------------- the breaker
async def test_cancelled_half_open_trial_does_not_stick_the_breaker_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, reset_after_s=5, clock=clock)
    breaker.failure()
    clock.now = 6
    assert breaker.state == "half_open" and breaker.available

    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    task = asyncio.ensure_future(call_once(slow, timeout_s=None, breaker=breaker))
    await asyncio.sleep(0.01)
    assert not breaker.available, "one trial at a time"
    with pytest.raises(CircuitOpen):
        breaker.check()
    task.cancel()  # barge-in
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.available and breaker.state == "half_open"

    async def ok() -> str:
        return "ok"

    assert await call_once(ok, timeout_s=1, breaker=breaker) == "ok"
    assert breaker.state == "closed"


def test_a_trial_that_never_reports_back_is_given_up_after_the_reset_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, reset_after_s=5, clock=clock)
    breaker.failure()
    clock.now = 6
    assert breaker.allow()  # trial let through, then its caller vanishes without success/failure/release
    clock.now = 8
    assert not breaker.available
    clock.now = 11.5
    assert breaker.available and breaker.allow()


async def test_retries_use_backoff_and_count_against_the_breaker() -> None:
    breaker = CircuitBreaker("p", failure_threshold=5, reset_after_s=60)
    calls = []

    async def flaky() -> str:
        calls.append(time.perf_counter())
        if len(calls) < 3:
            raise ProviderError("429", retryable=True, status=429, retry_after=0.05)
        return "ok"

    assert await call_with_retries(flaky, timeout_s=1, policy=RetryPolicy(3, 0.01, 0.2, 0.0), breaker=breaker) == "ok"
    assert len(calls) == 3 and calls[1] - calls[0] >= 0.045, "Retry-After honoured"
    assert breaker.state == "closed" and breaker.failures == 0

    async def fatal() -> str:
        calls.append(0.0)
        raise ProviderError("400 bad request", retryable=False, status=400)

    calls.clear()
    with pytest.raises(ProviderError, match="400"):
        await call_with_retries(fatal, timeout_s=1, policy=RetryPolicy(3, 0.01), breaker=breaker)
    assert len(calls) == 1 and breaker.failures == 1


async def test_router_gets_the_provider_back_after_a_cancelled_trial(fakes, refund_sources, org_id) -> None:
    router = make_router(fakes, breaker_failures=1, breaker_reset_s=0.3, first_word_s=None)
    fakes[0].enqueue(fakes[0].server_error(500))
    first = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert first.tier == "tier2" and router.breaker_states()["openai:model-tier1"] == "open"
    await asyncio.sleep(0.35)
    fakes[0].enqueue(hang(5))
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id)
    pending = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.3)  # the half-open trial is in flight at tier1
    assert len(fakes[0].chat_requests) == 2
    pending.cancel()
    await stream.aclose()  # the caller barged in
    await asyncio.sleep(0.05)
    again = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert again.tier == "tier1", "the breaker let a new trial through"
    assert router.breaker_states()["openai:model-tier1"] == "closed"


async def test_a_provider_whose_trial_is_in_flight_is_not_counted_as_available(fakes, refund_sources,
                                                                                org_id) -> None:
    fakes[0].logprob = BAD  # tier1 answers with low confidence: it would cascade if tier2 were available
    router = make_router(fakes, breaker_failures=1, breaker_reset_s=0.2)
    b2 = router.breakers["openai:model-tier2"]
    b3 = router.breakers["openai:model-tier3"]
    for b in (b2, b3):
        b.failure()
    await asyncio.sleep(0.25)
    assert b2.allow() and b3.allow()  # another call holds both half-open trials
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id)
    deltas, _ = await collect(stream)
    assert stream.result is not None and stream.result.cascade_path == ["tier1"], stream.result.error
    assert len(deltas) > 1, "tier1 is the last available tier, so it streams token by token"
    assert not fakes[1].chat_requests and not fakes[2].chat_requests


# --------------------------------------------------------------------------- live turns
async def test_live_turn_does_not_retry_and_moves_to_the_next_tier(fakes, refund_sources, org_id) -> None:
    router = make_router(fakes)
    fakes[0].enqueue(fakes[0].server_error(503), fakes[0].server_error(503))
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id)
    deltas, _ = await collect(stream)
    assert stream.result.tier == "tier2" and "".join(deltas).strip() == "Answer from tier 2."
    assert len(fakes[0].chat_requests) == 1, "no retry inside a live turn"
    background = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert background.tier == "tier1" and len(fakes[0].chat_requests) == 3, "background work retries (503 -> ok)"


async def test_hung_tier_gets_a_holding_line_within_the_deadline(fakes, refund_sources, org_id) -> None:
    router = make_router(fakes, first_word_s=0.6, give_up_s=8)
    fakes[0].enqueue(hang(20))
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id)
    deltas, at = await asyncio.wait_for(collect(stream), timeout=6)
    assert deltas[0].strip() == HOLDING_LINE and 0.5 <= at[0] < 1.5, at[0]
    assert "".join(deltas[1:]).strip() == "Answer from tier 2."
    res = stream.result
    assert res.cascade_path == ["tier1", "tier2"] and "turn deadline" in (res.error or "")
    assert res.text.startswith(HOLDING_LINE) and res.ttft_ms < 1500
    assert len(fakes[0].chat_requests) == 1


async def test_deadline_counts_from_end_of_speech(fakes, refund_sources, org_id) -> None:
    router = make_router(fakes, first_word_s=1.0, give_up_s=8)
    fakes[0].enqueue(hang(20))
    eos = time.perf_counter() - 0.95  # STT and retrieval already used most of the budget
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id, eos_at=eos)
    deltas, at = await asyncio.wait_for(collect(stream), timeout=6)
    assert deltas[0].strip() == HOLDING_LINE and at[0] < 0.3
    assert stream.result.tier == "tier2"


async def test_every_tier_hung_gives_up_with_the_apology(fakes, refund_sources, org_id) -> None:
    router = make_router(fakes, first_word_s=0.3, give_up_s=1.2)
    for f in fakes:
        f.enqueue(hang(20))
    t0 = time.perf_counter()
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id)
    deltas, _ = await asyncio.wait_for(collect(stream), timeout=8)
    assert time.perf_counter() - t0 < 3
    assert deltas[0].strip() == HOLDING_LINE and APOLOGY in "".join(deltas)
    assert stream.result.escalate and stream.result.tier is None


async def test_slow_last_tier_is_waited_for_after_the_holding_line(fakes, refund_sources, org_id) -> None:
    router = make_router(fakes[:1], first_word_s=0.4, give_up_s=8)  # one tier: nothing to move on to
    fakes[0].enqueue(lambda req: Reply(200, events=FakeOpenAI("Slow but right.", logprob=GOOD).handle(req).events,
                                       delay_s=1.2))
    stream = router.answer_stream("How long do refunds take?", refund_sources, organization_id=org_id)
    deltas, at = await asyncio.wait_for(collect(stream), timeout=6)
    assert deltas[0].strip() == HOLDING_LINE and 0.3 <= at[0] < 1.0
    assert "".join(deltas[1:]).strip() == "Slow but right." and stream.result.tier == "tier1"
    assert len(fakes[0].chat_requests) == 1
