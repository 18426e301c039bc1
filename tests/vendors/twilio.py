"""A local Twilio REST API for SMS in its documented wire format: ``POST /2010-04-01/Accounts/{Sid}/Messages.json``
(form-encoded, Basic AccountSid:AuthToken) -> 201 message JSON; ``GET .../Messages.json`` with ``To``, ``From``,
``DateSent>=`` filters; errors ``{"code", "message", "more_info", "status"}``. Also signs webhooks the way
Twilio does (``X-Twilio-Signature``)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from tests.vendors._http import FakeServer, Reply, Request

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "twilio-auth-token-0123456789abcdef"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PATH = re.compile(r"^/2010-04-01/Accounts/(AC\w+)/Messages\.json$")


def signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


class TwilioServer(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.down = False

    def _err(self, status: int, code: int, message: str) -> Reply:
        return Reply(status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                              "status": status})

    def handle(self, request: Request) -> Reply:
        if self.down:
            return self._err(503, 20500, "Service unavailable")
        m = _PATH.match(request.path)
        if not m:
            return self._err(404, 20404, "The requested resource was not found")
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if m.group(1) != ACCOUNT_SID or request.headers.get("authorization") != expected:
            return self._err(401, 20003, "Authenticate")
        if request.method == "GET":
            to, from_ = (request.query.get("To") or [None])[0], (request.query.get("From") or [None])[0]
            found = [x for x in self.messages if (to is None or x["to"] == to) and (from_ is None or x["from"] == from_)]
            return Reply(200, {"messages": list(reversed(found)), "end": len(found), "first_page_uri": request.path,
                               "next_page_uri": None, "page": 0, "page_size": 50, "previous_page_uri": None,
                               "start": 0, "uri": request.path})
        form = dict(parse_qsl(request.raw.decode()))
        if not _E164.match(form.get("To", "")):
            return self._err(400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number.")
        if not form.get("Body"):
            return self._err(400, 21602, "Message body is required.")
        now = format_datetime(datetime.now(UTC))
        msg = {"sid": f"SM{len(self.messages) + 1:032d}", "account_sid": ACCOUNT_SID, "to": form["To"],
               "from": form.get("From"), "body": form["Body"], "status": "queued", "num_segments": "1",
               "direction": "outbound-api", "date_created": now, "date_updated": now, "date_sent": None,
               "error_code": None, "error_message": None, "price": None, "api_version": "2010-04-01",
               "status_callback": form.get("StatusCallback"),
               "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/SM{len(self.messages) + 1:032d}.json"}
        self.messages.append(msg)
        return Reply(201, msg)
