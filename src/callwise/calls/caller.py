"""The caller known before the first answer, and the call written back to the CRM after it.

At call start ``CallerService.start`` identifies the caller (SIP number, the app participant's
metadata, or ``callwise simulate --caller``) and looks them up in the org's CRM in the background:
it never delays the greeting, the first answer waits for it at most ``budget_s`` from call start, and
a lookup that misses the budget lands for the next turn. Customers are cached per (org, key) for
``cache_s``; a found customer is upserted into ``end_users`` by (org, provider, external id) and the
session is linked to it. A CRM that is down, slow or rate limited means "unknown caller", never a
failed or slower call.

At call end ``write_back`` queues the call engagement in the outbox in one transaction with nothing
else to wait for; the dispatcher delivers it (``integrations/crm/actions.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callwise.integrations.crm.actions import LOG_CALL, call_payload
from callwise.integrations.crm.types import CRM, CallLog, Customer, digits
from callwise.integrations.outbox import enqueue
from callwise.integrations.phone import e164
from callwise.routing.types import CustomerContext

log = logging.getLogger("callwise.caller")

CRMFactory = Callable[[str], Awaitable[CRM | None]]
TRANSCRIPT_LIMIT = 20_000  # what of a transcript goes into the CRM record; the full one stays in callwise
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class CallerId:
    phone: str | None = None
    email: str | None = None
    external_id: str | None = None

    @classmethod
    def parse(cls, value: str, region: str = "US") -> CallerId:
        """``--caller``: an email, a phone number (``+15550100100``, ``(555) 010-0100``: kept as E.164), else an
        external id."""
        value = value.strip()
        if _EMAIL.match(value):
            return cls(email=value.lower())
        if re.fullmatch(r"[+()\d\s.-]{5,}", value) and sum(ch.isdigit() for ch in value) >= 5:
            return cls(phone=e164(value, region) or digits(value))
        return cls(external_id=value)

    @classmethod
    def from_participant(cls, attributes: Mapping[str, str] | None, metadata: str | None,
                         region: str = "US") -> CallerId | None:
        """A SIP caller's ``sip.phoneNumber`` attribute (as E.164), else ``email``/``external_id`` in JSON metadata."""
        phone = (attributes or {}).get("sip.phoneNumber")
        if phone:
            return cls(phone=e164(phone, region) or digits(phone))
        try:
            meta = json.loads(metadata) if metadata else {}
        except ValueError:
            return None
        if not isinstance(meta, dict):
            return None
        if isinstance(meta.get("email"), str) and _EMAIL.match(meta["email"]):
            return cls(email=meta["email"].lower())
        if isinstance(meta.get("external_id"), str) and meta["external_id"].strip():
            return cls(external_id=meta["external_id"].strip())
        return None

    @property
    def key(self) -> str:
        return f"phone:{self.phone}" if self.phone else f"email:{self.email}" if self.email else f"id:{self.external_id}"


