"""Outbox handlers: one per action, each idempotent with the row's key, reading the org's credentials.

=====================  ==========================================================================
action                 what it does (idempotency)
=====================  ==========================================================================
``slack.notify``       on-duty notice with a link to the case (bot: metadata key, history lookup on retry)
``livekit.transfer``   cold SIP transfer (one attempt: a transfer is only useful while the caller waits)
``zendesk.ticket``     ticket with the transcript (``external_id`` = case id, looked up before create)
``twilio.sms``         survey SMS (on retry: the message list for to/from since the row was made)
``sendgrid.email``     survey email (``custom_args.callwise_key``; on retry: Email Activity lookup)
=====================  ==========================================================================

Vendor errors map onto the outbox's: rate limits and 5xx retry (honouring Retry-After), refusals are
permanent, refused credentials mark the integration ``needs_reauth`` (the call goes on, the row is dead
with the error, ``callwise outbox retry`` after re-authorising).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from callwise.integrations.credentials import Credential, CredentialStore
from callwise.integrations.outbox import Delivered, Handler, NeedsReauth, OutboxItem, PermanentError, RetryableError


@dataclass(frozen=True)
class VendorConfig:
    zendesk_base_url: str | None = None
    slack_base_url: str = "https://slack.com"
    twilio_base_url: str = "https://api.twilio.com"
    sendgrid_base_url: str = "https://api.sendgrid.com"
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None
    public_url: str | None = None  # the on-duty notice links to {public_url}/cases?case=CW-1042


async def _credential(creds: CredentialStore, item: OutboxItem, provider: str) -> Credential:
    cred = await creds.get(item.organization_id, provider)
    if cred is None:
        raise PermanentError(f"{provider} is not configured for this organization")
    if cred.status == "needs_reauth":
        raise NeedsReauth(f"{provider} needs re-authorisation: {cred.last_error or 'credentials refused'}")
    return cred


def _vendor_error(exc: Any, creds: CredentialStore, item: OutboxItem, provider: str) -> Exception:
    if getattr(exc, "auth", False):
        return NeedsReauth(f"{provider}: {exc}")
    if getattr(exc, "retryable", True):
        return RetryableError(str(exc), retry_after=getattr(exc, "retry_after", None))
    return PermanentError(str(exc))


async def _raise_vendor(exc: Exception, creds: CredentialStore, item: OutboxItem, provider: str) -> None:
    err = _vendor_error(exc, creds, item, provider)
    if isinstance(err, NeedsReauth):
        await creds.mark_needs_reauth(item.organization_id, provider, str(exc))
    raise err from exc


class SharedHttp:
    """One ``httpx.AsyncClient`` for every delivery of a dispatcher (building a client costs tens of ms of
    CPU for its TLS context; a pool also reuses connections). Made on first use, in the running loop."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=32))
        return self._client


