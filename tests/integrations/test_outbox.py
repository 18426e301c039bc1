"""The durable outbox against a real Postgres and a real HTTP vendor: transactional enqueue, retries with
backoff and Retry-After, dead rows, crash between send and mark, two dispatchers on one queue."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from callwise.integrations.outbox import Backoff, Dispatcher, enqueue, list_items, retry
from tests.integrations._vendor import IdempotentVendor, vendor_handler

FAST = Backoff(base_s=0.05, max_s=0.2, jitter=0.0)


@pytest.fixture
def vendor():
    with IdempotentVendor() as v:
        yield v


async def _enqueue_many(pool, org_id: str, n: int, action: str = "test.action") -> list[str]:
    ids = []
    async with pool.acquire() as conn, conn.transaction():
        for i in range(n):
            ids.append(await enqueue(conn, organization_id=org_id, action=action, payload={"n": i},
                                     idempotency_key=f"k-{uuid.uuid4().hex}"))
    return ids


async def _statuses(pool, org_id: str) -> dict[str, int]:
    rows = await pool.fetch("select status, count(*) n from outbox where organization_id = $1 group by status", org_id)
    return {r["status"]: r["n"] for r in rows}


async def test_enqueue_is_part_of_the_callers_transaction(pg_pool, org_id):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with pg_pool.acquire() as conn, conn.transaction():
            await enqueue(conn, organization_id=org_id, action="test.action", payload={}, idempotency_key="rolled-back")
            raise Boom
    assert await list_items(pg_pool, org_id) == []
    async with pg_pool.acquire() as conn:
        first = await enqueue(conn, organization_id=org_id, action="test.action", payload={}, idempotency_key="k1")
        again = await enqueue(conn, organization_id=org_id, action="test.action", payload={}, idempotency_key="k1")
    assert first is not None and again is None
    assert len(await list_items(pg_pool, org_id)) == 1


async def test_vendor_down_then_back_delivers_each_action_exactly_once(pg_pool, org_id, vendor):
    await _enqueue_many(pg_pool, org_id, 20)
    d = Dispatcher(pg_pool, {"test.action": vendor_handler(vendor.url)}, organization_id=org_id, backoff=FAST)
    vendor.down = True
    stats = await d.run_once()
    assert stats.claimed == 20 and stats.retried == 20 and stats.delivered == 0
    assert await _statuses(pg_pool, org_id) == {"pending": 20}
    vendor.down = False
    stats = await d.drain(timeout_s=20)
    assert stats.delivered == 20
    assert await _statuses(pg_pool, org_id) == {"delivered": 20}
    assert len(vendor.creates) == 20 and set(vendor.creates.values()) == {1}
    audit = await pg_pool.fetch("select action, details from audit_log where organization_id = $1", org_id)
    assert len(audit) == 20
    for row in audit:
        details = json.loads(row["details"])
        assert details["result"] == "delivered" and details["vendor_id"].startswith("v-")
        assert "sk-test-secret-token" not in row["details"]


async def test_retry_after_sets_the_next_attempt_and_last_attempt_goes_dead(pg_pool, org_id, vendor):
    async with pg_pool.acquire() as conn:
        await enqueue(conn, organization_id=org_id, action="test.action", payload={}, idempotency_key="ra",
                      max_attempts=2)
    d = Dispatcher(pg_pool, {"test.action": vendor_handler(vendor.url)}, organization_id=org_id, backoff=FAST)
    vendor.rate_limit_next = 30
    await d.run_once()
    wait = await pg_pool.fetchval("select extract(epoch from next_attempt_at - now()) from outbox "
                                  "where organization_id = $1", org_id)
    assert 25 < float(wait) <= 30  # the vendor's Retry-After, not the 0.05 s backoff
    await pg_pool.execute("update outbox set next_attempt_at = now() where organization_id = $1", org_id)
    vendor.down = True
    await d.run_once()
    [row] = await list_items(pg_pool, org_id)
    assert row["status"] == "dead" and row["attempts"] == 2 and "503" in row["last_error"]
    dead_audit = await pg_pool.fetchval("select details->>'result' from audit_log where organization_id = $1", org_id)
    assert dead_audit == "dead"
    # `callwise outbox retry` puts it back with fresh attempts
    vendor.down = False
    assert await retry(pg_pool, org_id, all_dead=True) == 1
    await d.drain(timeout_s=10)
    [row] = await list_items(pg_pool, org_id)
    assert row["status"] == "delivered" and vendor.creates["ra"] == 1


async def test_rejected_action_is_dead_at_once_with_the_error(pg_pool, org_id, vendor):
    async with pg_pool.acquire() as conn:
        await enqueue(conn, organization_id=org_id, action="test.action", payload={}, idempotency_key="bad")
    vendor.reject_next = True
    d = Dispatcher(pg_pool, {"test.action": vendor_handler(vendor.url)}, organization_id=org_id, backoff=FAST)
    await d.run_once()
    [row] = await list_items(pg_pool, org_id)
    assert row["status"] == "dead" and row["attempts"] == 1 and "RecordInvalid" in row["last_error"]


async def test_dispatcher_killed_between_send_and_mark_does_not_duplicate(pg_pool, org_id, vendor):
    async with pg_pool.acquire() as conn:
        await enqueue(conn, organization_id=org_id, action="test.action", payload={"x": 1}, idempotency_key="crash")
    sent = asyncio.Event()
    real = vendor_handler(vendor.url)

    async def send_then_die(item):
        await real(item)  # the vendor has it now
        sent.set()
        await asyncio.Event().wait()  # killed here: never returns, never marks

    doomed = Dispatcher(pg_pool, {"test.action": send_then_die}, organization_id=org_id, lease_s=1.0)
    task = asyncio.create_task(doomed.run_once())
    await asyncio.wait_for(sent.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = await list_items(pg_pool, org_id)
    assert row["status"] == "in_flight"
    survivor = Dispatcher(pg_pool, {"test.action": real}, organization_id=org_id, backoff=FAST)
    assert (await survivor.run_once()).claimed == 0  # the lease still holds
    await asyncio.sleep(1.1)
    stats = await survivor.drain(timeout_s=5)
    assert stats.delivered == 1
    [row] = await list_items(pg_pool, org_id)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert vendor.creates["crash"] == 1  # found by key on the second attempt, not created again


async def test_two_dispatchers_on_one_queue_never_double_deliver(pg_pool, org_id):
    with IdempotentVendor(fail_rate=0.2, seed=3, dedupe=False) as flaky:  # a double claim would create twice
        await _enqueue_many(pg_pool, org_id, 80)
        calls: list[str] = []
        real = vendor_handler(flaky.url, lookup_first=False)  # no lookup: a double claim would show as a double create

        async def counting(item):
            calls.append(item.idempotency_key)
            return await real(item)

        a = Dispatcher(pg_pool, {"test.action": counting}, organization_id=org_id, backoff=FAST, batch_size=7)
        b = Dispatcher(pg_pool, {"test.action": counting}, organization_id=org_id, backoff=FAST, batch_size=5)
        sa, sb = await asyncio.gather(a.drain(timeout_s=120), b.drain(timeout_s=120))
        assert sa.delivered + sb.delivered == 80
        assert sa.delivered > 0 and sb.delivered > 0
        assert len(flaky.creates) == 80 and set(flaky.creates.values()) == {1}
        assert len(calls) == 80 + flaky.failed  # each attempt was one handler call: no row was handed out twice
        assert await _statuses(pg_pool, org_id) == {"delivered": 80}


async def test_rows_without_a_handler_wait_for_one(pg_pool, org_id, vendor):
    async with pg_pool.acquire() as conn:
        await enqueue(conn, organization_id=org_id, action="crm.note", payload={}, idempotency_key="crm-1")
    d = Dispatcher(pg_pool, {"test.action": vendor_handler(vendor.url)}, organization_id=org_id)
    assert (await d.run_once()).claimed == 0
    assert (await list_items(pg_pool, org_id))[0]["status"] == "pending"


def test_backoff_grows_and_is_capped():
    b = Backoff(base_s=2, max_s=60, jitter=0)
    assert [b.delay(n) for n in (1, 2, 3, 4, 10)] == [2, 4, 8, 16, 60]
    assert b.delay(3, retry_after=120) == 120
