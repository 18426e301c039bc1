"""HubSpot through the official ``hubspot-api-client`` (sync; called in a worker thread).

Wire format (developers.hubspot.com; ../shared/notes/vendors.md): contacts are found with
``POST /crm/v3/objects/contacts/search``, written with ``batch/upsert`` keyed by ``idProperty=email``
(200, or 207 with ``errors[]`` on a partial failure); a call engagement is ``POST /crm/v3/objects/calls``
associated to the contact with type 194, a ticket ``POST /crm/v3/objects/tickets`` associated with type 16.
A 429 names its ``policyName``: ``SECONDLY`` is worth a retry after the interval, ``DAILY`` is not until
tomorrow (the client stops calling for ``daily_pause_s``). ``host=`` points the SDK at a sandbox or a
local server (``CALLWISE_HUBSPOT_BASE_URL``).

Tokens: a private-app access token (no refresh), or OAuth tokens refreshed ahead of ``expires_in``
(``refresh`` below); a rotated refresh token is handed to ``on_refresh`` before it is used.

Idempotency, so an outbox retry never makes two engagements: a call's title and a ticket's subject start
with our id (``[callwise <id>]``, ``[CW-1042]``) and are searched before they are created. HubSpot's search
index lags writes by a few seconds, so two attempts inside that window could still both create; the
outbox's lease is longer than that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hubspot import HubSpot  # type: ignore[import-untyped]

from callwise.integrations.crm.types import CallLog, CaseRequest, CRMError, Customer, FieldMap, pick_most_recent
from callwise.integrations.oauth_refresh import refresh_grant
from callwise.integrations.pauses import OrgPause
from callwise.integrations.phone import e164, national_digits, same_number

log = logging.getLogger("callwise.crm.hubspot")

DEFAULT_FIELDS = FieldMap(plan="", lifetime_value="total_revenue", company="company", owner="hubspot_owner_id")
CALL_TO_CONTACT = 194
TICKET_TO_CONTACT = 16
BODY_LIMIT = 65_536
TOKEN_PATH = "/oauth/v1/token"  # deprecated 2027-02-16 for /oauth/2026-03/token: a setting (token_path)


@dataclass
class HubSpotTokens:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # epoch seconds; None for a private-app token


TokenSaver = Callable[[HubSpotTokens], Awaitable[None]]
TokenReload = Callable[[], Awaitable[HubSpotTokens | None]]  # the pair another process stored after ours was refused


def _error(exc: Exception, what: str) -> CRMError:
    status = getattr(exc, "status", None)
    if status is None:  # urllib3 connection errors surface as themselves
        return CRMError(f"HubSpot {what}: {type(exc).__name__}")
    try:
        body = json.loads(getattr(exc, "body", None) or b"{}")
    except ValueError:
        body = {}
    headers = {k.lower(): v for k, v in dict(getattr(exc, "headers", None) or {}).items()}
    msg = str(body.get("message", ""))[:200] if isinstance(body, dict) else ""
    if status == 429:
        policy = body.get("policyName", "") if isinstance(body, dict) else ""
        if policy == "DAILY":
            return CRMError(f"HubSpot {what}: daily rate limit reached", status=429, retry_after=3600.0)
        try:
            interval = float(headers.get("x-hubspot-ratelimit-interval-milliseconds", "1000")) / 1000
        except ValueError:
            interval = 1.0
        return CRMError(f"HubSpot {what}: rate limited ({policy or 'SECONDLY'})", status=429, retry_after=interval)
    if status == 401:
        return CRMError(f"HubSpot {what}: 401 {msg}".strip(), status=401, retryable=False, auth=True)
    return CRMError(f"HubSpot {what}: {status} {msg}".strip(), status=status, retryable=status >= 500)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class HubSpotCRM:
    provider = "hubspot"

    def __init__(self, tokens: HubSpotTokens, *, base_url: str = "https://api.hubapi.com",
                 client_id: str | None = None, client_secret: str | None = None, on_refresh: TokenSaver | None = None,
                 fields: FieldMap = DEFAULT_FIELDS, token_path: str = TOKEN_PATH, daily_pause_s: float = 3600.0,
                 refresh_margin_s: float = 300.0, timeout_s: float = 10.0, phone_region: str = "US",
                 reload: TokenReload | None = None, pause: OrgPause | None = None) -> None:
        self.tokens = tokens
        self.pause = pause  # the org's pause in Postgres: every process honours a DAILY limit
        self.reload = reload
        self.phone_region = phone_region
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.on_refresh = on_refresh
        self.fields = fields
        self.token_path = token_path
        self.daily_pause_s = daily_pause_s
        self.refresh_margin_s = refresh_margin_s
        self.timeout_s = timeout_s
        self.blocked_until = 0.0
        self._client = self._sdk()
        self._refresh_lock = asyncio.Lock()

    def _sdk(self) -> Any:
        return HubSpot(access_token=self.tokens.access_token, host=self.base_url)

    async def aclose(self) -> None:
        return None

    # ------------------------------------------------------------------ tokens
    async def refresh(self) -> None:
        if not (self.tokens.refresh_token and self.client_id):
            raise CRMError("HubSpot: the access token expired and no refresh token is stored", status=401,
                           retryable=False, auth=True)
        try:
            got = await refresh_grant(None, self.base_url + self.token_path, refresh_token=self.tokens.refresh_token,
                                      client_id=self.client_id, client_secret=self.client_secret, vendor="HubSpot",
                                      timeout_s=self.timeout_s)
        except CRMError as exc:  # refused: revoked, or rotated by another process a moment ago
            newer = await self.reload() if exc.auth and self.reload is not None else None
            if newer is None:
                raise
            self.tokens = newer
            self._client = self._sdk()
            return
        new = HubSpotTokens(access_token=got.access_token, refresh_token=got.refresh_token,
                            expires_at=got.expires_at.timestamp() if got.expires_at else None)
        if self.on_refresh is not None:
            await self.on_refresh(new)
        self.tokens = new
        self._client = self._sdk()

    async def _fresh(self) -> None:
        """Refresh ahead of expiry (HubSpot gives ``expires_in``), once for concurrent callers."""
        if self.tokens.expires_at is None or time.time() < self.tokens.expires_at - self.refresh_margin_s:
            return
        async with self._refresh_lock:
            if self.tokens.expires_at is not None and time.time() >= self.tokens.expires_at - self.refresh_margin_s:
                await self.refresh()

    async def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        left = await self.pause.left() if self.pause is not None else None
        if left is None and time.monotonic() < self.blocked_until:
            left = self.blocked_until - time.monotonic()
        if left is not None:
            raise CRMError(f"HubSpot {what}: daily rate limit reached; not calling until it resets", status=429,
                           retry_after=left)
        await self._fresh()
        for attempt in (1, 2):
            client = self._client
            try:
                return await asyncio.wait_for(asyncio.to_thread(fn, client), self.timeout_s)
            except TimeoutError as exc:
                raise CRMError(f"HubSpot {what}: timed out") from exc
            except Exception as exc:  # the SDK raises one ApiException class per API module
                err = _error(exc, what)
                if err.auth and attempt == 1 and self.tokens.refresh_token:
                    await self.refresh()
                    continue
                if err.status == 429 and err.retry_after and err.retry_after >= 60:
                    self.blocked_until = time.monotonic() + self.daily_pause_s
                    if self.pause is not None:
                        await self.pause.set(self.daily_pause_s, f"HubSpot DAILY rate limit ({what})")
                raise err from exc
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ CRM
    def _properties(self) -> list[str]:
        extra = [f for f in (self.fields.plan, self.fields.lifetime_value, self.fields.company, self.fields.owner) if f]
        return list(dict.fromkeys(["firstname", "lastname", "email", "phone", "mobilephone", "createdate",
                                   "lastmodifieddate", *extra]))

    def _customer(self, obj: Any) -> Customer:
        p = obj.properties or {}
        created = _time(p.get("createdate")) or _time(getattr(obj, "created_at", None))
        name = " ".join(x for x in (p.get("firstname"), p.get("lastname")) if x) or None
        return Customer(
            provider=self.provider, external_id=str(obj.id), name=name, email=p.get("email"),
            phone=p.get("phone") or p.get("mobilephone"),
            company=p.get(self.fields.company) if self.fields.company else None,
            plan=p.get(self.fields.plan) if self.fields.plan else None,
            lifetime_value=_number(p.get(self.fields.lifetime_value)) if self.fields.lifetime_value else None,
            account_age_days=(datetime.now(UTC) - created).days if created else None,
            owner=p.get(self.fields.owner) if self.fields.owner else None,
            updated_at=_time(p.get("lastmodifieddate")) or _time(getattr(obj, "updated_at", None)))

    async def find_customer(self, *, phone: str | None = None, email: str | None = None,
                            external_id: str | None = None) -> Customer | None:
        from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest  # type: ignore[import-untyped]

        if external_id:
            groups = [FilterGroup(filters=[Filter(property_name="hs_object_id", operator="EQ", value=external_id)])]
        elif email:
            groups = [FilterGroup(filters=[Filter(property_name="email", operator="EQ", value=email.strip())])]
        elif phone:
            # HubSpot keeps each contact's number as typed in ``phone``/``mobilephone`` and, searchable, its national
            # digits in the calculated ``hs_searchable_calculated_phone_number``/``..._mobile_number``: search those,
            # then keep only the contacts whose number is really the caller's (same E.164)
            wanted = e164(phone, self.phone_region)
            national = national_digits(phone, self.phone_region)
            if wanted is None or national is None:
                return None
            groups = [FilterGroup(filters=[Filter(property_name=prop, operator="EQ", value=national)])
                      for prop in ("hs_searchable_calculated_phone_number", "hs_searchable_calculated_mobile_number")]
            groups += [FilterGroup(filters=[Filter(property_name=prop, operator="EQ", value=wanted)])
                       for prop in ("phone", "mobilephone")]
        else:
            return None
        request = PublicObjectSearchRequest(filter_groups=groups, properties=self._properties(), limit=10,
                                            sorts=["-lastmodifieddate"])
        page = await self._call("contact search", lambda c: c.crm.contacts.search_api.do_search(request))
        results = page.results or []
        if phone and not (external_id or email):
            results = [r for r in results if any(same_number((r.properties or {}).get(p), wanted, self.phone_region)
                                                 for p in ("phone", "mobilephone"))]
        best, ambiguous = pick_most_recent([self._customer(r) for r in results])
        if ambiguous:
            log.warning("several HubSpot contacts match; using the most recently modified",
                        extra={"matches": len(page.results), "chosen": best.external_id if best else None})
        return best

    async def upsert_contact(self, customer: Customer) -> str:
        from hubspot.crm.contacts import (  # type: ignore[import-untyped]
            BatchInputSimplePublicObjectBatchInputUpsert,
            SimplePublicObjectBatchInputUpsert,
        )

        if not customer.email:
            raise CRMError("HubSpot upsert: a contact needs an email (the unique idProperty)", retryable=False)
        first, _, last = (customer.name or "").rpartition(" ")
        props = {k: v for k, v in {"email": customer.email, "firstname": first or None, "lastname": last or None,
                                   "phone": customer.phone}.items() if v}
        batch = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[SimplePublicObjectBatchInputUpsert(
            id_property="email", id=customer.email, properties=props)])
        result = await self._call("contact upsert", lambda c: c.crm.contacts.batch_api.upsert(batch))
        errors = getattr(result, "errors", None) or []
        if errors:
            raise CRMError(f"HubSpot upsert: {getattr(errors[0], 'message', errors[0])}", status=207, retryable=False)
        return str(result.results[0].id)

    async def _search_one(self, kind: str, prop: str, head: str) -> str | None:
        from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest  # type: ignore[import-untyped]

        request = PublicObjectSearchRequest(filter_groups=[FilterGroup(filters=[
            Filter(property_name=prop, operator="CONTAINS_TOKEN", value=head)])], properties=[prop], limit=10)
        page = await self._call(f"{kind} search",
                                lambda c: c.crm.objects.search_api.do_search(object_type=kind,
                                                                           public_object_search_request=request))
        for obj in page.results or []:
            if str((obj.properties or {}).get(prop, "")).startswith(head):
                return str(obj.id)
        return None

    async def log_call(self, customer_id: str, call: CallLog) -> str:
        from hubspot.crm.objects.calls import (  # type: ignore[import-untyped]
            AssociationSpec,
            PublicAssociationsForObject,
            PublicObjectId,
            SimplePublicObjectInputForCreate,
        )

        head = f"[callwise {call.call_id}]"
        existing = await self._search_one("calls", "hs_call_title", head)
        if existing:
            return existing
        body = SimplePublicObjectInputForCreate(properties={
            "hs_timestamp": call.started_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "hs_call_title": f"{head} {call.title}"[:255], "hs_call_body": call.body[:BODY_LIMIT],
            "hs_call_direction": call.direction, "hs_call_duration": str(int(call.duration_s * 1000)),
            "hs_call_status": call.status},
            associations=[PublicAssociationsForObject(to=PublicObjectId(id=customer_id), types=[
                AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=CALL_TO_CONTACT)])])
        created = await self._call("call create", lambda c: c.crm.objects.calls.basic_api.create(body))
        return str(created.id)

    async def open_case(self, customer_id: str | None, case: CaseRequest) -> str:
        from hubspot.crm.tickets import (  # type: ignore[import-untyped]
            AssociationSpec,
            PublicAssociationsForObject,
            PublicObjectId,
            SimplePublicObjectInputForCreate,
        )

        head = f"[{case.case_id}]"
        existing = await self._search_one("tickets", "subject", head)
        if existing:
            return existing
        assoc = [PublicAssociationsForObject(to=PublicObjectId(id=customer_id), types=[
            AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=TICKET_TO_CONTACT)])] \
            if customer_id else None
        body = SimplePublicObjectInputForCreate(properties={
            "subject": f"{head} {case.subject}"[:255], "content": case.description[:BODY_LIMIT],
            "hs_pipeline": str(case.extra.get("pipeline", "0")), "hs_pipeline_stage": str(case.extra.get("stage", "1")),
            "hs_ticket_priority": case.priority.upper()}, associations=assoc)
        created = await self._call("ticket create", lambda c: c.crm.tickets.basic_api.create(body))
        return str(created.id)
