"""Survey SMS through Twilio's official SDK, and Twilio webhook signatures.

Send: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded, Basic AccountSid:AuthToken) ->
201 ``{sid, status: queued, ...}``; errors ``{"code": 21211, "message", "status": 400}``, 429 / 20429 on too much
concurrency. The SDK has no base-URL argument, so :class:`RedirectingHttpClient` (a ``TwilioHttpClient``
subclass, as the SDK's own custom-client example does) rewrites ``https://api.twilio.com`` to
``CALLWISE_TWILIO_BASE_URL``. The SDK is synchronous (requests); calls run in a thread.

Twilio has no idempotency key for messages: before a retry, :meth:`TwilioSMS.find_sent` lists the messages
from our number to the recipient since the row was made and matches the exact body (which carries the
survey's reference), so a crash between sending and marking does not send twice.

Inbound webhooks carry ``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, full URL + each POST parameter
sorted by name, name+value)); :func:`valid_signature` checks it with the SDK's ``RequestValidator``.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from callwise.integrations.errors import VendorError

DEFAULT_BASE_URL = "https://api.twilio.com"
_TWILIO_HOST = re.compile(r"^https://api\.twilio\.com")

TwilioError = VendorError  # one error type for every vendor (callwise.integrations.errors)


class RedirectingHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to ``base_url`` instead of ``https://api.twilio.com``."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(timeout=kwargs.pop("timeout", 10), **kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().request(method, _TWILIO_HOST.sub(self.base_url, url), *args, **kwargs)


def _error(exc: Exception) -> TwilioError:
    if isinstance(exc, TwilioRestException):
        status = exc.status
        text = f"Twilio {status} (code {exc.code}): {exc.msg}"
        return TwilioError(text, retryable=status == 429 or status >= 500 or exc.code == 20429,
                           auth=status in (401, 403) or exc.code == 20003)
    return TwilioError(f"Twilio unreachable: {type(exc).__name__}")


class TwilioSMS:
    def __init__(self, account_sid: str, auth_token: str, *, base_url: str = DEFAULT_BASE_URL) -> None:
        http = RedirectingHttpClient(base_url) if base_url.rstrip("/") != DEFAULT_BASE_URL else TwilioHttpClient(timeout=10)
        self.client = Client(account_sid, auth_token, http_client=http)

    async def send(self, *, to: str, from_: str, body: str, status_callback: str | None = None) -> str:
        kwargs: dict[str, Any] = {"to": to, "from_": from_, "body": body}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            msg = await asyncio.to_thread(self.client.messages.create, **kwargs)
        except (TwilioException, OSError) as exc:
            raise _error(exc) from exc
        except Exception as exc:  # noqa: BLE001 - requests' ConnectionError and friends
            raise _error(exc) from exc
        return str(msg.sid)

    async def find_sent(self, *, to: str, from_: str, body: str, since: datetime) -> str | None:
        try:
            msgs = await asyncio.to_thread(self.client.messages.list, to=to, from_=from_, date_sent_after=since,
                                           limit=50)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc) from exc
        for m in msgs:
            if (m.body or "") == body:
                return str(m.sid)
        return None


def valid_signature(auth_token: str, url: str, params: dict[str, str], signature: str) -> bool:
    return bool(signature) and RequestValidator(auth_token).validate(url, params, signature)
