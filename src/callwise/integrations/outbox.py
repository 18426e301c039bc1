"""The durable outbox: every external action is a row, delivered at least once, applied exactly once.

Writers call :func:`enqueue` with the connection of the transaction that caused the action (the
escalation, the turn, the survey), so the action exists if and only if its cause was committed.

A :class:`Dispatcher` (any number of them, in the worker, in ``callwise serve``, on any machine) claims
due rows with ``FOR UPDATE SKIP LOCKED`` and takes a lease (``status = 'in_flight'``, ``locked_until``);
the claim commits before the vendor is called, so no transaction stays open across the network. The
handler for the row's ``action`` delivers it with the row's ``idempotency_key``; then the row is marked
``delivered`` (with the vendor id, and an ``audit_log`` row, in one transaction), or rescheduled with
exponential backoff (or the vendor's ``Retry-After``), or marked ``dead`` after ``max_attempts`` with the
error. A dispatcher that dies mid-delivery leaves an expired lease; the row becomes due again and the
handler's own idempotency (a Zendesk ``external_id`` lookup, a Twilio/SendGrid lookup by our key) keeps
the second attempt from duplicating what the first may already have done.

Scheduling uses the database clock (``now()``), so dispatchers on machines with skewed clocks agree.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger("callwise.outbox")

STATUSES = ("pending", "in_flight", "delivered", "dead", "cancelled")
DEFAULT_MAX_ATTEMPTS = 8


# --------------------------------------------------------------------------------------------- errors
class DeliveryError(Exception):
    """A delivery that did not happen. ``retryable`` errors are tried again later."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryableError(DeliveryError):
    """The vendor is down, slow, rate limiting (``retry_after`` seconds) or answered 5xx."""


class PermanentError(DeliveryError):
    """The vendor refused the action for good (a 4xx such as 422 RecordInvalid): no retry."""

    retryable = False


class NeedsReauth(PermanentError):
    """The org's credentials were refused or revoked; the integration needs re-authorisation."""


# --------------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class OutboxItem:
    id: str
    organization_id: str
    action: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    max_attempts: int
    case_id: str | None = None
    session_id: str | None = None
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxItem:
        payload = row["payload"]
        return cls(
            id=str(row["id"]), organization_id=str(row["organization_id"]), action=row["action"],
            payload=json.loads(payload) if isinstance(payload, str) else dict(payload or {}),
            idempotency_key=row["idempotency_key"], attempts=row["attempts"], max_attempts=row["max_attempts"],
            case_id=str(row["case_id"]) if row["case_id"] else None,
            session_id=str(row["session_id"]) if row["session_id"] else None, created_at=row["created_at"],
        )


AfterDelivery = Callable[[Any], Awaitable[None]]  # runs with the connection, in the mark-delivered transaction


@dataclass
class Delivered:
    """What a handler returns. ``audit`` goes to ``audit_log.details`` (never put a secret there);
    ``apply`` records the outcome where it belongs (the ticket id on the case, ...) atomically with
    marking the row delivered."""

    vendor_id: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    target_type: str | None = None
    target_id: str | None = None
    apply: AfterDelivery | None = None


Handler = Callable[[OutboxItem], Awaitable[Delivered]]


@dataclass(frozen=True)
class Backoff:
    """``base_s * 2 ** (attempt - 1)`` capped at ``max_s``, +/- ``jitter``; a vendor's Retry-After wins."""

    base_s: float = 2.0
    max_s: float = 600.0
    jitter: float = 0.2
    max_retry_after_s: float = 86400.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after_s)
        raw = min(self.max_s, self.base_s * (2 ** max(0, attempt - 1)))
        r = (rng or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, raw * (1 + r))


