"""Vendor webhooks and the survey page on ``callwise serve`` (mounted with the case desk).

* ``POST /v1/webhooks/twilio/sms``: an inbound SMS (a survey reply). The org is the one whose Twilio
  account SID and number received it; ``X-Twilio-Signature`` is checked with that org's auth token
  against ``CALLWISE_PUBLIC_URL`` + the path (what Twilio signed). Answers TwiML.
* ``POST /v1/webhooks/twilio/status``: delivery status of a message we sent; there our number is ``From``
  (``To`` is the customer), so the org is found by ``From``.
* ``POST /v1/webhooks/sendgrid/events?org=SLUG``: SendGrid's signed event webhook (ECDSA, 5-minute window):
  delivered / bounce / dropped on the survey email.
* ``GET|POST /survey?org=ORG_ID&ref=REF&t=TOKEN[&rating=N]``: the email survey's rating page; ``t`` is an HMAC
  of (org, reference) under the server's key (``callwise.calls.followup.survey_token``), so a guessed
  reference opens nothing, and the request is looked up in that org only.

A forged, replayed, malformed or oversized request gets 4xx and stores nothing. These paths carry their
own authentication (the vendor's signature), not the API token (``PUBLIC_PATHS``).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from aiohttp import web

from callwise.api.pages import page as html_page
from callwise.api.services import error, read_body, services_of, signed_url
from callwise.calls.followup import record_reply, valid_survey_token
from callwise.integrations.webhooks import first_delivery

log = logging.getLogger("callwise.webhooks")

PUBLIC_PATHS = frozenset({"/v1/webhooks/twilio/sms", "/v1/webhooks/twilio/status", "/v1/webhooks/sendgrid/events",
                          "/survey"})
_TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def _twilio_verified(request: web.Request, ours: str = "To") -> tuple[str, dict[str, str]] | web.Response:
    """The org and the form of a signed Twilio webhook; ``ours`` names the field holding the org's number
    (``To`` for an inbound message, ``From`` for the status of a message we sent)."""
    from callwise.integrations.twilio import valid_signature
    from callwise.integrations.webhooks import twilio_org

    raw = await read_body(request)
    try:
        params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw)))
    except (UnicodeDecodeError, ValueError):
        return error(400, "the body is not a form")
    account, number = params.get("AccountSid", ""), params.get(ours, "")
    if not account or not number or not params.get("MessageSid"):
        return error(400, f"AccountSid, {ours} and MessageSid are required")
    pool = services_of(request).pool
    org_id = await twilio_org(pool, account, number)
    if org_id is None:
        return error(403, "unknown Twilio account or number")
    cred = await services_of(request).credentials.get(org_id, "twilio")
    signature = request.headers.get("X-Twilio-Signature", "")
    if cred is None or not valid_signature(cred.secrets["auth_token"], signed_url(request), params, signature):
        log.warning("Twilio webhook with a bad signature refused (org %s)", org_id)
        return error(403, "bad signature")
    return org_id, params


async def twilio_sms(request: web.Request) -> web.Response:
    checked = await _twilio_verified(request)
    if isinstance(checked, web.Response):
        return checked
    org_id, params = checked
    text = params.get("Body", "")[:1600]
    outcome = await record_reply(services_of(request).pool, org_id, channel="sms", contact=params.get("From"),
                                 text=text, event=("twilio", f"sms:{params['MessageSid']}"))
    if outcome.status == "replay":
        return error(403, "this message was already received")
    return web.Response(text=_TWIML_EMPTY, content_type="text/xml")


async def twilio_status(request: web.Request) -> web.Response:
    checked = await _twilio_verified(request, ours="From")
    if isinstance(checked, web.Response):
        return checked
    org_id, params = checked
    status = params.get("MessageStatus", "")[:30]
    pool = services_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        if not await first_delivery(conn, org_id, "twilio", f"status:{params['MessageSid']}:{status}"):
            return error(403, "this status was already received")
        await conn.execute(
            "update survey_requests set delivery_status = $3, status = case when $3 in ('failed', 'undelivered') "
            "and status in ('pending', 'sent') then 'failed' else status end, updated_at = now() "
            "where organization_id = $1 and vendor_message_id = $2", org_id, params["MessageSid"], status)
    return web.Response(text=_TWIML_EMPTY, content_type="text/xml")


async def sendgrid_events(request: web.Request) -> web.Response:
    from callwise.infra.db import find_organization
    from callwise.integrations.sendgrid import valid_event_signature

    raw = await read_body(request)
    pool = services_of(request).pool
    org_id = await find_organization(pool, request.query.get("org", ""))
    if org_id is None:
        return error(403, "unknown organization")
    cred = await services_of(request).credentials.get(org_id, "sendgrid")
    key = str((cred.fields if cred else {}).get("event_public_key") or "")
    try:
        payload = raw.decode("utf-8")
    except UnicodeDecodeError:
        return error(400, "the body is not UTF-8")
    if not valid_event_signature(key, payload, request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
                                 request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")):
        return error(403, "bad or expired signature")
    try:
        events = json.loads(payload)
    except ValueError:
        return error(400, "the body is not JSON")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return error(400, "expected a JSON array of events")
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
        return error(403, "these events were already received")
    return web.json_response({"stored": stored})


async def survey_page(request: web.Request) -> web.Response:
    import uuid

    services = services_of(request)
    pool = services.pool
    source = await request.post() if request.method == "POST" else request.query
    org, ref, token = (str(source.get(k, ""))[:64] for k in ("org", "ref", "t"))
    rating = str(source.get("rating", "")) if request.method == "POST" else ""
    invalid = html_page("survey.html", status=404, message="This survey link is not valid.", hidden=[])
    key = services.survey_key
    try:
        org = str(uuid.UUID(org))
    except ValueError:
        return invalid
    if not key or not valid_survey_token(key, org, ref, token):
        return invalid
    row = await pool.fetchrow("select organization_id, status from survey_requests where organization_id = $1 "
                              "and reference = $2", org, ref)
    if row is None:
        return invalid
    if request.method == "POST":
        if rating not in {"1", "2", "3", "4", "5"}:
            return html_page("survey.html", status=400, message="Pick a number from 1 to 5.", hidden=[])
        out = await record_reply(pool, str(row["organization_id"]), channel="email", reference=ref, text=rating)
        msg = "Thank you for your feedback." if out.status == "answered" else "This survey was already answered."
        return html_page("survey.html", message=msg, hidden=[])
    if row["status"] in ("answered", "unanswered"):
        return html_page("survey.html", message="This survey was already answered. Thank you.", hidden=[])
    return html_page("survey.html", message=None, hidden=[("org", org), ("ref", ref), ("t", token)])


def mount(app: web.Application) -> None:
    app.router.add_post("/v1/webhooks/twilio/sms", twilio_sms)
    app.router.add_post("/v1/webhooks/twilio/status", twilio_status)
    app.router.add_post("/v1/webhooks/sendgrid/events", sendgrid_events)
    app.router.add_get("/survey", survey_page)
    app.router.add_post("/survey", survey_page)
