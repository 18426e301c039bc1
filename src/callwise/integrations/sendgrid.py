"""Survey email through SendGrid's official SDK, and SendGrid's signed event webhook.

Send: ``POST /v3/mail/send`` (Bearer key) -> **202** with an empty body and ``X-Message-Id``; errors
``{"errors": [{"field", "message"}]}``, 429 with ``X-RateLimit-Reset``. ``SendGridAPIClient(key, host=...)``
reaches ``CALLWISE_SENDGRID_BASE_URL``. Each mail carries ``custom_args.callwise_key`` (our idempotency key);
before a retry :meth:`SendGridMail.find_sent` asks the Email Activity API (``GET /v3/messages?query=
unique_args['callwise_key']="..."``) whether an earlier attempt was accepted.

Event webhook: ``X-Twilio-Email-Event-Webhook-Signature`` is an ECDSA P-256/SHA-256 signature over
``timestamp + raw body`` (``X-Twilio-Email-Event-Webhook-Timestamp``), checked with the SDK's ``EventWebhook``
and the org's verification key; old timestamps are refused (replay).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import CustomArg, Mail

from callwise.integrations.errors import VendorError

DEFAULT_BASE_URL = "https://api.sendgrid.com"
MAX_EVENT_AGE_S = 300

SendGridError = VendorError  # one error type for every vendor (callwise.integrations.errors)


def _error(exc: Exception) -> SendGridError:
    if isinstance(exc, http_errors.HTTPError):
        status = int(getattr(exc, "status_code", 0) or 0)
        body = getattr(exc, "body", b"")
        detail = body.decode("utf-8", "replace")[:200] if isinstance(body, bytes) else str(body)[:200]
        retry_after = None
        headers = getattr(exc, "headers", None) or {}
        reset = headers.get("X-RateLimit-Reset") if hasattr(headers, "get") else None
        if status == 429 and reset:
            try:
                retry_after = max(0.0, float(reset) - time.time())
            except ValueError:
                retry_after = None
        return SendGridError(f"SendGrid {status}: {detail}", retryable=status == 429 or status >= 500,
                             auth=status in (401, 403), retry_after=retry_after)
    return SendGridError(f"SendGrid unreachable: {type(exc).__name__}")


class SendGridMail:
    def __init__(self, api_key: str, *, host: str = DEFAULT_BASE_URL) -> None:
        self.client = SendGridAPIClient(api_key, host=host.rstrip("/"))

    async def send(self, *, to: str, from_email: str, subject: str, body: str, key: str,
                   custom_args: dict[str, str] | None = None) -> str:
        mail = Mail(from_email=from_email, to_emails=to, subject=subject, plain_text_content=body)
        mail.custom_arg = CustomArg("callwise_key", key)
        for k, v in (custom_args or {}).items():
            if v:
                mail.custom_arg = CustomArg(k, str(v))
        try:
            resp = await asyncio.to_thread(self.client.send, mail)
        except Exception as exc:  # noqa: BLE001 - HTTPError or a transport error
            raise _error(exc) from exc
        if resp.status_code != 202:
            raise SendGridError(f"SendGrid answered {resp.status_code}, expected 202", retryable=resp.status_code >= 500)
        msg_id = resp.headers.get("X-Message-Id") if hasattr(resp.headers, "get") else None
        return str(msg_id or "")

    async def find_sent(self, key: str) -> str | None:
        query = f"unique_args['callwise_key']=\"{key}\""
        try:
            resp = await asyncio.to_thread(self.client.client.messages.get, query_params={"query": query, "limit": 1})
        except Exception as exc:  # noqa: BLE001
            raise _error(exc) from exc
        data: Any = json.loads(resp.body or b"{}")
        msgs = data.get("messages") or []
        return str(msgs[0].get("msg_id")) if msgs else None


def valid_event_signature(public_key: str, payload: str, signature: str, timestamp: str,
                          now: float | None = None) -> bool:
    """ECDSA check of a SendGrid event post; a timestamp older than 5 minutes is a replay."""
    if not (public_key and signature and timestamp):
        return False
    try:
        age = (now or time.time()) - float(timestamp)
    except ValueError:
        return False
    if abs(age) > MAX_EVENT_AGE_S:
        return False
    try:
        return bool(EventWebhook(public_key).verify_signature(payload, signature, timestamp))
    except (ValueError, TypeError):
        return False
