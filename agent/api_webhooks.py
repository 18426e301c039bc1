"""Vendor webhooks and the survey page on ``callwise serve`` (mounted with the case desk).

* ``POST /v1/webhooks/twilio/sms``: an inbound SMS (a survey reply). The org is the one whose Twilio
  account SID and number received it; ``X-Twilio-Signature`` is checked with that org's auth token
  against ``CALLWISE_PUBLIC_URL`` + the path (what Twilio signed). Answers TwiML.
* ``POST /v1/webhooks/twilio/status``: delivery status of a message we sent.
* ``POST /v1/webhooks/sendgrid/events?org=SLUG``: SendGrid's signed event webhook (ECDSA, 5-minute window):
  delivered / bounce / dropped on the survey email.
* ``GET|POST /survey?ref=REF[&rating=N]``: the email survey's rating page (the reference is the capability).

A forged, replayed, malformed or oversized request gets 4xx and stores nothing. These paths carry their
own authentication (the vendor's signature), not the API token (``PUBLIC_PATHS``).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from agent.followup import record_reply
from integrations.webhooks import first_delivery

log = logging.getLogger("callwise.webhooks")

PUBLIC_PATHS = frozenset({"/v1/webhooks/twilio/sms", "/v1/webhooks/twilio/status", "/v1/webhooks/sendgrid/events",
                          "/survey"})
MAX_BODY = 64 * 1024
PUBLIC_URL: web.AppKey[Callable[[], str | None]] = web.AppKey("public_url")
CREDS: web.AppKey[Callable[[Any], Any]] = web.AppKey("webhook_credentials")
_TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _public_url_from_settings() -> str | None:
    from agent.settings import Settings

    return Settings().public_url


def _creds_from_settings(pool: Any) -> Any:
    from agent.settings import Settings
    from agent.wiring.integrations import credential_store

    return credential_store(Settings(), pool)


def _deny(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _raw(request: web.Request) -> bytes:
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length or 0)
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    return raw


def _signed_url(request: web.Request) -> str:
    base = request.app[PUBLIC_URL]()
    return (base.rstrip("/") + request.path_qs) if base else str(request.url)


async def _twilio_verified(request: web.Request) -> tuple[str, dict[str, str]] | web.Response:
    from agent.api import SERVICES
    from integrations.twilio import valid_signature
    from integrations.webhooks import twilio_org

    raw = await _raw(request)
    try:
        params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw)))
    except (UnicodeDecodeError, ValueError):
        return _deny(400, "the body is not a form")
    account, to = params.get("AccountSid", ""), params.get("To", "")
    if not account or not to or not params.get("MessageSid"):
        return _deny(400, "AccountSid, To and MessageSid are required")
    pool = request.app[SERVICES].pool
    org_id = await twilio_org(pool, account, to)
    if org_id is None:
        return _deny(403, "unknown Twilio account or number")
    cred = await request.app[CREDS](pool).get(org_id, "twilio")
    signature = request.headers.get("X-Twilio-Signature", "")
    if cred is None or not valid_signature(cred.secrets["auth_token"], _signed_url(request), params, signature):
        log.warning("Twilio webhook with a bad signature refused (org %s)", org_id)
        return _deny(403, "bad signature")
    return org_id, params


async def twilio_sms(request: web.Request) -> web.Response:
    from agent.api import SERVICES

    checked = await _twilio_verified(request)
    if isinstance(checked, web.Response):
        return checked
    org_id, params = checked
    text = params.get("Body", "")[:1600]
    outcome = await record_reply(request.app[SERVICES].pool, org_id, channel="sms", contact=params.get("From"),
                                 text=text, event=("twilio", f"sms:{params['MessageSid']}"))
    if outcome.status == "replay":
        return _deny(403, "this message was already received")
    return web.Response(text=_TWIML_EMPTY, content_type="text/xml")


async def twilio_status(request: web.Request) -> web.Response:
    from agent.api import SERVICES

    checked = await _twilio_verified(request)
    if isinstance(checked, web.Response):
        return checked
    org_id, params = checked
    status = params.get("MessageStatus", "")[:30]
    pool = request.app[SERVICES].pool
    async with pool.acquire() as conn, conn.transaction():
        if not await first_delivery(conn, org_id, "twilio", f"status:{params['MessageSid']}:{status}"):
            return _deny(403, "this status was already received")
        await conn.execute(
            "update survey_requests set delivery_status = $3, status = case when $3 in ('failed', 'undelivered') "
            "and status in ('pending', 'sent') then 'failed' else status end, updated_at = now() "
            "where organization_id = $1 and vendor_message_id = $2", org_id, params["MessageSid"], status)
    return web.Response(text=_TWIML_EMPTY, content_type="text/xml")


async def sendgrid_events(request: web.Request) -> web.Response:
    from agent.api import SERVICES
    from agent.db import find_organization
    from integrations.sendgrid import valid_event_signature

    raw = await _raw(request)
    pool = request.app[SERVICES].pool
    org_id = await find_organization(pool, request.query.get("org", ""))
    if org_id is None:
        return _deny(403, "unknown organization")
    cred = await request.app[CREDS](pool).get(org_id, "sendgrid")
    key = str((cred.fields if cred else {}).get("event_public_key") or "")
    try:
        payload = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _deny(400, "the body is not UTF-8")
    if not valid_event_signature(key, payload, request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
                                 request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")):
        return _deny(403, "bad or expired signature")
    try:
        events = json.loads(payload)
    except ValueError:
        return _deny(400, "the body is not JSON")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return _deny(400, "expected a JSON array of events")
    stored = 0
    async with pool.acquire() as conn, conn.transaction():
        for e in events[:1000]:
            event_id = str(e.get("sg_event_id") or "")
            if not event_id or not await first_delivery(conn, org_id, "sendgrid", event_id):
                continue
            ref, kind = str(e.get("survey_reference") or ""), str(e.get("event") or "")[:30]
            if ref and kind:
                await conn.execute(
                    "update survey_requests set delivery_status = $3, status = case when $3 in ('bounce', 'dropped') "
                    "and status in ('pending', 'sent') then 'failed' else status end, updated_at = now() "
                    "where organization_id = $1 and reference = $2", org_id, ref, kind)
            stored += 1
    if events and stored == 0:
        return _deny(403, "these events were already received")
    return web.json_response({"stored": stored})


async def survey_page(request: web.Request) -> web.Response:
    from agent.api import SERVICES

    pool = request.app[SERVICES].pool
    if request.method == "POST":
        form = await request.post()
        ref, rating = str(form.get("ref", "")), str(form.get("rating", ""))
    else:
        ref, rating = request.query.get("ref", ""), ""
    row = await pool.fetchrow("select organization_id, status from survey_requests where reference = $1 limit 1", ref[:12])
    if row is None:
        return web.Response(status=404, text="<p>This survey link is not valid.</p>", content_type="text/html")
    if request.method == "POST":
        if rating not in {"1", "2", "3", "4", "5"}:
            return web.Response(status=400, text="<p>Pick a number from 1 to 5.</p>", content_type="text/html")
        out = await record_reply(pool, str(row["organization_id"]), channel="email", reference=ref, text=rating)
        msg = "Thank you for your feedback." if out.status == "answered" else "This survey was already answered."
        return web.Response(text=f"<p>{msg}</p>", content_type="text/html")
    if row["status"] in ("answered", "unanswered"):
        return web.Response(text="<p>This survey was already answered. Thank you.</p>", content_type="text/html")
    buttons = "".join(f"<button name='rating' value='{n}'>{n}</button> " for n in range(1, 6))
    page = (f"<!doctype html><meta charset='utf-8'><title>How did we do?</title><body style='font-family:sans-serif'>"
            f"<p>How would you rate the help you got, from 1 (poor) to 5 (excellent)?</p><form method='post'>"
            f"<input type='hidden' name='ref' value='{html.escape(ref)}'>{buttons}</form></body>")
    return web.Response(text=page, content_type="text/html")


def mount_webhooks(app: web.Application, *, public_url: Callable[[], str | None] | None = None,
                   creds: Callable[[Any], Any] | None = None) -> None:
    app[PUBLIC_URL] = public_url or _public_url_from_settings
    app[CREDS] = creds or _creds_from_settings
    app.router.add_post("/v1/webhooks/twilio/sms", twilio_sms)
    app.router.add_post("/v1/webhooks/twilio/status", twilio_status)
    app.router.add_post("/v1/webhooks/sendgrid/events", sendgrid_events)
    app.router.add_get("/survey", survey_page)
    app.router.add_post("/survey", survey_page)
