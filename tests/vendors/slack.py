"""A local Slack incoming-webhook server (Slack's wire format: JSON POST, 200 "ok" or 4xx reason)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SlackWebhookServer:
    """Accepts posts to ``/services/T000/B000/XXXX``; anything else gets 404 ``no_service``."""

    PATH = "/services/T0000/B0000/XXXXXXXX"

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.messages: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != SlackWebhookServer.PATH:
                    return self._send(404, "no_service")
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(400, "invalid_payload")
                if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                    return self._send(400, "no_text")
                if server.status != 200:
                    return self._send(server.status, "rate_limited" if server.status == 429 else "server_error")
                server.messages.append(body)
                self._send(200, "ok")

            def _send(self, code: int, text: str) -> None:
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.PATH}"


@contextmanager
def serve_slack(status: int = 200) -> Iterator[SlackWebhookServer]:
    srv = SlackWebhookServer(status)
    srv._thread.start()
    try:
        yield srv
    finally:
        srv._httpd.shutdown()
        srv._httpd.server_close()
