"""Zendesk tickets over the REST API with OAuth access tokens that refresh (and rotate).

Wire format (developer.zendesk.com): ``POST /api/v2/tickets.json`` with ``{"ticket": {...}}`` -> 201
``{"ticket": {"id", ...}, "audit": {...}}``; ``GET /api/v2/tickets.json?external_id=X`` lists tickets by our
id, which is how a retry finds the ticket an earlier attempt already created (so a crash between create and
mark never makes two). 429 carries ``Retry-After`` (seconds); 422 is ``{"error": "RecordInvalid",
"description", "details": {field: [{description}]}}``. OAuth: ``POST /oauth/tokens`` with a JSON body
``grant_type=refresh_token``; the answer carries a new access token *and a new refresh token*, and the old
pair dies, so the new pair is stored atomically (:meth:`CredentialStore.rotate`). API tokens are being
retired by Zendesk (vendors.md), so only OAuth bearer tokens are supported. zenpy is GPLv3; plain httpx.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from callwise.integrations.errors import VendorError
from callwise.integrations.oauth_refresh import refresh_grant
from callwise.integrations.priority import case_priority

ZendeskError = VendorError  # one error type for every vendor (callwise.integrations.errors)


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None


TokenSaver = Callable[[TokenPair], Awaitable[None]]
TokenReload = Callable[[], Awaitable[TokenPair | None]]  # the pair another process stored after ours was refused


def base_url_for(subdomain: str, override: str | None) -> str:
    return (override or f"https://{subdomain}.zendesk.com").rstrip("/")


def _error(resp: httpx.Response, what: str) -> ZendeskError:
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if status == 429:
        try:
            after = float(resp.headers.get("retry-after", ""))
        except ValueError:
            after = None
        return ZendeskError(f"Zendesk {what}: rate limited (429)", retry_after=after, status=status)
    if status == 422:
        details = body.get("details") or {}
        fields = "; ".join(f"{k}: {', '.join(str(d.get('description', d)) for d in v)}" for k, v in details.items()
                           if isinstance(v, list))
        return ZendeskError(f"Zendesk {what}: {body.get('error', 'RecordInvalid')} - "
                            f"{body.get('description', '')}{' (' + fields + ')' if fields else ''}",
                            retryable=False, status=status)
    if status in (401, 403):
        return ZendeskError(f"Zendesk {what}: {status} {body.get('error', '')}".strip(), retryable=False, auth=True,
                            status=status)
    if status >= 500:
        return ZendeskError(f"Zendesk {what}: {status}", status=status)
    return ZendeskError(f"Zendesk {what}: {status} {str(body)[:200]}", retryable=False, status=status)


class ZendeskClient:
    """One org's Zendesk. ``on_refresh`` stores a rotated token pair (it must be atomic)."""

    def __init__(self, base_url: str, tokens: TokenPair, *, client_id: str | None = None,
                 client_secret: str | None = None, on_refresh: TokenSaver | None = None, timeout_s: float = 10.0,
                 http: httpx.AsyncClient | None = None, reload: TokenReload | None = None) -> None:
        self.reload = reload
        self.http = http  # a shared client (connection pool); one per call when None
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.client_id = client_id
        self.client_secret = client_secret
        self.on_refresh = on_refresh
        self.timeout_s = timeout_s

    async def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        if self.tokens.expires_at and self.tokens.expires_at <= datetime.now(UTC) + timedelta(seconds=30):
            await self.refresh()
        for attempt in (1, 2):
            try:
                resp = await self._send(method, path, headers={
                    "Authorization": f"Bearer {self.tokens.access_token}", "Accept": "application/json"}, **kwargs)
            except httpx.HTTPError as exc:
                raise ZendeskError(f"Zendesk {what}: unreachable ({type(exc).__name__})") from exc
            if resp.status_code == 401 and attempt == 1 and self.tokens.refresh_token:
                await self.refresh()
                continue
            return resp
        return resp

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.http is not None:
            return await self.http.request(method, self.base_url + path, timeout=self.timeout_s, **kwargs)
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            return await client.request(method, self.base_url + path, **kwargs)

    async def refresh(self) -> TokenPair:
        if not (self.tokens.refresh_token and self.client_id and self.client_secret):
            raise ZendeskError("Zendesk token expired and no refresh token / client credentials are stored",
                               retryable=False, auth=True)
        try:
            got = await refresh_grant(self.http, self.base_url + "/oauth/tokens", refresh_token=self.tokens.refresh_token,
                                      client_id=self.client_id, client_secret=self.client_secret, json_body=True,
                                      vendor="Zendesk", timeout_s=self.timeout_s)
        except ZendeskError as exc:  # invalid_grant: revoked, or rotated by another process a moment ago
            newer = await self.reload() if exc.auth and self.reload is not None else None
            if newer is None:
                raise
            self.tokens = newer
            return newer
        pair = TokenPair(access_token=got.access_token, refresh_token=got.refresh_token, expires_at=got.expires_at)
        if self.on_refresh is not None:
            await self.on_refresh(pair)
        self.tokens = pair
        return pair

    async def find_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        resp = await self._request("GET", "/api/v2/tickets.json", params={"external_id": external_id},
                                   what="ticket lookup")
        if resp.status_code != 200:
            raise _error(resp, "ticket lookup")
        tickets = resp.json().get("tickets") or []
        return tickets[0] if tickets else None

    async def create_ticket(self, ticket: dict[str, Any]) -> dict[str, Any]:
        """Create ``ticket`` unless one with its ``external_id`` exists; returns the ticket and whether it was new."""
        existing = await self.find_by_external_id(ticket["external_id"])
        if existing is not None:
            return {**existing, "_created": False}
        resp = await self._request("POST", "/api/v2/tickets.json", json={"ticket": ticket}, what="ticket create")
        if resp.status_code != 201:
            raise _error(resp, "ticket create")
        return {**resp.json()["ticket"], "_created": True}


def _safe_json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}




def ticket_for_case(payload: dict[str, Any], transcript: list[dict[str, Any]]) -> dict[str, Any]:
    """The ticket body for a case: requester from the caller, a private comment with the transcript, the reason
    and the matched words, tags, priority from the reason, ``external_id`` = the case id."""
    customer = payload.get("customer") or {}
    reason = payload.get("reason", "explicit_request")
    lines = [f"callwise {payload.get('case', '')}: escalated for {reason} ({payload.get('rule', '')}).",
             "Matched words: " + (", ".join(f'"{m}"' for m in payload.get("matched") or []) or "-"),
             f"Handoff: {payload.get('handoff', '')}", "", "Transcript:"]
    lines += [f"{t.get('speaker', t.get('role', ''))}: {t.get('text', '')}" for t in transcript] or ["(none stored)"]
    ticket: dict[str, Any] = {
        "subject": f"[{payload.get('case', '')}] {reason.replace('_', ' ')} from a support call",
        "comment": {"body": "\n".join(lines)[:60000], "public": False},
        "priority": case_priority(reason),
        "tags": ["callwise", f"callwise_{reason}", f"callwise_{payload.get('handoff', 'callback')}"],
        "external_id": payload["case_id"],
    }
    if customer.get("email"):
        ticket["requester"] = {"name": customer.get("name") or customer["email"], "email": customer["email"]}
    return ticket
