"""OAuth 2 connect for the CRMs: the authorize URL with a signed, expiring, single-use ``state``,
and the code exchange on the callback.

``state`` is a Fernet token (``cryptography``, as for the stored credentials) of ``json{org, provider,
nonce}``: authenticated and timestamped, read back with ``ttl`` so an old link is refused. The callback
trusts the organization named in it only when the token holds and has not expired; single use is enforced
by the caller recording the nonce (``callwise.integrations.webhooks.first_delivery``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.fernet import Fernet, InvalidToken

from callwise.integrations.oauth_refresh import post_token_request

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


def _fernet(key: bytes) -> Fernet:
    """Fernet from a 32-byte key (``callwise.wiring.crm.state_key``, derived from the encryption key)."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"callwise-oauth-state\x00" + key).digest()))


def _fernet_shaped(state: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(state.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    return len(raw) >= 57 and raw[0] == 0x80  # version byte, timestamp, IV, one block, HMAC


def sign_state(key: bytes, *, organization_id: str, provider: str, now: float | None = None) -> str:
    payload = json.dumps({"org": organization_id, "provider": provider, "nonce": secrets.token_urlsafe(16)},
                         separators=(",", ":")).encode()
    when = int(now if now is not None else time.time())
    return _fernet(key).encrypt_at_time(payload, when).decode()


def verify_state(key: bytes, state: str, provider: str, *, ttl_s: int = STATE_TTL_S,
                 now: float | None = None) -> dict[str, Any]:
    """The state's payload (org, provider, nonce) if it is ours, for ``provider``, and at most ``ttl_s`` old."""
    f, at = _fernet(key), int(now if now is not None else time.time())
    token = state.encode()
    try:
        payload = f.decrypt_at_time(token, ttl_s, at)
    except InvalidToken:
        try:  # ours but too old, or not ours at all?
            f.decrypt_at_time(token, 10 ** 9, at)
        except InvalidToken:
            if not _fernet_shaped(state):
                raise OAuthError("the state parameter is malformed") from None
            raise OAuthError("the state parameter is not signed by this callwise") from None
        raise OAuthError("the connect link expired; run `callwise integrations connect` again") from None
    try:
        data = json.loads(payload)
    except ValueError:
        raise OAuthError("the state parameter is malformed") from None
    if not isinstance(data, dict):
        raise OAuthError("the state parameter is malformed")
    if data.get("provider") != provider:
        raise OAuthError(f"the state was issued for {data.get('provider')}, not {provider}")
    return data


async def exchange_code(app: OAuthApp, code: str, *, http: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """The token response for an authorization code (form-encoded, as HubSpot and Salesforce take it)."""
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
             "client_id": app.client_id, "client_secret": app.client_secret}
    try:
        status, body = await post_token_request(http, app.token_url, grant, timeout_s=15.0)
    except httpx.HTTPError as exc:
        raise OAuthError(f"{app.provider} token endpoint unreachable: {type(exc).__name__}") from exc
    if status >= 400 or "access_token" not in body:
        raise OAuthError(f"{app.provider} refused the code: {status} {body.get('error', '')} "
                         f"{body.get('error_description', body.get('message', ''))}".strip())
    return dict(body)
