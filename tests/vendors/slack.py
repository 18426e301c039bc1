"""A local Slack incoming-webhook server (Slack's wire format: JSON POST, 200 "ok" or 4xx reason)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.vendors._http import FakeServer, Reply, Request


class SlackWebhookServer(FakeServer):
    """Accepts posts to ``PATH``; anything else gets 404 ``no_service``."""

    PATH = "/services/T0000/B0000/XXXXXXXX"

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status = status
        self.messages: list[dict[str, Any]] = []

    @staticmethod
    def _text(code: int, text: str) -> Reply:
        return Reply(status=code, body=text, headers={"content-type": "text/html"})

    def handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != self.PATH:
            return self._text(404, "no_service")
        body = request.body
        if not isinstance(body, dict):
            return self._text(400, "invalid_payload")
        if not (body.get("text") or body.get("blocks")):
            return self._text(400, "no_text")
        if self.status != 200:
            return self._text(self.status, "rate_limited" if self.status == 429 else "server_error")
        self.messages.append(body)
        return self._text(200, "ok")

    @property
    def url(self) -> str:
        return super().url + self.PATH


@contextmanager
def serve_slack(status: int = 200) -> Iterator[SlackWebhookServer]:
    srv = SlackWebhookServer(status)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class SlackApiServer(FakeServer):
    """Slack's Web API: ``chat.postMessage`` (JSON, bearer token, HTTP 200 with ``ok``) and
    ``conversations.history`` with message metadata. ``down`` answers 503; a revoked token ``token_revoked``."""

    TOKEN = "xoxb-test-bot-token"

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.revoked = False
        self.posted: list[dict[str, Any]] = []

    def handle(self, request: Request) -> Reply:
        if self.down:
            return Reply(503, "service unavailable", headers={"content-type": "text/plain"})
        if request.headers.get("authorization") != f"Bearer {self.TOKEN}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        if self.revoked:
            return Reply(200, {"ok": False, "error": "token_revoked"})
        if request.path == "/api/chat.postMessage" and request.method == "POST":
            body = request.body if isinstance(request.body, dict) else {}
            if not body.get("channel"):
                return Reply(200, {"ok": False, "error": "channel_not_found"})
            if not (body.get("text") or body.get("blocks")):
                return Reply(200, {"ok": False, "error": "no_text"})
            ts = f"1700000000.{len(self.posted) + 1:06d}"
            msg = {"ts": ts, "text": body.get("text"), "blocks": body.get("blocks"), "metadata": body.get("metadata")}
            self.posted.append({**body, "ts": ts})
            return Reply(200, {"ok": True, "channel": body["channel"], "ts": ts, "message": msg})
        if request.path == "/api/conversations.history":
            channel = (request.query.get("channel") or [""])[0]
            msgs = [{"ts": m["ts"], "text": m.get("text"), "metadata": m.get("metadata")}
                    for m in reversed(self.posted) if m["channel"] == channel]
            return Reply(200, {"ok": True, "messages": msgs, "has_more": False})
        return Reply(200, {"ok": False, "error": "unknown_method"})
