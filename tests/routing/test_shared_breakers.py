"""Breaker openings outlive a call: one process's opening is honoured by another over the same database
(migration 0015), and a closing travels the same way. Real routers against local OpenAI-wire servers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from callwise.routing.pricing import Price
from callwise.routing.providers.openai import OpenAIProvider
from callwise.routing.resilience import CircuitBreaker, SharedBreakers
from callwise.routing.router import CascadingRouter, Tier
from tests.routing.conftest import FAST_RETRY
from tests.vendors.openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fakes():  # type: ignore[no-untyped-def]
    servers = [FakeOpenAI(f"Answer from tier {i}.", logprob=-0.01).start() for i in (1, 2)]
    yield servers
    for s in servers:
        s.stop()


def _router(fakes: list[FakeOpenAI], tag: str) -> CascadingRouter:
    tiers = [Tier(n, OpenAIProvider(f"{tag}-{n}", api_key="test", base_url=f.base_url), price=Price(1, 1))
             for n, f in zip(("tier1", "tier2"), fakes, strict=True)]
    return CascadingRouter(tiers, retry=FAST_RETRY, breaker_failures=1, breaker_reset_s=0.5, first_word_s=None)


async def test_an_opening_in_one_router_is_honoured_by_another(fakes, refund_sources, org_id, pg_pool) -> None:
    tag = uuid.uuid4().hex[:8]
    a, b = _router(fakes, tag), _router(fakes, tag)  # two worker processes' routers
    shared_a, shared_b = SharedBreakers(pg_pool, holder="host-a:1"), SharedBreakers(pg_pool, holder="host-b:2")
    shared_a.attach(a.breakers)
    shared_b.attach(b.breakers)
    fakes[0].enqueue(fakes[0].server_error(500))
    first = await a.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert first.tier == "tier2" and a.breaker_states()[f"openai:{tag}-tier1"] == "open"
    await shared_a.aclose()  # the opening is written
    assert await shared_b.refresh() == 1
    assert b.breaker_states()[f"openai:{tag}-tier1"] == "open"
    asked = len(fakes[0].chat_requests)
    second = await b.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert second.tier == "tier2" and len(fakes[0].chat_requests) == asked  # B never tried the broken provider
    await asyncio.sleep(0.55)  # the reset time: B's trial goes through and succeeds
    third = await b.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    assert third.tier == "tier1" and b.breaker_states()[f"openai:{tag}-tier1"] == "closed"
    await shared_b.aclose()
    assert await shared_a.refresh() == 1
    assert a.breaker_states()[f"openai:{tag}-tier1"] == "closed"
    assert await shared_a.refresh() == 0  # nothing new


async def test_an_old_opening_or_an_older_word_is_not_adopted(pg_pool) -> None:
    name = f"test:{uuid.uuid4().hex[:8]}"
    local = CircuitBreaker(name, failure_threshold=1, reset_after_s=30)
    shared = SharedBreakers(pg_pool, holder="host-a:1")
    shared.attach({name: local})
    await pg_pool.execute("insert into breaker_openings (name, opened_at, updated_at, updated_by)"
                          " values ($1, now() - interval '60 seconds', now() - interval '60 seconds', 'host-b:2')", name)
    assert await shared.refresh() == 0 and local.state == "closed"  # its 30 s are over
    local.failure()  # opened here, after the other's last word below
    await shared.aclose()
    await pg_pool.execute("update breaker_openings set opened_at = null, updated_at = now() - interval '5 seconds',"
                          " updated_by = 'host-b:2' where name = $1", name)
    assert await shared.refresh() == 0 and local.state == "open"  # a closing older than this opening


async def test_an_opening_and_the_closing_right_after_it_are_written_in_order(pg_pool) -> None:
    name = f"test:{uuid.uuid4().hex[:8]}"
    breaker = CircuitBreaker(name, failure_threshold=1, reset_after_s=30)
    shared = SharedBreakers(pg_pool, holder="host-a:1")
    shared.attach({name: breaker})
    for _ in range(20):
        breaker.failure()  # opens (and opens again)
        breaker.success()  # closes at once
    await shared.aclose()
    row = await pg_pool.fetchrow("select opened_at from breaker_openings where name = $1", name)
    assert row is not None and row["opened_at"] is None  # the last word is the closing


CHILD = textwrap.dedent("""
    import asyncio, sys
    import asyncpg
    from callwise.routing.resilience import CircuitBreaker, SharedBreakers

    async def main(url, name):
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        breaker = CircuitBreaker(name, failure_threshold=3, reset_after_s=30)
        shared = SharedBreakers(pool)
        shared.attach({name: breaker})
        for _ in range(3):
            breaker.failure()
        await shared.aclose()
        await pool.close()
        print(breaker.state)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


async def test_an_opening_in_another_process_is_seen_here(pg_url: str, pg_pool) -> None:
    from callwise.wiring.routing import share_breakers

    name = f"openai:{uuid.uuid4().hex[:8]}"
    out = subprocess.run([sys.executable, "-c", CHILD, pg_url, name], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "open", out.stderr
    here = CircuitBreaker(name, failure_threshold=3, reset_after_s=30)
    router = type("R", (), {"breakers": {name: here}})()
    shared = share_breakers(router, pg_pool)  # type: ignore[arg-type]  # as the wiring hooks a router
    try:
        for _ in range(50):
            if here.state == "open":
                break
            await asyncio.sleep(0.1)  # the reading loop runs every second
        assert here.state == "open" and not here.available
    finally:
        await shared.aclose()
