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