# --------------------------------------------------------------------------------------------- writing
async def enqueue(conn: Any, *, organization_id: str, action: str, payload: Mapping[str, Any],
                  idempotency_key: str, case_id: str | None = None, session_id: str | None = None,
                  max_attempts: int = DEFAULT_MAX_ATTEMPTS, delay_s: float = 0.0) -> str | None:
    """Add an action in the caller's transaction; the same ``idempotency_key`` twice is one row.

    ``delay_s`` makes the row due later. A row the writer will deliver itself with
    :meth:`Dispatcher.deliver_now` (the live handoff) is queued with its deadline as ``delay_s``: it has one
    owner, because the background dispatchers claim only due rows, while ``deliver_now`` claims a pending
    row whether due or not. If the writer dies first, the row becomes due at the deadline and is delivered
    in the background.

    Returns the row id, or ``None`` when the key already existed (the action was queued before)."""
    row = await conn.fetchrow(
        "insert into outbox (organization_id, action, payload, idempotency_key, case_id, session_id, max_attempts, "
        "next_attempt_at) values ($1, $2, $3::jsonb, $4, $5, $6, $7, now() + make_interval(secs => $8)) "
        "on conflict (organization_id, idempotency_key) do nothing returning id",
        organization_id, action, json.dumps(dict(payload), default=str), idempotency_key, case_id, session_id,
        max_attempts, float(delay_s),
    )
    return str(row["id"]) if row else None


async def list_items(pool: Any, organization_id: str, *, status: str | None = None, case_id: str | None = None,
                     limit: int = 50) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "select o.id, o.action, o.status, o.attempts, o.max_attempts, o.next_attempt_at, o.last_error, o.vendor_id, "
        "o.idempotency_key, o.case_id, e.case_number, o.created_at, o.delivered_at "
        "from outbox o left join escalations e on e.id = o.case_id and e.organization_id = o.organization_id "
        "where o.organization_id = $1 and ($2::text is null or o.status = $2) and ($3::uuid is null or o.case_id = $3) "
        "order by o.created_at desc limit $4",
        organization_id, status, case_id, limit,
    )
    return [dict(r) for r in rows]


async def retry(pool: Any, organization_id: str, *, item_id: str | None = None, all_dead: bool = False) -> int:
    """Make dead (or, with ``item_id``, pending/dead) rows due now with a fresh set of attempts.

    ``attempts`` is kept (the budget grows instead): a handler looks for what an earlier attempt may already
    have created before it creates again, and it knows there was an earlier attempt by ``attempts``."""
    if item_id is None and not all_dead:
        raise ValueError("give an outbox id or all_dead=True")
    result = await pool.execute(
        "update outbox set status = 'pending', max_attempts = attempts + max_attempts, next_attempt_at = now(), "
        "locked_by = null, "
        "locked_until = null, updated_at = now() where organization_id = $1 and status in ('dead', 'pending') "
        "and (($2::uuid is not null and id = $2) or ($2::uuid is null and status = 'dead'))",
        organization_id, item_id,
    )
    return int(result.split()[-1])


async def counts(pool: Any, organization_id: str) -> dict[str, int]:
    rows = await pool.fetch("select status, count(*) as n from outbox where organization_id = $1 group by status",
                            organization_id)
    return {r["status"]: int(r["n"]) for r in rows}


# --------------------------------------------------------------------------------------------- dispatching
@dataclass
class DispatchStats:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    lost_lease: int = 0
    delivery_delays_s: list[float] = field(default_factory=list)  # created -> delivered, per delivered row

    def add(self, other: DispatchStats) -> None:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.retried += other.retried
        self.dead += other.dead
        self.lost_lease += other.lost_lease
        self.delivery_delays_s += other.delivery_delays_s

    def as_dict(self) -> dict[str, Any]:
        return {"claimed": self.claimed, "delivered": self.delivered, "retried": self.retried, "dead": self.dead,
                "lost_lease": self.lost_lease}


