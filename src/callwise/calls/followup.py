"""Survey follow-up: a call that ended before its rating gets the survey by SMS or email, and the reply
comes back as a ``survey_responses`` row (``channel_used`` sms/email) through the same rating parser.

:func:`request_survey` writes the ``survey_requests`` row and its outbox action (``twilio.sms`` or
``sendgrid.email``) in one transaction. :func:`record_sms_reply` handles an inbound SMS (already
signature-checked): a rating is stored (2 or less opens a case), anything else gets one clarifying SMS,
then no rating. Every message carries a short reference (``ref K7Q2MX``) so replies and delivery events
find their request. The email's rating links carry the org and an HMAC of (org, reference) under a key only
the server holds (:func:`survey_token`): the 6-character reference alone opens nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from callwise.calls import survey
from callwise.integrations.outbox import enqueue
from callwise.integrations.webhooks import first_delivery

log = logging.getLogger("callwise.followup")

Channel = Literal["sms", "email"]
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read back over the phone

CLARIFY_SMS = "Sorry, we didn't catch that. Please reply with a number from 1 (poor) to 5 (excellent)."
THANKS_SMS = "Thank you for your feedback."
LOW_RATING_SMS = "Thank you. We're sorry it wasn't better; a member of our support team will follow up."


def new_reference() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(6))


def sms_text(org_name: str, reference: str) -> str:
    return (f"Thanks for calling {org_name} support. How would you rate the help you got, from 1 (poor) to "
            f"5 (excellent)? Reply with a number. Ref {reference}")


def survey_token(key: bytes, organization_id: str, reference: str) -> str:
    """The capability in a survey link: 144 bits of HMAC-SHA256 over the org and the reference."""
    mac = hmac.new(key, f"survey\x00{organization_id}\x00{reference}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def valid_survey_token(key: bytes, organization_id: str, reference: str, token: str) -> bool:
    return hmac.compare_digest(survey_token(key, organization_id, reference).encode(), token.encode())


def survey_link(public_url: str, key: bytes, organization_id: str, reference: str, rating: int | None = None) -> str:
    from urllib.parse import urlencode

    query = {"org": organization_id, "ref": reference, "t": survey_token(key, organization_id, reference)}
    if rating is not None:
        query["rating"] = str(rating)
    return f"{public_url.rstrip('/')}/survey?{urlencode(query)}"


def email_text(org_name: str, reference: str, links: list[str] | None = None) -> tuple[str, str]:
    """``links``: the five rating links (1 to 5), when the survey page is reachable."""
    subject = f"How did we do? Your call with {org_name} support"
    lines = [f"Thanks for calling {org_name} support.", "",
             "How would you rate the help you got, from 1 (poor) to 5 (excellent)?"]
    if links:
        lines += [""] + [f"  {n}: {link}" for n, link in enumerate(links, start=1)]
    lines += ["", f"Reference {reference}"]
    return subject, "\n".join(lines)


def choose_channel(setting: str, contact: dict[str, Any], configured: set[str]) -> tuple[Channel, str] | None:
    """SMS or email per the org's setting and the caller's contact, or None when neither is possible."""
    phone, email = contact.get("phone"), contact.get("email")
    sms = (phone, "sms") if phone and "twilio" in configured else None
    mail = (email, "email") if email and "sendgrid" in configured else None
    order = {"sms": [sms], "email": [mail], "auto": [sms, mail], "off": []}.get(setting, [])
    for option in order:
        if option:
            return option[1], str(option[0])  # type: ignore[return-value]
    return None


@dataclass
class SurveyRequest:
    id: str
    channel: Channel
    contact: str
    reference: str


async def request_survey(pool: Any, organization_id: str, session_id: str, *, channel: Channel, contact: str,
                         public_url: str | None = None, link_key: bytes | None = None,
                         region: str = "US") -> SurveyRequest | None:
    """Queue the survey for a call with no rating yet; None when it has one or was already asked. An email
    carries rating links when ``public_url`` and the signing ``link_key`` are both given. A phone number is
    stored as E.164 (read in ``region`` when it has no country code), the form Twilio's replies come from."""
    if channel == "sms":
        from callwise.integrations.phone import e164

        contact = e164(contact, region) or contact
    async with pool.acquire() as conn, conn.transaction():
        rated = await conn.fetchval("select 1 from survey_responses where organization_id = $1 and session_id = $2",
                                    organization_id, session_id)
        if rated:
            return None
        org_name = await conn.fetchval("select name from organizations where id = $1", organization_id)
        reference = new_reference()
        row = await conn.fetchrow(
            "insert into survey_requests (organization_id, session_id, channel, contact, reference) "
            "values ($1, $2, $3, $4, $5) on conflict (organization_id, session_id, channel) do nothing returning id",
            organization_id, session_id, channel, contact, reference)
        if row is None:
            return None
        req = SurveyRequest(str(row["id"]), channel, contact, reference)
        base = {"survey_request_id": req.id, "organization_id": organization_id, "reference": reference, "to": contact}
        if channel == "sms":
            payload = {**base, "body": sms_text(org_name, reference), "kind": "survey"}
            action = "twilio.sms"
        else:
            links = ([survey_link(public_url, link_key, organization_id, reference, n) for n in range(1, 6)]
                     if public_url and link_key else None)
            subject, body = email_text(org_name, reference, links)
            payload = {**base, "subject": subject, "body": body}
            action = "sendgrid.email"
        await enqueue(conn, organization_id=organization_id, action=action, payload=payload,
                      idempotency_key=f"survey:{req.id}", session_id=session_id)
    return req