def build_handlers(pool: Any, creds: CredentialStore, cfg: VendorConfig) -> dict[str, Handler]:
    shared = SharedHttp()

    async def slack_notify(item: OutboxItem) -> Delivered:
        from callwise.integrations.slack import SlackBot, SlackError, SlackWebhook, on_duty_notice

        cred = await _credential(creds, item, "slack")
        p = item.payload
        link = None
        if p.get("handoff") == "live" and cfg.public_url:  # a link to the case; a join link needs a claim
            link = f"{cfg.public_url.rstrip('/')}/cases?{urlencode({'case': str(p.get('case', ''))})}"
        text, blocks = on_duty_notice(p, link)
        try:
            if cred.secret("bot_token"):
                bot = SlackBot(cred.secrets["bot_token"], base_url=cfg.slack_base_url, http=shared.get())
                channel = str(cred.fields.get("channel") or "")
                if not channel:
                    raise PermanentError("slack: no channel configured for the bot token")
                if item.attempts > 1 and item.created_at is not None:
                    found = await bot.find_posted(channel, item.idempotency_key, item.created_at.timestamp() - 60)
                    if found:
                        return Delivered(vendor_id=found.get("ts"), result={"found": True},
                                         audit={"channel": channel, "case": p.get("case")})
                body = await bot.post_message(channel, text, blocks, key=item.idempotency_key)
                return Delivered(vendor_id=body.get("ts"), result={"channel": body.get("channel")},
                                 audit={"channel": channel, "case": p.get("case"), "case_link": bool(link)})
            await SlackWebhook(cred.secrets["webhook_url"]).post(text, blocks)
            return Delivered(result={"webhook": True}, audit={"case": p.get("case"), "case_link": bool(link)})
        except SlackError as exc:
            await _raise_vendor(exc, creds, item, "slack")
            raise  # unreachable

    async def livekit_transfer(item: OutboxItem) -> Delivered:
        from callwise.integrations.livekit_sip import TransferError, transfer_caller

        if not (cfg.livekit_url and cfg.livekit_api_key and cfg.livekit_api_secret):
            raise PermanentError("LiveKit is not configured (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)")
        p = item.payload
        try:
            out = await transfer_caller(cfg.livekit_url, cfg.livekit_api_key, cfg.livekit_api_secret, room=p["room"],
                                        participant_identity=p["participant_identity"], transfer_to=p["transfer_to"],
                                        ringing_timeout_s=int(p.get("ringing_timeout_s") or 30))
        except TransferError as exc:
            raise (RetryableError(str(exc)) if exc.retryable else PermanentError(str(exc))) from exc
        # delivered = LiveKit accepted the transfer; ``result`` says whether the caller is known to be connected
        return Delivered(vendor_id=out.transfer_id or None,
                         result={"status": out.status, "transfer": out.result, "reason": out.reason},
                         audit={"case": p.get("case"), "transfer_to": p["transfer_to"], "status": out.status,
                                "transfer": out.result})

    async def zendesk_ticket(item: OutboxItem) -> Delivered:
        from callwise.integrations.oauth_refresh import Refreshed, StoredTokens
        from callwise.integrations.zendesk import TokenPair, ZendeskClient, ZendeskError, base_url_for, ticket_for_case

        cred = await _credential(creds, item, "zendesk")
        p = item.payload
        stored = StoredTokens(creds, item.organization_id, "zendesk", cred.version)

        async def save(pair: TokenPair) -> None:  # compare-and-set: a pair stored meanwhile is not overwritten
            await stored.save(Refreshed(pair.access_token, pair.refresh_token, pair.expires_at))

        async def reload() -> TokenPair | None:  # our refresh was refused: did another process rotate first?
            newer = await stored.newer()
            return TokenPair(newer.secrets["access_token"], newer.secret("refresh_token"), newer.expires_at) \
                if newer else None

        client = ZendeskClient(
            base_url_for(str(cred.fields.get("subdomain", "")), cfg.zendesk_base_url),
            TokenPair(cred.secrets["access_token"], cred.secret("refresh_token"), cred.expires_at),
            client_id=cred.fields.get("client_id"), client_secret=cred.secret("client_secret"), on_refresh=save,
            http=shared.get(), reload=reload)
        rows = await pool.fetch(
            "select t.speaker, t.role, t.text from turns t join escalations e on e.session_id = t.session_id "
            "and e.organization_id = t.organization_id where e.organization_id = $1 and e.id = $2 "
            "and t.created_at <= e.created_at order by t.seq", item.organization_id, p["case_id"])
        try:
            ticket = await client.create_ticket(ticket_for_case(p, [dict(r) for r in rows]))
        except ZendeskError as exc:
            await _raise_vendor(exc, creds, item, "zendesk")
            raise
        ticket_id = str(ticket["id"])
        url = ticket.get("url")

        async def record(conn: Any) -> None:
            await conn.execute(
                "update escalations set ticket_id = $3, ticket_url = $4, updated_at = now() "
                "where organization_id = $1 and id = $2", item.organization_id, p["case_id"], ticket_id, url)

        return Delivered(vendor_id=ticket_id, result={"created": ticket["_created"]}, apply=record,
                         audit={"case": p.get("case"), "ticket_id": ticket_id, "created": ticket["_created"]})

    async def twilio_sms(item: OutboxItem) -> Delivered:
        from callwise.integrations.twilio import TwilioError, TwilioSMS

        cred = await _credential(creds, item, "twilio")
        p = item.payload
        sms = TwilioSMS(str(cred.fields["account_sid"]), cred.secrets["auth_token"], base_url=cfg.twilio_base_url)
        status_cb = f"{cfg.public_url.rstrip('/')}/v1/webhooks/twilio/status" if cfg.public_url else None
        try:
            if item.attempts > 1 and item.created_at is not None:
                found = await sms.find_sent(to=p["to"], from_=str(cred.fields["from_number"]), body=p["body"],
                                            since=item.created_at)
                if found:
                    return await _sms_done(found, p, {"found": True})
            sid = await sms.send(to=p["to"], from_=str(cred.fields["from_number"]), body=p["body"],
                                 status_callback=status_cb)
        except TwilioError as exc:
            await _raise_vendor(exc, creds, item, "twilio")
            raise
        return await _sms_done(sid, p, {})

    async def _survey_sent(vendor_id: str, p: dict[str, Any], result: dict[str, Any],
                           audit: dict[str, Any]) -> Delivered:
        """A survey SMS or email out: its request is marked sent with the vendor's message id."""
        async def record(conn: Any) -> None:
            if p.get("survey_request_id"):
                await conn.execute(
                    "update survey_requests set status = case when status = 'pending' then 'sent' else status end, "
                    "vendor_message_id = $3, updated_at = now() where organization_id = $1 and id = $2",
                    p["organization_id"], p["survey_request_id"], vendor_id)

        return Delivered(vendor_id=vendor_id, result=result, apply=record, target_type="survey_request",
                         target_id=p.get("survey_request_id"), audit=audit)

    async def _sms_done(sid: str, p: dict[str, Any], result: dict[str, Any]) -> Delivered:
        return await _survey_sent(sid, p, result, {"channel": "sms", "kind": p.get("kind")})

    async def sendgrid_email(item: OutboxItem) -> Delivered:
        from callwise.integrations.sendgrid import SendGridError, SendGridMail

        cred = await _credential(creds, item, "sendgrid")
        p = item.payload
        mail = SendGridMail(cred.secrets["api_key"], host=cfg.sendgrid_base_url)
        try:
            if item.attempts > 1:
                found = await mail.find_sent(item.idempotency_key)
                if found:
                    return await _email_done(found, p, {"found": True})
            msg_id = await mail.send(to=p["to"], from_email=str(cred.fields["from_email"]), subject=p["subject"],
                                     body=p["body"], key=item.idempotency_key,
                                     custom_args={"survey_reference": p.get("reference", "")})
        except SendGridError as exc:
            await _raise_vendor(exc, creds, item, "sendgrid")
            raise
        return await _email_done(msg_id, p, {})

    async def _email_done(msg_id: str, p: dict[str, Any], result: dict[str, Any]) -> Delivered:
        return await _survey_sent(msg_id, p, result, {"channel": "email"})

    return {"slack.notify": slack_notify, "livekit.transfer": livekit_transfer, "zendesk.ticket": zendesk_ticket,
            "twilio.sms": twilio_sms, "sendgrid.email": sendgrid_email}


def payload_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, default=str)
