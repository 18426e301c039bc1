"""Fake Anthropic Messages server (https://docs.anthropic.com/en/api/messages).

``POST /v1/messages`` answers a ``message`` object, or, with ``stream: true``, the documented event
sequence: message_start, content_block_start, ping, content_block_delta (text_delta)...,
content_block_stop, message_delta (stop_reason, usage.output_tokens), message_stop. Prompt caching
is simulated: the prefix up to the last ``cache_control`` breakpoint is written on first sight
(``cache_creation_input_tokens``) and read afterwards (``cache_read_input_tokens``); the rest is
``input_tokens``. Errors use ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.vendors._http import FakeServer, Reply, Request, sse


def _count(text: str) -> int:
    return len(text.split())


class FakeAnthropic(FakeServer):
    def __init__(self, text: str = "This is a test answer.") -> None:
        super().__init__()
        self.text = text
        self.responder: Callable[[Request], str] | None = None
        self._cache: set[str] = set()

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def message_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    def _err(self, status: int, kind: str, message: str) -> Reply:
        return Reply(status, {"type": "error", "error": {"type": kind, "message": message},
                              "request_id": "req_fake"})

    def rate_limited(self) -> Reply:
        return self._err(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")

    def server_error(self, status: int = 500) -> Reply:
        return self._err(status, "overloaded_error" if status == 529 else "api_error", "Internal server error")

    def model_not_found(self, model: str = "nope") -> Reply:
        return self._err(404, "not_found_error", f"model: {model}")

    def malformed(self) -> Reply:
        return Reply(200, b'{"id": "msg_x", "type": "message", "content": [{"type": "te')

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        """Split the prompt into cached prefix (up to the last breakpoint) and the rest."""
        blocks: list[tuple[str, bool]] = []
        system = body.get("system")
        if isinstance(system, str):
            blocks.append((system, False))
        for b in system or []:
            if isinstance(b, dict):
                blocks.append((b.get("text", ""), "cache_control" in b))
        for m in body.get("messages", []):
            content = m.get("content")
            if isinstance(content, str):
                blocks.append((content, False))
            else:
                for b in content:
                    blocks.append((b.get("text", ""), "cache_control" in b))
        last = max((i for i, (_, c) in enumerate(blocks) if c), default=-1)
        prefix = json.dumps([t for t, _ in blocks[: last + 1]])
        prefix_tokens = sum(_count(t) for t, _ in blocks[: last + 1])
        rest = sum(_count(t) for t, _ in blocks[last + 1:])
        usage = {"input_tokens": rest, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if last >= 0:
            if prefix in self._cache:
                usage["cache_read_input_tokens"] = prefix_tokens
            else:
                self._cache.add(prefix)
                usage["cache_creation_input_tokens"] = prefix_tokens
        else:
            usage["input_tokens"] += prefix_tokens
        return usage

    def handle(self, request: Request) -> Reply:
        if request.path != "/v1/messages":
            return self._err(404, "not_found_error", "Not found")
        body = request.body or {}
        for key in ("model", "max_tokens", "messages"):
            if key not in body:
                return self._err(400, "invalid_request_error", f"{key}: Field required")
        model = body["model"]
        text = self.responder(request) if self.responder else self.text
        pieces = re.findall(r"\s*\S+", text)
        stop = "end_turn"
        if len(pieces) > int(body["max_tokens"]):
            pieces, stop = pieces[: int(body["max_tokens"])], "max_tokens"
        usage = self._usage(body)
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": "".join(pieces)}], "stop_reason": stop,
                   "stop_sequence": None, "usage": {**usage, "output_tokens": len(pieces),
                                                    "service_tier": "standard"}}
        if not body.get("stream"):
            return Reply(200, message)
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        events = [sse({"type": "message_start", "message": start}, "message_start"),
                  sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                      "content_block_start"),
                  sse({"type": "ping"}, "ping")]
        for p in pieces:
            events.append(sse({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": p}}, "content_block_delta"))
        events += [sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                   sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                        "usage": {"output_tokens": len(pieces)}}, "message_delta"),
                   sse({"type": "message_stop"}, "message_stop")]
        return Reply(200, events=events)