@dataclass
class ReplyOutcome:
    status: str  # answered | clarified | unanswered | no_request | replay
    rating: int | None = None
    case: str | None = None


async def record_reply(pool: Any, organization_id: str, *, channel: Channel, contact: str | None = None,
                       reference: str | None = None, text: str, event: tuple[str, str] | None = None) -> ReplyOutcome:
    """A reply to a survey (found by reference, else the contact's latest open request). ``event``
    (provider, key) is recorded in the same transaction: a replayed webhook stores nothing."""
    async with pool.acquire() as conn, conn.transaction():
        if event is not None and not await first_delivery(conn, organization_id, *event):
            return ReplyOutcome("replay")
        req = await conn.fetchrow(
            "select * from survey_requests where organization_id = $1 and status in ('pending', 'sent', 'clarified') "
            "and (($2::text is not null and reference = $2) or ($2::text is null and contact = $3 and channel = $4)) "
            "order by created_at desc limit 1 for update",
            organization_id, reference, contact, channel)
        if req is None:
            return ReplyOutcome("no_request")
        rating, _ = survey.parse_rating(text)
        if rating is None:
            if req["clarifications"] == 0 and channel == "sms":
                await conn.execute("update survey_requests set status = 'clarified', clarifications = 1, "
                                   "updated_at = now() where id = $1", req["id"])
                await _sms(conn, organization_id, req, CLARIFY_SMS, "clarify")
                return ReplyOutcome("clarified")
            await conn.execute("update survey_requests set status = 'unanswered', updated_at = now() where id = $1",
                               req["id"])
            return ReplyOutcome("unanswered")
        answer = survey.parse_answer(text)
        resp_id = await conn.fetchval(
            "insert into survey_responses (organization_id, session_id, end_user_id, rating, feedback_text, "
            "channel_used, requires_followup) values ($1, $2, $3, $4, $5, $6, $7) returning id",
            organization_id, req["session_id"], req["end_user_id"], rating, text[:2000], channel,
            answer.requires_followup)
        await conn.execute("update survey_requests set status = 'answered', survey_response_id = $2, updated_at = now() "
                           "where id = $1", req["id"], resp_id)
        case_label = None
        if answer.requires_followup:
            case_label = await _open_case(conn, organization_id, req, rating, text)
        if channel == "sms":
            await _sms(conn, organization_id, req, LOW_RATING_SMS if case_label else THANKS_SMS, "thanks")
        return ReplyOutcome("answered", rating, case_label)


async def _sms(conn: Any, organization_id: str, req: Any, body: str, kind: str) -> None:
    await enqueue(conn, organization_id=organization_id, action="twilio.sms",
                  payload={"organization_id": organization_id, "to": req["contact"], "body": body, "kind": kind},
                  idempotency_key=f"survey:{req['id']}:{kind}", session_id=str(req["session_id"]))


async def _open_case(conn: Any, organization_id: str, req: Any, rating: int, text: str) -> str:
    """A rating of 2 or less is a case for a person (reason ``frustration``: the schema's closest reason)."""
    number = await conn.fetchval(
        "insert into escalations (organization_id, session_id, reason, details, handoff, status, handoff_status, contact) "
        "values ($1, $2, 'frustration', $3::jsonb, 'callback', 'callback', 'callback', $4::jsonb) returning case_number",
        organization_id, req["session_id"],
        json.dumps({"rule": f"survey rating {rating} (2 or less)", "matched": [text[:200]], "source": "survey",
                    "channel": req["channel"], "transcript": text[:500]}),
        json.dumps({req["channel"] == "sms" and "phone" or "email": req["contact"]}))
    return f"CW-{number}"