_CLAIM = """
with due as (
    select id from outbox
    where ((status = 'pending' and next_attempt_at <= now()) or (status = 'in_flight' and locked_until < now()))
      and action = any($3::text[])
      and ($4::uuid is null or organization_id = $4)
    order by next_attempt_at
    limit $1
    for update skip locked
)
update outbox o set status = 'in_flight', locked_by = $2, locked_until = now() + make_interval(secs => $5),
                    attempts = o.attempts + 1, updated_at = now()
from due where o.id = due.id
returning o.*
"""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Dispatcher:
    """Claims and delivers due outbox rows. ``handlers`` maps an action (``zendesk.ticket``) to a handler;
    rows whose action has no handler here are left for a dispatcher that has one (the CRM, later)."""

    def __init__(self, pool: Any, handlers: Mapping[str, Handler], *, worker_id: str | None = None,
                 batch_size: int = 20, concurrency: int = 8, lease_s: float = 60.0, backoff: Backoff | None = None,
                 organization_id: str | None = None, actor: str = "outbox") -> None:
        self.pool = pool
        self.handlers = dict(handlers)
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.lease_s = lease_s
        self.backoff = backoff or Backoff()
        self.organization_id = organization_id
        self.actor = actor
        self._sem = asyncio.Semaphore(concurrency)

    async def claim(self, limit: int | None = None) -> list[OutboxItem]:
        if not self.handlers:
            return []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, limit or self.batch_size, self.worker_id, list(self.handlers),
                                    self.organization_id, float(self.lease_s))
        return [OutboxItem.from_row(r) for r in rows]

    async def deliver_now(self, ids: Sequence[str], timeout_s: float = 5.0) -> dict[str, bool]:
        """Claim these rows (if due and not taken) and deliver them at once: the live path of a handoff,
        where the caller is waiting. Returns ``{id: delivered}``; a row that failed stays in the outbox
        under its usual retry rules. The lease outlasts ``timeout_s`` (a SIP transfer rings for up to 30 s)."""
        lease_s = max(self.lease_s, timeout_s * 1.25 + 5.0)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "with due as (select id from outbox where id = any($3::uuid[]) and status = 'pending' "
                "and action = any($4::text[]) for update skip locked) "
                "update outbox o set status = 'in_flight', locked_by = $1, locked_until = now() + make_interval(secs => $2), "
                "attempts = o.attempts + 1, updated_at = now() from due where o.id = due.id returning o.*",
                self.worker_id, float(lease_s), list(ids), list(self.handlers))
        items = [OutboxItem.from_row(r) for r in rows]
        outcome = {str(i): False for i in ids}

        async def one(item: OutboxItem) -> None:
            stats = await self._guarded(item, timeout_s, lease_s)
            outcome[item.id] = stats.delivered == 1

        await asyncio.gather(*(one(i) for i in items))
        return outcome

    async def run_once(self) -> DispatchStats:
        """Claim one batch and deliver it (concurrently, bounded)."""
        items = await self.claim()
        stats = DispatchStats(claimed=len(items))
        results = await asyncio.gather(*(self._guarded(item) for item in items))
        for r in results:
            stats.add(r)
        return stats

    async def drain(self, *, timeout_s: float = 60.0, idle_wait_s: float = 0.05) -> DispatchStats:
        """Deliver until nothing is left that could become due before the timeout (a retry, an expiring lease)."""
        stats = DispatchStats()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await self.run_once()
            stats.add(batch)
            if batch.claimed:
                continue
            wait = await self.pool.fetchval(  # the next retry, or the next lease of a dead dispatcher to run out
                "select extract(epoch from min(case when status = 'pending' then next_attempt_at else locked_until end)"
                " - now()) from outbox where status in ('pending', 'in_flight') and action = any($1::text[]) "
                "and ($2::uuid is null or organization_id = $2)",
                list(self.handlers), self.organization_id)
            if wait is None or float(wait) > deadline - time.monotonic():
                break
            await asyncio.sleep(max(idle_wait_s, min(float(wait), 1.0)))
        return stats

    async def run(self, stop: asyncio.Event, *, poll_s: float = 1.0) -> DispatchStats:
        """Loop until ``stop`` is set: busy batches back to back, idle polls every ``poll_s``."""
        stats = DispatchStats()
        while not stop.is_set():
            try:
                batch = await self.run_once()
                stats.add(batch)
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the loop
                log.exception("outbox dispatch failed; retrying")
                batch = DispatchStats()
            if batch.claimed == 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=poll_s)
                except TimeoutError:
                    pass
        return stats

    # ------------------------------------------------------------------------------------- one row
    async def _guarded(self, item: OutboxItem, timeout_s: float | None = None,
                       lease_s: float | None = None) -> DispatchStats:
        async with self._sem:
            try:
                return await self.deliver(item, timeout_s, lease_s)
            except Exception:  # noqa: BLE001 - marking failed (database); the lease expires and it is retried
                log.exception("outbox row %s: could not record the outcome", item.id)
                return DispatchStats()

    async def deliver(self, item: OutboxItem, timeout_s: float | None = None,
                      lease_s: float | None = None) -> DispatchStats:
        stats = DispatchStats()
        handler = self.handlers[item.action]
        lease = lease_s or self.lease_s
        limit = min(timeout_s or lease * 0.8, lease * 0.8)
        try:
            done = await asyncio.wait_for(handler(item), timeout=limit)
        except DeliveryError as exc:
            await self._failed(item, str(exc) or type(exc).__name__, retryable=exc.retryable,
                               retry_after=exc.retry_after, needs_reauth=isinstance(exc, NeedsReauth), stats=stats)
            return stats
        except TimeoutError:
            await self._failed(item, f"timed out after {limit:.1f} s", retryable=True, stats=stats)
            return stats
        except Exception as exc:  # noqa: BLE001 - an unexpected handler error is retried like a vendor error
            log.exception("outbox handler %s failed", item.action)
            await self._failed(item, f"{type(exc).__name__}: {exc}", retryable=True, stats=stats)
            return stats
        await self._delivered(item, done, stats)
        return stats

    async def _delivered(self, item: OutboxItem, done: Delivered, stats: DispatchStats) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "update outbox set status = 'delivered', delivered_at = now(), updated_at = now(), vendor_id = $3, "
                "result = $4::jsonb, last_error = null, locked_by = null, locked_until = null "
                "where id = $1 and locked_by = $2 and status = 'in_flight' "
                "returning extract(epoch from delivered_at - created_at) as delay_s",
                item.id, self.worker_id, done.vendor_id, json.dumps(done.result, default=str))
            if row is None:  # our lease ran out and another dispatcher owns the row now
                stats.lost_lease += 1
                log.warning("outbox row %s: lease lost before marking delivered", item.id)
                return
            if done.apply is not None:
                await done.apply(conn)
            await audit(conn, item.organization_id, actor=self.actor, action=item.action,
                        target_type=done.target_type or ("escalation" if item.case_id else "outbox"),
                        target_id=done.target_id or item.case_id or item.id,
                        details={"result": "delivered", "vendor_id": done.vendor_id, "attempts": item.attempts,
                                 "outbox_id": item.id, "idempotency_key": item.idempotency_key, **done.audit})
        stats.delivered += 1
        stats.delivery_delays_s.append(float(row["delay_s"]))

    async def _failed(self, item: OutboxItem, error: str, *, retryable: bool, stats: DispatchStats,
                      retry_after: float | None = None, needs_reauth: bool = False) -> None:
        dead = not retryable or item.attempts >= item.max_attempts
        delay = 0.0 if dead else self.backoff.delay(item.attempts, retry_after)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "update outbox set status = $3, last_error = $4, next_attempt_at = now() + make_interval(secs => $5), "
                "locked_by = null, locked_until = null, updated_at = now() "
                "where id = $1 and locked_by = $2 and status = 'in_flight' returning id",
                item.id, self.worker_id, "dead" if dead else "pending", error[:2000], delay)
            if row is None:
                stats.lost_lease += 1
                return
            if dead:
                await audit(conn, item.organization_id, actor=self.actor, action=item.action,
                            target_type="escalation" if item.case_id else "outbox", target_id=item.case_id or item.id,
                            details={"result": "dead", "error": error[:500], "attempts": item.attempts,
                                     "outbox_id": item.id, "needs_reauth": needs_reauth})
        if dead:
            stats.dead += 1
            log.warning("outbox row %s (%s) is dead after %d attempt(s): %s", item.id, item.action, item.attempts, error)
        else:
            stats.retried += 1
            log.info("outbox row %s (%s) attempt %d failed, next in %.1f s: %s", item.id, item.action,
                     item.attempts, delay, error)


async def audit(conn: Any, organization_id: str, *, actor: str, action: str, target_type: str | None,
                target_id: str | None, details: Mapping[str, Any]) -> None:
    """One ``audit_log`` row. Callers pass ids, statuses and vendor ids, never a secret."""
    await conn.execute(
        "insert into audit_log (organization_id, actor, action, target_type, target_id, details) "
        "values ($1, $2, $3, $4, $5, $6::jsonb)",
        organization_id, actor, action, target_type, target_id, json.dumps(dict(details), default=str))

