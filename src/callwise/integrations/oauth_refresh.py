"""The one OAuth refresh-token grant for HubSpot, Salesforce and Zendesk, and its safe storage.

:func:`refresh_grant` posts ``grant_type=refresh_token`` (form-encoded for HubSpot and Salesforce, JSON for
Zendesk) and reads the token response; a refused grant (``invalid_grant``, ``invalid_client``) is a
:class:`VendorError` with ``auth=True``.

:class:`StoredTokens` keeps two processes that refresh one org's token at the same time from hurting each
other. A vendor that rotates refresh tokens (Zendesk always, Salesforce with rotation on) accepts only the
first refresh; the second gets ``invalid_grant``. The winner stores its pair with a compare-and-set on the
row's ``version``; the loser does not conclude "revoked" from its ``invalid_grant``: it re-reads the row and,
when a newer pair was stored meanwhile, carries on with it. Only a refusal of the pair that is still the
stored one marks the integration ``needs_reauth``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from callwise.integrations.credentials import Credential, CredentialStore
from callwise.integrations.errors import VendorError

log = logging.getLogger("callwise.oauth")

_REFUSED = ("invalid_grant", "invalid_client", "unauthorized_client")


@dataclass(frozen=True)
class Refreshed:
    access_token: str
    refresh_token: str | None  # the new one when the vendor rotates, else the one we sent
    expires_at: datetime | None
    body: dict[str, Any] = field(default_factory=dict)  # the whole token response (Salesforce's instance_url)


async def post_token_request(http: httpx.AsyncClient | None, token_url: str, grant: dict[str, Any], *,
                             json_body: bool = False, timeout_s: float = 10.0) -> tuple[int, dict[str, Any]]:
    """POST a grant to a token endpoint: the HTTP status and the JSON body (``{}`` when it is not a JSON object).

    ``httpx.HTTPError`` (unreachable, timed out) propagates for the caller to name in its own error."""
    client = http or httpx.AsyncClient(timeout=timeout_s)
    try:
        resp = await (client.post(token_url, json=grant, timeout=timeout_s) if json_body
                      else client.post(token_url, data=grant, timeout=timeout_s))
    finally:
        if http is None:
            await client.aclose()
    try:
        body = resp.json()
    except ValueError:
        body = {}
    return resp.status_code, body if isinstance(body, dict) else {}


async def refresh_grant(http: httpx.AsyncClient | None, token_url: str, *, refresh_token: str, client_id: str,
                        client_secret: str | None, json_body: bool = False, vendor: str = "OAuth",
                        timeout_s: float = 10.0) -> Refreshed:
    """A new access token for ``refresh_token``; VendorError (``auth`` when the grant is refused)."""
    grant = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
             "client_secret": client_secret or ""}
    try:
        status, body = await post_token_request(http, token_url, grant, json_body=json_body, timeout_s=timeout_s)
    except httpx.HTTPError as exc:
        raise VendorError(f"{vendor} token refresh: unreachable ({type(exc).__name__})") from exc
    if status >= 400 or "access_token" not in body:
        code = str(body.get("error") or body.get("status") or "")
        auth = code in _REFUSED or status in (401, 403)
        raise VendorError(f"{vendor} token refresh refused ({status}): {code}".strip(), auth=auth,
                          retryable=not auth and (status >= 500 or status == 429), status=status)
    expires_in = body.get("expires_in")
    try:
        expires_at = datetime.now(UTC) + timedelta(seconds=float(expires_in)) if expires_in else None
    except (TypeError, ValueError):
        expires_at = None
    return Refreshed(access_token=str(body["access_token"]),
                     refresh_token=str(body.get("refresh_token") or refresh_token), expires_at=expires_at, body=body)


class StoredTokens:
    """One org's stored token row for a client's refresh: compare-and-set saves, and the loser's re-read."""

    def __init__(self, creds: CredentialStore, organization_id: str, provider: str, version: int, *,
                 settle_s: float = 3.0, poll_s: float = 0.1) -> None:
        self.creds = creds
        self.organization_id = organization_id
        self.provider = provider
        self.version = version
        self.settle_s = settle_s
        self.poll_s = poll_s

    async def save(self, refreshed: Refreshed) -> bool:
        """Store our refreshed pair unless another process stored one first (then ours is kept in memory only)."""
        ok = await self.creds.rotate(self.organization_id, self.provider, expected_version=self.version,
                                     access_token=refreshed.access_token, refresh_token=refreshed.refresh_token,
                                     expires_at=refreshed.expires_at)
        if ok:
            self.version += 1
        else:
            log.info("token refreshed by another process first; ours is used for this request only",
                     extra={"provider": self.provider})
        return ok

    async def newer(self) -> Credential | None:
        """After our refresh was refused: the pair another process stored meanwhile, waiting up to ``settle_s``
        for a refresh in flight elsewhere to be written; None when the stored pair is still the refused one."""
        deadline = time.monotonic() + self.settle_s
        while True:
            cred = await self.creds.get(self.organization_id, self.provider)
            if cred is not None and cred.version != self.version and cred.status == "active":
                self.version = cred.version
                return cred
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(self.poll_s)
