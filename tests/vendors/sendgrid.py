"""A local SendGrid v3 API: ``POST /v3/mail/send`` -> 202, empty body, ``X-Message-Id``; the Email Activity lookup
``GET /v3/messages?query=unique_args['callwise_key']="..."``; errors ``{"errors": [{"field", "message"}]}``.
Also signs event-webhook posts with a P-256 key the way SendGrid does."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.vendors._http import FakeServer, Reply, Request

API_KEY = "SG.test-key.0123456789"
_KEY_QUERY = re.compile(r"unique_args\['callwise_key'\]=\"([^\"]+)\"")


class EventSigner:
    """SendGrid's side of the signed event webhook: ECDSA P-256 / SHA-256 over timestamp + body."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode()

    def sign(self, payload: str, timestamp: str) -> str:
        return base64.b64encode(self.private.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))).decode()


class SendGridServer(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.mails: list[dict[str, Any]] = []
        self.down = False

    def handle(self, request: Request) -> Reply:
        if self.down:
            return Reply(503, {"errors": [{"field": None, "message": "service unavailable"}]})
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return Reply(401, {"errors": [{"field": None, "message": "The provided authorization grant is invalid, "
                                           "expired, or revoked"}]})
        if request.path == "/v3/mail/send" and request.method == "POST":
            body = request.body if isinstance(request.body, dict) else {}
            if not body.get("personalizations") or not body.get("from"):
                return Reply(400, {"errors": [{"field": "personalizations", "message": "required"}]})
            msg_id = secrets.token_urlsafe(16)
            self.mails.append({**body, "msg_id": msg_id})
            return Reply(202, b"", headers={"X-Message-Id": msg_id})
        if request.path == "/v3/messages" and request.method == "GET":
            m = _KEY_QUERY.search((request.query.get("query") or [""])[0])
            key = m.group(1) if m else None
            found = [{"msg_id": x["msg_id"], "status": "delivered"} for x in self.mails
                     if (x.get("custom_args") or {}).get("callwise_key") == key]
            return Reply(200, {"messages": found[:1]})
        return Reply(404, {"errors": [{"field": None, "message": "not found"}]})