class CustomerCache:
    """Customers (and misses) per (org, caller key) for ``ttl_s``, in this process (tests, benches)."""

    def __init__(self, ttl_s: float = 600.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: dict[tuple[str, str], tuple[float, Customer | None]] = {}

    async def get(self, org: str, key: str) -> tuple[bool, Customer | None]:
        hit = self._items.get((org, key))
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    async def put(self, org: str, key: str, customer: Customer | None) -> None:
        if len(self._items) >= self.max_entries:
            self._items.pop(next(iter(self._items)))
        self._items[(org, key)] = (time.monotonic() + self.ttl_s, customer)


class PgCustomerCache:
    """The caller cache every process shares: a ``crm_cache`` row per (org, caller key) with its fetch time;
    a row older than ``ttl_s`` is a miss. ``customer`` null records "looked up, not in the CRM"."""

    def __init__(self, pool: Any, ttl_s: float = 600.0) -> None:
        self.pool = pool
        self.ttl_s = ttl_s

    async def get(self, org: str, key: str) -> tuple[bool, Customer | None]:
        row = await self.pool.fetchrow(
            "select customer from crm_cache where organization_id = $1 and caller_key = $2 "
            "and fetched_at > now() - make_interval(secs => $3)", org, key, float(self.ttl_s))
        if row is None:
            return False, None
        data = row["customer"]
        data = json.loads(data) if isinstance(data, str) else data
        return True, _customer_from(data) if data else None

    async def put(self, org: str, key: str, customer: Customer | None) -> None:
        await self.pool.execute(
            "insert into crm_cache (organization_id, caller_key, customer, fetched_at) values ($1, $2, $3::jsonb, now()) "
            "on conflict (organization_id, caller_key) do update set customer = excluded.customer, fetched_at = now()",
            org, key, json.dumps(customer.as_dict()) if customer else None)


def _customer_from(data: Mapping[str, Any]) -> Customer:
    fields = {k: v for k, v in data.items() if k in Customer.__dataclass_fields__}
    if fields.get("updated_at"):
        fields["updated_at"] = datetime.fromisoformat(str(fields["updated_at"]))
    return Customer(**fields)


def customer_context(customer: Customer) -> CustomerContext:
    fields = customer.prompt_fields()
    name, plan = fields.pop("name", None), fields.pop("plan", None)
    return CustomerContext(name=name, plan=plan, extra=fields)


@dataclass
class CallerLookup:
    """One call's lookup: a background task and the budget the first answer waits for it."""

    caller: CallerId
    task: asyncio.Task[Customer | None] | None
    started: float
    budget_s: float
    lookup_ms: float | None = None
    cache_hit: bool = False
    end_user_id: str | None = None
    error: str | None = None
    customer: Customer | None = field(default=None)

    async def within_budget(self) -> Customer | None:
        """The customer if the lookup finished within the budget (counted from call start); else None for now."""
        if self.task is not None and not self.task.done():
            remaining = self.budget_s - (time.monotonic() - self.started)
            if remaining > 0:
                await asyncio.wait({self.task}, timeout=remaining)
        return self.customer

    def as_dict(self) -> dict[str, Any]:
        return {"caller": self.caller.key, "known": self.customer is not None,
                "customer": self.customer.as_dict() if self.customer else None, "lookup_ms": self.lookup_ms,
                "cache_hit": self.cache_hit, "end_user_id": self.end_user_id, "error": self.error}


class CallerService:
    def __init__(self, pool: Any, crm_factory: CRMFactory, *, budget_s: float = 0.3, timeout_s: float = 5.0,
                 cache: CustomerCache | PgCustomerCache | None = None, region: str = "US") -> None:
        self.pool = pool
        self.region = region  # numbers without a country code (CALLWISE_DEFAULT_PHONE_REGION)
        self.crm_factory = crm_factory
        self.budget_s = budget_s
        self.timeout_s = timeout_s
        self.cache = cache or CustomerCache()

    def start(self, organization_id: str, session_id: str | None, caller: CallerId) -> CallerLookup:
        if caller.phone:  # one key per caller however the number was written: the cache row and the CRM search
            caller = CallerId(phone=e164(caller.phone, self.region) or caller.phone, email=caller.email,
                              external_id=caller.external_id)
        lookup = CallerLookup(caller=caller, task=None, started=time.monotonic(), budget_s=self.budget_s)
        lookup.task = asyncio.create_task(self._run(organization_id, session_id, lookup), name="crm-lookup")
        return lookup

    async def _run(self, org: str, session_id: str | None, lookup: CallerLookup) -> Customer | None:
        t0 = time.perf_counter()
        try:
            hit, customer = await self.cache.get(org, lookup.caller.key)
        except Exception as exc:  # noqa: BLE001 - a cache that cannot be read is a miss
            log.warning("caller cache unreadable", extra={"error": str(exc)[:200]})
            hit, customer = False, None
        lookup.cache_hit = hit
        if not hit:
            try:
                customer = await asyncio.wait_for(self._find(org, lookup.caller), self.timeout_s)
                await self.cache.put(org, lookup.caller.key, customer)
            except Exception as exc:  # a CRM problem is an unknown caller, never a failed call
                lookup.error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("CRM lookup failed; treating the caller as unknown", extra={"error": lookup.error})
                customer = None
        lookup.lookup_ms = round((time.perf_counter() - t0) * 1000, 1)
        lookup.customer = customer
        if customer is not None:
            try:
                lookup.end_user_id = await upsert_end_user(self.pool, org, customer, session_id=session_id,
                                                           region=self.region)
            except Exception as exc:  # the session goes on unlinked; the next call links it
                log.warning("end_users upsert failed", extra={"error": str(exc)[:200]})
        return customer

    async def _find(self, org: str, caller: CallerId) -> Customer | None:
        crm = await self.crm_factory(org)
        if crm is None:
            return None
        try:
            return await crm.find_customer(phone=caller.phone, email=caller.email, external_id=caller.external_id)
        finally:
            await crm.aclose()


async def upsert_end_user(pool: Any, organization_id: str, customer: Customer, *, session_id: str | None,
                          region: str = "US") -> str:
    """The CRM's contact fields into ``end_users`` (the CRM is their system of record, the phone as E.164);
    links the session."""
    phone = (e164(customer.phone, region) or customer.phone) if customer.phone else None
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "insert into end_users (organization_id, provider, external_id, email, phone, full_name, company, "
            "metadata, crm_updated_at, unlinked_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, null, now()) "
            "on conflict (organization_id, provider, external_id) do update set email = excluded.email, "
            "phone = excluded.phone, full_name = excluded.full_name, company = excluded.company, "
            "metadata = excluded.metadata, crm_updated_at = excluded.crm_updated_at, unlinked_at = null, "
            "updated_at = now() returning id",
            organization_id, customer.provider, customer.external_id, customer.email, phone, customer.name,
            customer.company, json.dumps({k: v for k, v in customer.as_dict().items()
                                          if k in ("plan", "lifetime_value", "account_age_days", "open_tickets", "owner")}),
            customer.updated_at)
        end_user_id = str(row["id"])
        if session_id:
            await conn.execute("update sessions set end_user_id = $3 where organization_id = $1 and id = $2",
                               organization_id, session_id, end_user_id)
    return end_user_id


