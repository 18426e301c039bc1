"""OAuth 2 connect for the CRMs: the authorize URL with a signed, expiring, single-use ``state``,
and the code exchange on the callback.

``state`` is ``base64url(json{org, provider, nonce, exp}) . base64url(HMAC-SHA256(key, payload))``: the
callback trusts the organization named in it only when the signature holds and it has not expired;
single use is enforced by the caller recording the nonce (``callwise.integrations.webhooks.first_delivery``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

STATE_TTL_S = 600


class OAuthError(ValueError):
    """A refused connect: bad or expired state, or the vendor refused the code."""


@dataclass(frozen=True)
class OAuthApp:
    provider: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    redirect_uri: str
    scopes: tuple[str, ...]

    def authorize(self, state: str) -> str:
        return self.authorize_url + "?" + urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scopes), "state": state})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_state(key: bytes, *, organization_id: str, provider: str, ttl_s: float = STATE_TTL_S,
               now: float | None = None) -> str:
    payload = json.dumps({"org": organization_id, "provider": provider, "nonce": secrets.token_urlsafe(16),
                          "exp": int((now or time.time()) + ttl_s)}, separators=(",", ":")).encode()
    return _b64(payload) + "." + _b64(hmac.new(key, payload, hashlib.sha256).digest())


def verify_state(key: bytes, state: str, provider: str, *, now: float | None = None) -> dict[str, Any]:
    """The state's payload (org, provider, nonce, exp) if it is ours, for ``provider``, and unexpired."""
    try:
        body, sig = state.split(".", 1)
        payload = _unb64(body)
        good = hmac.compare_digest(_unb64(sig), hmac.new(key, payload, hashlib.sha256).digest())
        data = json.loads(payload) if good else None
    except (ValueError, TypeError):
        raise OAuthError("the state parameter is malformed") from None
    if not isinstance(data, dict):
        raise OAuthError("the state parameter is not signed by this callwise")
    if data.get("provider") != provider:
        raise OAuthError(f"the state was issued for {data.get('provider')}, not {provider}")
    if float(data.get("exp", 0)) < (now or time.time()):
        raise OAuthError("the connect link expired; run `callwise integrations connect` again")
    return data


async def exchange_code(app: OAuthApp, code: str, *, http: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """The token response for an authorization code (form-encoded, as HubSpot and Salesforce take it)."""
    client = http or httpx.AsyncClient(timeout=15.0)
    try:
        resp = await client.post(app.token_url, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
            "client_id": app.client_id, "client_secret": app.client_secret})
    except httpx.HTTPError as exc:
        raise OAuthError(f"{app.provider} token endpoint unreachable: {type(exc).__name__}") from exc
    finally:
        if http is None:
            await client.aclose()
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code >= 400 or "access_token" not in body:
        raise OAuthError(f"{app.provider} refused the code: {resp.status_code} {body.get('error', '')} "
                         f"{body.get('error_description', body.get('message', ''))}".strip())
    return dict(body)
