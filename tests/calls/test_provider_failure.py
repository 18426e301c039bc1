"""A provider outage mid-call: the customer hears an apology and a handoff, and the turn is stored."""

from __future__ import annotations

import json

from callwise.calls import SupportCall, SupportDeps
from callwise.routing.costs import PostgresCostSink
from callwise.routing.providers.base import Provider, ProviderError
from callwise.routing.resilience import RetryPolicy
from callwise.routing.router import CascadingRouter, Tier


class DownProvider(Provider):
    name = "down"

    async def generate(self, messages, **kwargs):  # type: ignore[no-untyped-def, override]
        raise ProviderError("503 service unavailable", retryable=False, status=503)


class ExplodingRouter:
    """A router that breaks its promise and raises after the first words."""

    def answer_stream(self, query, sources=(), **kwargs):  # type: ignore[no-untyped-def]
        async def gen():  # type: ignore[no-untyped-def]
            yield "Let me check "
            raise RuntimeError("connection reset")
        return gen()


async def test_failing_router_persists_the_turn_and_escalates(support_deps, kb_org, pg_pool) -> None:
    router = CascadingRouter([Tier("tier1", DownProvider("m1")), Tier("tier2", DownProvider("m2"))],
                             PostgresCostSink(pg_pool), retry=RetryPolicy(attempts=1))
    deps = SupportDeps(retriever=support_deps.retriever, router=router, pool=pg_pool, rules=support_deps.rules)
    events: list[dict] = []

    async def publish(ev: dict) -> None:
        events.append(ev)

    call = await SupportCall.start(deps, organization_id=kb_org, room="outage", on_event=publish)
    out = await call.run_turn("How long does a refund take?")
    await call.end()

    assert out.escalated and out.escalation["reason"] == "router_failure"
    assert "sorry" in out.answer.lower() and "recorded your request for our support team as case number" in out.answer
    assert out.sources, "retrieval still ran; the sources are kept with the failed turn"
    turn = await pg_pool.fetchrow("select * from turns where organization_id = $1 and session_id = $2 and role = "
                                  "'assistant'", kb_org, call.session_id)
    assert turn["escalated"] and turn["error"] and "503" in turn["error"] and turn["tier"] is None
    assert json.loads(turn["sources"])[0]["document"] == "examples/kb/billing/refunds.md"
    esc = await pg_pool.fetchrow("select * from escalations where session_id = $1", call.session_id)
    assert esc["reason"] == "router_failure" and str(esc["turn_id"]) == str(turn["id"])
    failed = await pg_pool.fetch("select * from cost_events where organization_id = $1 and turn_id = $2",
                                 kb_org, turn["id"])
    assert len(failed) == 2 and not any(r["success"] for r in failed), "each failed tier left a cost event"
    assert events and events[0]["reason"] == "router_failure"
    unresolved = await pg_pool.fetchval("select last_reason from unresolved_problems where organization_id = $1 "
                                        "and session_id = $2", kb_org, call.session_id)
    assert unresolved == "escalated"


async def test_router_that_raises_mid_answer_still_stores(support_deps, kb_org, pg_pool) -> None:
    deps = SupportDeps(retriever=support_deps.retriever, router=ExplodingRouter(), pool=pg_pool,
                       rules=support_deps.rules)
    call = await SupportCall.start(deps, organization_id=kb_org, room="boom")
    out = await call.run_turn("How do I reset my password?")
    await call.end()
    assert out.escalated and out.escalation["reason"] == "router_failure"
    assert out.answer.startswith("Let me check") and "connection reset" in (out.error or "")
    assert await pg_pool.fetchval("select count(*) from turns where session_id = $1", call.session_id) == 2


async def test_barge_in_stores_the_interrupted_turn(support_deps, kb_org, pg_pool) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="barge")
    stream = call.turn("How long does a refund take?")
    first = await stream.__anext__()
    assert first
    await stream.aclose()  # what the framework does when the customer talks over the answer
    await call.end()       # waits for the background write
    row = await pg_pool.fetchrow("select * from turns where session_id = $1 and role = 'assistant'", call.session_id)
    assert row["error"] == "interrupted" and row["text"] == first.strip()
