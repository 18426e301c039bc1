"""Salesforce over its REST API (httpx), with the refresh-token flow run by callwise itself.

Wire format (Salesforce REST API guide; ../shared/notes/vendors.md): the token endpoint answers
``access_token, instance_url, ...`` and **no ``expires_in``**, so a token is refreshed when a call gets
401 ``INVALID_SESSION_ID``; with rotation a new ``refresh_token`` comes back and the old one dies, so the
pair is handed to ``on_refresh`` (which must store it atomically) before it is used. Errors are a JSON
array ``[{"message", "errorCode", "fields"}]``; an org whose daily API allowance is spent answers 403
``REQUEST_LIMIT_EXCEEDED`` (no 429, no Retry-After): the client stops calling that org for
``limit_pause_s``. Every response carries ``Sforce-Limit-Info: api-usage=N/M``.

simple-salesforce is not used: it builds every URL as ``https://{instance}``, so it cannot reach a
local server, and in session mode it cannot refresh.

Idempotency, so an outbox retry never makes two records: a Task carries our call id in the standard
``CallObject`` field and a Case our case number at the head of its ``Subject``; both are looked up
before they are created.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote as urlquote

import httpx

from callwise.integrations.crm.soql import quote, quote_like
from callwise.integrations.crm.types import CallLog, CaseRequest, CRMError, Customer, FieldMap, pick_most_recent
from callwise.integrations.oauth_refresh import refresh_grant
from callwise.integrations.pauses import OrgPause
from callwise.integrations.phone import e164, national_digits, same_number

log = logging.getLogger("callwise.crm.salesforce")

API_VERSION = "v62.0"
DEFAULT_FIELDS = FieldMap(plan="Account.Type", lifetime_value="", company="Account.Name", owner="Owner.Name")
DESCRIPTION_LIMIT = 32_000  # Task/Case Description is a 32k long text area


@dataclass
class SalesforceTokens:
    access_token: str
    instance_url: str
    refresh_token: str | None = None


TokenSaver = Callable[[SalesforceTokens], Awaitable[None]]
TokenReload = Callable[[], Awaitable[SalesforceTokens | None]]  # the pair another process stored after ours was refused


def _errors(resp: httpx.Response) -> tuple[str, str]:
    """(errorCode, message) from Salesforce's error array (or the OAuth error object)."""
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:200]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", "")), str(body[0].get("message", ""))
    if isinstance(body, dict):
        return str(body.get("error", body.get("errorCode", ""))), str(body.get("error_description", body.get("message", "")))
    return "", str(body)[:200]


