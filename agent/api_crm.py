"""CRM routes on ``callwise serve``: HubSpot's contact webhook and the OAuth connect callback.

* ``POST /v1/webhooks/hubspot``: HubSpot v3 signature (HMAC-SHA256 with the app's client secret over
  method + URL + body + timestamp, 5-minute window), each event once (replay guard), events grouped by
  ``portalId`` -> the org whose HubSpot credentials carry that ``portal_id``.
* ``GET /v1/oauth/{provider}/callback?code=&state=``: the signed, expiring, single-use ``state`` names
  the org; the code is exchanged and the tokens stored encrypted.

Both authenticate by their own means (signature, state), not the API token (``CRM_PUBLIC_PATHS``).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agent.api_webhooks import _deny, _raw
from integrations.crm.oauth import OAuthError, exchange_code, verify_state
from integrations.crm.sync import SyncResult, apply_hubspot_events, valid_hubspot_signature
from integrations.webhooks import first_delivery

log = logging.getLogger("callwise.crm")

CRM_PUBLIC_PATHS = frozenset({"/v1/webhooks/hubspot", "/v1/oauth/hubspot/callback", "/v1/oauth/salesforce/callback"})
SETTINGS: web.AppKey[Callable[[], Any]] = web.AppKey("crm_settings")
MAX_EVENTS = 1000


def _signed_uri(request: web.Request, settings: Any) -> str:
    """The URL HubSpot signed: the public one when callwise sits behind a proxy (CALLWISE_PUBLIC_URL)."""
    base = settings.public_url
    return base.rstrip("/") + request.path_qs if base else str(request.url)


async def hubspot_webhook(request: web.Request) -> web.Response:
    from agent.api import SERVICES
    from agent.wiring.integrations import credential_store

    raw = await _raw(request)
    try:
        events = json.loads(raw)
    except ValueError:
        return _deny(400, "the body is not JSON")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events) or len(events) > MAX_EVENTS:
        return _deny(400, f"expected a JSON array of at most {MAX_EVENTS} event objects")
    settings = request.app[SETTINGS]()
    pool = request.app[SERVICES].pool
    creds = credential_store(settings, pool)
    by_portal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        by_portal[str(ev.get("portalId", ""))].append(ev)
    total = SyncResult()
    for portal, group in by_portal.items():
        rows = await pool.fetch("select organization_id from integration_credentials where provider = 'hubspot' "
                                "and metadata->>'portal_id' = $1 limit 2", portal)
        if len(rows) != 1:
            return _deny(403, f"unknown HubSpot portal {portal!r}")
        org_id = str(rows[0]["organization_id"])
        cred = await creds.get(org_id, "hubspot")
        secret = (cred.secret("client_secret") if cred else None) or (
            settings.hubspot_client_secret.get_secret_value() if settings.hubspot_client_secret else None)
        if not secret or not valid_hubspot_signature(
                client_secret=secret, method=request.method, uri=_signed_uri(request, settings), body=raw,
                timestamp=request.headers.get("X-HubSpot-Request-Timestamp", ""),
                signature=request.headers.get("X-HubSpot-Signature-v3", "")):
            log.warning("HubSpot webhook with a bad or stale signature refused")
            return _deny(403, "bad or stale signature")
        fresh = []
        async with pool.acquire() as conn:
            for ev in group:
                key = str(ev.get("eventId") or f"{ev.get('subscriptionType')}:{ev.get('objectId')}:{ev.get('occurredAt')}")
                if await first_delivery(conn, org_id, "hubspot", key):
                    fresh.append(ev)
        total.add(await apply_hubspot_events(pool, org_id, fresh))
        total.ignored += len(group) - len(fresh)
    return web.json_response(total.as_dict())


async def oauth_callback(request: web.Request) -> web.Response:
    from agent.api import SERVICES
    from agent.wiring.crm import oauth_app, state_key, store_tokens
    from agent.wiring.integrations import credential_store

    provider = request.match_info["provider"]
    settings = request.app[SETTINGS]()
    if "error" in request.query:
        return _deny(400, f"{provider} did not authorise: {request.query.get('error_description', request.query['error'])[:200]}")
    code, state = request.query.get("code", ""), request.query.get("state", "")
    if not code or not state:
        return _deny(400, "code and state are required")
    try:
        data = verify_state(state_key(settings), state, provider)
        app = oauth_app(settings, provider)
    except OAuthError as exc:
        return _deny(403, str(exc))
    pool = request.app[SERVICES].pool
    async with pool.acquire() as conn:
        if not await first_delivery(conn, data["org"], f"oauth-{provider}", data["nonce"]):
            return _deny(403, "this connect link was already used")
    try:
        body = await exchange_code(app, code)
    except OAuthError as exc:
        return _deny(502, str(exc))
    await store_tokens(credential_store(settings, pool), data["org"], app, body)
    return web.Response(text=f"{provider} is connected to callwise. You can close this page.", content_type="text/plain")


def mount_crm(app: web.Application, settings: Callable[[], Any] | None = None) -> None:
    from agent.settings import Settings

    app[SETTINGS] = settings or Settings
    app.router.add_post("/v1/webhooks/hubspot", hubspot_webhook)
    app.router.add_get("/v1/oauth/{provider:hubspot|salesforce}/callback", oauth_callback)
