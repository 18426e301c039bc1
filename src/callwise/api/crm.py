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
from typing import Any

from aiohttp import web

from callwise.api.services import CrmAuth, error, read_body, services_of, signed_url
from callwise.integrations.crm.oauth import OAuthError, exchange_code, verify_state
from callwise.integrations.crm.sync import SyncResult, apply_hubspot_events_in, valid_hubspot_signature
from callwise.integrations.webhooks import first_delivery

log = logging.getLogger("callwise.crm")

CRM_PUBLIC_PATHS = frozenset({"/v1/webhooks/hubspot", "/v1/oauth/hubspot/callback", "/v1/oauth/salesforce/callback"})
MAX_EVENTS = 1000


async def hubspot_webhook(request: web.Request) -> web.Response:
    raw = await read_body(request)
    try:
        events = json.loads(raw)
    except ValueError:
        return error(400, "the body is not JSON")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events) or len(events) > MAX_EVENTS:
        return error(400, f"expected a JSON array of at most {MAX_EVENTS} event objects")
    services = services_of(request)
    pool, creds = services.pool, services.credentials
    app_secret = services.crm.hubspot_client_secret if services.crm else None
    by_portal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        by_portal[str(ev.get("portalId", ""))].append(ev)
    total = SyncResult()
    for portal, group in by_portal.items():
        rows = await pool.fetch("select organization_id from integration_credentials where provider = 'hubspot' "
                                "and metadata->>'portal_id' = $1 limit 2", portal)
        if len(rows) != 1:
            return error(403, f"unknown HubSpot portal {portal!r}")
        org_id = str(rows[0]["organization_id"])
        cred = await creds.get(org_id, "hubspot")
        secret = (cred.secret("client_secret") if cred else None) or app_secret
        if not secret or not valid_hubspot_signature(
                client_secret=secret, method=request.method, uri=signed_url(request), body=raw,
                timestamp=request.headers.get("X-HubSpot-Request-Timestamp", ""),
                signature=request.headers.get("X-HubSpot-Signature-v3", "")):
            log.warning("HubSpot webhook with a bad or stale signature refused")
            return error(403, "bad or stale signature")
        fresh = []
        async with pool.acquire() as conn, conn.transaction():  # replay keys commit with what the events changed
            for ev in group:
                key = str(ev.get("eventId") or f"{ev.get('subscriptionType')}:{ev.get('objectId')}:{ev.get('occurredAt')}")
                if await first_delivery(conn, org_id, "hubspot", key):
                    fresh.append(ev)
            total.add(await apply_hubspot_events_in(conn, org_id, fresh))
        total.ignored += len(group) - len(fresh)
    return web.json_response(total.as_dict())


async def oauth_callback(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    services = services_of(request)
    auth: CrmAuth | None = services.crm
    if auth is None:
        return error(503, "CRM connections are not configured on this server")
    if "error" in request.query:
        return error(400, f"{provider} did not authorise: {request.query.get('error_description', request.query['error'])[:200]}")
    code, state = request.query.get("code", ""), request.query.get("state", "")
    if not code or not state:
        return error(400, "code and state are required")
    try:
        data = verify_state(auth.state_key, state, provider)
        app = auth.oauth_app(provider)
    except OAuthError as exc:
        return error(403, str(exc))
    pool = services.pool
    async with pool.acquire() as conn:
        if not await first_delivery(conn, data["org"], f"oauth-{provider}", data["nonce"]):
            return error(403, "this connect link was already used")
    try:
        body = await exchange_code(app, code)
    except OAuthError as exc:
        return error(502, str(exc))
    await auth.store_tokens(data["org"], app, body)
    return web.Response(text=f"{provider} is connected to callwise. You can close this page.", content_type="text/plain")


def mount(app: web.Application) -> None:
    app.router.add_post("/v1/webhooks/hubspot", hubspot_webhook)
    app.router.add_get("/v1/oauth/{provider:hubspot|salesforce}/callback", oauth_callback)