def _get(record: dict[str, Any], path: str) -> Any:
    """A field of a SOQL record, following relationship paths such as ``Account.Name``."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("+0000", "+00:00").replace("Z", "+00:00"))
    except ValueError:
        return None


class SalesforceCRM:
    provider = "salesforce"

    def __init__(self, tokens: SalesforceTokens, *, login_url: str = "https://login.salesforce.com",
                 client_id: str | None = None, client_secret: str | None = None,
                 on_refresh: TokenSaver | None = None, fields: FieldMap = DEFAULT_FIELDS,
                 external_id_field: str = "Callwise_Id__c", api_version: str = API_VERSION,
                 timeout_s: float = 10.0, limit_pause_s: float = 900.0, http: httpx.AsyncClient | None = None,
                 phone_region: str = "US", reload: TokenReload | None = None, pause: OrgPause | None = None) -> None:
        self.tokens = tokens
        self.pause = pause  # the org's pause in Postgres: every process honours REQUEST_LIMIT_EXCEEDED
        self.reload = reload
        self.phone_region = phone_region
        self.login_url = login_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.on_refresh = on_refresh
        self.fields = fields
        self.external_id_field = external_id_field
        self.api_version = api_version
        self.limit_pause_s = limit_pause_s
        self.blocked_until = 0.0
        self.api_usage: tuple[int, int] | None = None
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        self._own_http = http is None

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # ------------------------------------------------------------------ transport
    def _url(self, path: str) -> str:
        if path.startswith("/services/"):
            return self.tokens.instance_url.rstrip("/") + path
        return f"{self.tokens.instance_url.rstrip('/')}/services/data/{self.api_version}/{path.lstrip('/')}"

    async def refresh(self) -> None:
        if not (self.tokens.refresh_token and self.client_id):
            raise CRMError("Salesforce: the session expired and no refresh token is stored", status=401,
                           retryable=False, auth=True)
        try:
            got = await refresh_grant(self._http, f"{self.login_url}/services/oauth2/token",
                                      refresh_token=self.tokens.refresh_token, client_id=self.client_id,
                                      client_secret=self.client_secret, vendor="Salesforce")
        except CRMError as exc:  # refused: revoked, or rotated by another process a moment ago
            newer = await self.reload() if exc.auth and self.reload is not None else None
            if newer is None:
                raise
            self.tokens = newer
            return
        new = SalesforceTokens(access_token=got.access_token,
                               instance_url=str(got.body.get("instance_url") or self.tokens.instance_url),
                               refresh_token=got.refresh_token)
        if self.on_refresh is not None:
            await self.on_refresh(new)  # stored (atomically) before the old pair is dropped
        self.tokens = new

    async def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None,
                       retried: bool = False) -> httpx.Response:
        left = await self.pause.left() if self.pause is not None else None
        if left is None and time.monotonic() < self.blocked_until:
            left = self.blocked_until - time.monotonic()
        if left is not None:
            raise CRMError("Salesforce: the org's API limit is spent; not calling until it resets",
                           status=403, retry_after=left)
        try:
            resp = await self._http.request(method, self._url(path), json=json, params=params,
                                            headers={"Authorization": f"Bearer {self.tokens.access_token}"})
        except httpx.TimeoutException as exc:
            raise CRMError(f"Salesforce {method} {path.split('?')[0]}: timed out") from exc
        except httpx.HTTPError as exc:
            raise CRMError(f"Salesforce {method} {path.split('?')[0]}: {type(exc).__name__}") from exc
        if self._note_usage(resp) and self.pause is not None:
            await self.pause.set(self.limit_pause_s, "Salesforce API usage at its limit (Sforce-Limit-Info)")
        if resp.status_code == 401 and not retried:
            await self.refresh()
            return await self._request(method, path, json=json, params=params, retried=True)
        if resp.status_code >= 400:
            code, msg = _errors(resp)
            what = f"Salesforce {method} {path.split('?')[0]}: {resp.status_code} {code}"
            if code == "REQUEST_LIMIT_EXCEEDED":
                self.blocked_until = time.monotonic() + self.limit_pause_s
                if self.pause is not None:
                    await self.pause.set(self.limit_pause_s, "Salesforce REQUEST_LIMIT_EXCEEDED")
                raise CRMError(f"{what} (API limit spent; pausing this org)", status=resp.status_code,
                               retry_after=self.limit_pause_s)
            if resp.status_code == 401:
                raise CRMError(f"{what} {msg}", status=401, retryable=False, auth=True)
            raise CRMError(f"{what} {msg}".strip(), status=resp.status_code, retryable=resp.status_code >= 500)
        return resp

    def _note_usage(self, resp: httpx.Response) -> bool:
        """Reads ``Sforce-Limit-Info``; True when the org's API usage reached its limit (pause it)."""
        info = resp.headers.get("sforce-limit-info", "")
        if "api-usage=" in info:
            try:
                used, limit = info.split("api-usage=", 1)[1].split(",")[0].split("/")
                self.api_usage = (int(used), int(limit))
            except ValueError:
                return False
            if self.api_usage[0] >= self.api_usage[1]:
                self.blocked_until = time.monotonic() + self.limit_pause_s
                return True
        return False

    async def query(self, soql_text: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record of a SOQL query, following ``nextRecordsUrl`` pages (``queryAll`` with
        ``include_deleted``: deleted records too, with ``IsDeleted``)."""
        resp = await self._request("GET", "queryAll" if include_deleted else "query", params={"q": soql_text})
        body = resp.json()
        records = list(body.get("records", []))
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = (await self._request("GET", body["nextRecordsUrl"])).json()
            records.extend(body.get("records", []))
        return records

    # ------------------------------------------------------------------ CRM
    def _select(self) -> str:
        extra = {f for f in (self.fields.plan, self.fields.lifetime_value, self.fields.company, self.fields.owner) if f}
        cols = ["Id", "Name", "Email", "Phone", "MobilePhone", "CreatedDate", "LastModifiedDate", *sorted(extra)]
        return (f"SELECT {', '.join(dict.fromkeys(cols))}, "
                "(SELECT Id FROM Cases WHERE IsClosed = false) FROM Contact")

    def _customer(self, rec: dict[str, Any]) -> Customer:
        created = _parse_time(rec.get("CreatedDate"))
        ltv = _get(rec, self.fields.lifetime_value) if self.fields.lifetime_value else None
        cases = rec.get("Cases") or {}
        return Customer(
            provider=self.provider, external_id=str(rec["Id"]), name=rec.get("Name"), email=rec.get("Email"),
            phone=rec.get("Phone") or rec.get("MobilePhone"),
            company=_get(rec, self.fields.company) if self.fields.company else None,
            plan=_get(rec, self.fields.plan) if self.fields.plan else None,
            lifetime_value=float(ltv) if isinstance(ltv, int | float) else None,
            account_age_days=(datetime.now(UTC) - created).days if created else None,
            open_tickets=int(cases.get("totalSize", len(cases.get("records", [])))) if isinstance(cases, dict) else 0,
            owner=_get(rec, self.fields.owner) if self.fields.owner else None,
            updated_at=_parse_time(rec.get("LastModifiedDate")))

    async def find_customer(self, *, phone: str | None = None, email: str | None = None,
                            external_id: str | None = None) -> Customer | None:
        if external_id:
            where = f"Id = {quote(external_id)}"
        elif email:
            where = f"Email = {quote(email.strip())}"
        elif phone:
            # Phone fields hold numbers as people typed them; SOSL's IN PHONE FIELDS matches them whatever the
            # format. Search by the national digits, then keep the contacts whose number is the caller's (E.164).
            wanted, national = e164(phone, self.phone_region), national_digits(phone, self.phone_region)
            if wanted is None or national is None:
                return None
            resp = await self._request("GET", "search", params={
                "q": f"FIND {{{national}}} IN PHONE FIELDS RETURNING Contact(Id, Phone, MobilePhone LIMIT 50)"})
            ids = [str(r["Id"]) for r in resp.json().get("searchRecords", [])
                   if same_number(r.get("Phone"), wanted, self.phone_region)
                   or same_number(r.get("MobilePhone"), wanted, self.phone_region)]
            if not ids:
                return None
            where = f"Id IN ({', '.join(quote(i) for i in ids[:10])})"
        else:
            return None
        records = await self.query(f"{self._select()} WHERE {where} ORDER BY LastModifiedDate DESC LIMIT 10")
        best, ambiguous = pick_most_recent([self._customer(r) for r in records])
        if ambiguous:
            log.warning("several Salesforce contacts match; using the most recently modified",
                        extra={"matches": len(records), "chosen": best.external_id if best else None})
        return best

    async def upsert_contact(self, customer: Customer) -> str:
        first, _, last = (customer.name or "").rpartition(" ")
        body = {k: v for k, v in {"FirstName": first or None, "LastName": last or customer.name or "Unknown caller",
                                  "Email": customer.email, "Phone": customer.phone}.items() if v}
        path = f"sobjects/Contact/{self.external_id_field}/{urlquote(customer.external_id, safe='')}"
        resp = await self._request("PATCH", path, json=body)
        if resp.status_code == 300:
            raise CRMError(f"Salesforce upsert: external id {customer.external_id!r} matches several contacts",
                           status=300, retryable=False)
        if resp.status_code == 204:  # API v45.0 and older
            return customer.external_id
        return str(resp.json().get("id"))

    async def log_call(self, customer_id: str, call: CallLog) -> str:
        found = await self.query(f"SELECT Id FROM Task WHERE CallObject = {quote(call.call_id)} LIMIT 1")
        if found:
            return str(found[0]["Id"])
        resp = await self._request("POST", "sobjects/Task", json={
            "WhoId": customer_id, "Subject": call.title[:255], "Status": "Completed", "TaskSubtype": "Call",
            "CallType": "Inbound" if call.direction.upper() == "INBOUND" else "Outbound",
            "CallDurationInSeconds": int(round(call.duration_s)), "CallObject": call.call_id,
            "CallDisposition": call.status.title(), "ActivityDate": call.started_at.date().isoformat(),
            "Description": call.body[:DESCRIPTION_LIMIT]})
        return str(resp.json()["id"])

    async def open_case(self, customer_id: str | None, case: CaseRequest) -> str:
        head = f"[{case.case_id}]"
        found = await self.query(f"SELECT Id FROM Case WHERE Subject LIKE {quote_like(head)[:-1]}%' LIMIT 1")
        if found:
            return str(found[0]["Id"])
        body: dict[str, Any] = {"Subject": f"{head} {case.subject}"[:255], "Description": case.description[:DESCRIPTION_LIMIT],
                                "Status": "New", "Origin": "Phone",
                                "Priority": "High" if case.priority.upper() == "URGENT" else case.priority.title()}
        if customer_id:
            body["ContactId"] = customer_id
        resp = await self._request("POST", "sobjects/Case", json=body)
        return str(resp.json()["id"])

    async def changed_since(self, cursor: str | None, *,
                            limit: int = 2000) -> tuple[list[Customer], list[str], str | None]:
        """Contacts modified after ``cursor`` (a ``SystemModstamp``), oldest first: the changed ones, the ids
        of deleted ones, and the new cursor."""
        where = ""
        if cursor:
            since = _parse_time(cursor)
            if since is None:
                raise CRMError(f"Salesforce sync: bad cursor {cursor!r}", retryable=False)
            # a datetime literal is unquoted in SOQL: rebuild it from the parsed value, never splice the text
            where = f" WHERE SystemModstamp > {since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z"
        select = self._select().replace("FROM Contact", ", SystemModstamp, IsDeleted FROM Contact", 1)
        records = await self.query(f"{select}{where} ORDER BY SystemModstamp ASC LIMIT {int(limit)}",
                                   include_deleted=True)
        new_cursor = str(records[-1]["SystemModstamp"]) if records else cursor
        deleted = [str(r["Id"]) for r in records if r.get("IsDeleted")]
        return [self._customer(r) for r in records if not r.get("IsDeleted")], deleted, new_cursor
