"""A small threaded HTTP server for vendor fakes: scripted replies, recorded requests, SSE.

Each fake subclasses ``FakeServer`` and implements ``handle(request) -> Reply``. Tests queue
special replies (errors, malformed bodies) with ``enqueue``; otherwise the fake answers normally.
``act_then_fail(method, path)`` makes the next matching request do its work (the ticket, message or post
exists afterwards) and then answer 500, as a vendor does when it fails after committing: what the
client saw is an error, what the fake holds is the truth.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class _QuietServer(ThreadingHTTPServer):
    """A client that hung up mid-reply (a test of a timeout, a cancelled stream) is not an error of the fake:
    without this, socketserver prints a BrokenPipeError traceback from a daemon thread, often after
    pytest's summary line."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw: bytes = b""  # the body as sent (protobuf, form or signed payloads need the exact bytes)

    @property
    def json(self) -> Any:
        return self.body


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str/bytes -> raw
    headers: dict[str, str] = field(default_factory=dict)
    events: Iterable[bytes] | None = None  # server-sent events, already framed
    delay_s: float = 0.0


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: deque[Reply | Callable[[Request], Reply]] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._lose: list[tuple[str, str]] = []  # (method, path): act, then answer 500
        self.lost_responses = 0

    # --- to override
    def handle(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- scripting
    def enqueue(self, *replies: Reply | Callable[[Request], Reply]) -> None:
        self.script.extend(replies)

    def act_then_fail(self, method: str, path: str, times: int = 1) -> None:
        """The next ``times`` requests to ``method path`` are applied, then answered with a 500."""
        with self._lock:
            self._lose.extend([(method.upper(), path)] * times)

    def error(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return Reply(status=status, body=body, headers=headers or {})

    # --- lifecycle
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                parsed = urlparse(self.path)
                req = Request(self.command, parsed.path, parse_qs(parsed.query),
                              {k.lower(): v for k, v in self.headers.items()}, body, raw)
                with fake._lock:
                    fake.requests.append(req)
                    scripted = fake.script.popleft() if fake.script else None
                    lose = (req.method, req.path) in fake._lose
                    if lose:
                        fake._lose.remove((req.method, req.path))
                reply = scripted(req) if callable(scripted) else scripted or fake.handle(req)
                if lose and reply.status < 400:
                    with fake._lock:
                        fake.lost_responses += 1
                    reply = Reply(500, {"error": "internal error (the action was applied)"})
                if reply.delay_s:
                    import time
                    time.sleep(reply.delay_s)
                self._write(reply)

            def _write(self, reply: Reply) -> None:
                if reply.events is not None:
                    self.send_response(reply.status)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("cache-control", "no-cache")
                    self.send_header("connection", "close")
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    for event in reply.events:
                        self.wfile.write(event)
                        self.wfile.flush()
                    self.close_connection = True
                    return
                if isinstance(reply.body, (dict, list)):
                    data, ctype = json.dumps(reply.body).encode(), "application/json"
                elif isinstance(reply.body, bytes):
                    data, ctype = reply.body, "application/json"
                else:
                    data, ctype = str(reply.body or "").encode(), "application/json"
                self.send_response(reply.status)
                self.send_header("content-type", reply.headers.get("content-type", ctype))
                self.send_header("content-length", str(len(data)))
                for k, v in reply.headers.items():
                    if k.lower() != "content-type":
                        self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_POST = _serve
            do_GET = _serve
            do_PATCH = _serve
            do_PUT = _serve
            do_DELETE = _serve

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event frame."""
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
