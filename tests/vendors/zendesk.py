"""A local Zendesk in its documented wire format: OAuth refresh with rotation (``POST /oauth/tokens``, JSON
body), tickets (``POST /api/v2/tickets.json`` -> 201 ``{"ticket", "audit"}``), lookup by ``external_id``,
429 with ``Retry-After`` and 422 ``RecordInvalid``."""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Any

from tests.vendors._http import FakeServer, Reply, Request

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ZendeskServer(FakeServer):
    CLIENT_ID = "callwise_test"
    CLIENT_SECRET = "zd-client-secret"

    def __init__(self) -> None:
        super().__init__()
        self.access_token = "zd-access-1"
        self.refresh_token = "zd-refresh-1"
        self.tickets: dict[int, dict[str, Any]] = {}
        self.creates = 0
        self.refreshes = 0
        self.down = False
        self.next_id = 4521
        self.refresh_delay_s = 0.0  # hold refresh requests so concurrent ones overlap
        self.refused_refreshes = 0
        self._token_lock = threading.Lock()

    def expire_access(self) -> None:
        self.access_token = "expired-" + secrets.token_hex(4)

    def handle(self, request: Request) -> Reply:
        if self.down:
            return Reply(503, {"error": "ServiceUnavailable"})
        if request.path == "/oauth/tokens" and request.method == "POST":
            return self._token(request)
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return Reply(401, {"error": "invalid_token", "error_description": "The access token provided is expired, "
                               "revoked, malformed or invalid for other reasons."})
        if request.path == "/api/v2/tickets.json" and request.method == "GET":
            ext = (request.query.get("external_id") or [""])[0]
            found = [t for t in self.tickets.values() if t["external_id"] == ext]
            return Reply(200, {"tickets": found, "count": len(found), "next_page": None, "previous_page": None})
        if request.path == "/api/v2/tickets.json" and request.method == "POST":
            return self._create(request)
        return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _token(self, request: Request) -> Reply:
        time.sleep(self.refresh_delay_s)
        with self._token_lock:  # one refresh at a time, as the real token store: the first rotates, the next is refused
            return self._token_locked(request)

    def _token_locked(self, request: Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("grant_type") != "refresh_token" or body.get("client_id") != self.CLIENT_ID or \
                body.get("client_secret") != self.CLIENT_SECRET:
            return Reply(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
        if body.get("refresh_token") != self.refresh_token:
            self.refused_refreshes += 1
            return Reply(400, {"error": "invalid_grant", "error_description": "The provided authorization grant is "
                               "invalid, expired, revoked, or was issued to another client."})
        self.refreshes += 1
        self.access_token = f"zd-access-{self.refreshes + 1}"
        self.refresh_token = f"zd-refresh-{self.refreshes + 1}"  # rotation: the old pair is dead now
        return Reply(200, {"access_token": self.access_token, "refresh_token": self.refresh_token,
                           "token_type": "bearer", "scope": "tickets:write read", "expires_in": 172800,
                           "refresh_token_expires_in": 7776000})

    def _create(self, request: Request) -> Reply:
        ticket = (request.body or {}).get("ticket") if isinstance(request.body, dict) else None
        if not isinstance(ticket, dict):
            return Reply(400, {"error": "InvalidJSON"})
        details: dict[str, list[dict[str, str]]] = {}
        if not (ticket.get("comment") or {}).get("body"):
            details["base"] = [{"description": "Description: cannot be blank", "error": "BlankValue"}]
        email = (ticket.get("requester") or {}).get("email")
        if email is not None and not _EMAIL.match(email):
            details["requester"] = [{"description": f"Requester: Email {email} is not properly formatted",
                                     "error": "InvalidValue"}]
        if details:
            return Reply(422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details})
        self.creates += 1
        tid = self.next_id
        self.next_id += 1
        stored = {"id": tid, "url": f"{self.url}/api/v2/tickets/{tid}.json", "external_id": ticket.get("external_id"),
                  "subject": ticket.get("subject"), "priority": ticket.get("priority"), "tags": ticket.get("tags", []),
                  "status": "new", "description": ticket["comment"]["body"], "requester": ticket.get("requester")}
        self.tickets[tid] = stored
        return Reply(201, {"ticket": stored, "audit": {"id": tid * 10, "ticket_id": tid, "events": []}})