def call_record(*, session_id: str, started_at: datetime, duration_s: float, summary: str,
                transcript: list[tuple[str, str]], escalation: str | None, link: str | None) -> CallLog:
    """What the CRM gets: the summary first, then as much transcript as fits, cut with a note."""
    lines = [f"{who}: {text}" for who, text in transcript]
    head = [f"Summary: {summary}"] if summary else []
    if escalation:
        head.append(f"Escalated: {escalation}")
    body = "\n".join([*head, "", "Transcript:", *lines])
    if len(body) > TRANSCRIPT_LIMIT:
        note = f"\n[transcript cut at {TRANSCRIPT_LIMIT} characters; full transcript in callwise"
        note += f": {link}]" if link else f", session {session_id}]"
        body = body[: TRANSCRIPT_LIMIT - len(note)] + note
    return CallLog(call_id=session_id, started_at=started_at, duration_s=duration_s,
                   title="Support call" + (" (escalated)" if escalation else ""), body=body)


async def write_back(pool: Any, organization_id: str, lookup: CallerLookup, call: CallLog) -> str | None:
    """Queue the call engagement for the caller's CRM contact (nothing for an unknown caller)."""
    if lookup.customer is None:
        return None
    async with pool.acquire() as conn:
        return await enqueue(conn, organization_id=organization_id, action=LOG_CALL,
                             payload=call_payload(provider=lookup.customer.provider,
                                                  customer_id=lookup.customer.external_id, call=call),
                             idempotency_key=f"crm-call:{call.call_id}", session_id=call.call_id)
