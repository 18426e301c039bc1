"""Fake OpenAI Chat Completions server (https://platform.openai.com/docs/api-reference/chat).

Answers ``POST /v1/chat/completions`` with ``chat.completion`` objects, or ``chat.completion.chunk``
server-sent events ending in ``data: [DONE]`` when ``stream`` is true (a usage chunk with empty
``choices`` first when ``stream_options.include_usage``), with ``logprobs.content`` when asked, and
``GET /v1/models``. Errors use OpenAI's ``{"error": {...}}`` body.

    with FakeOpenAI(text="Refunds take 5-7 days.") as fake:
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        fake.enqueue(fake.rate_limited())        # next request gets a 429
        fake.responder = lambda req: "custom"    # or compute the answer from the request

The evaluation developer reuses this for the RAGAS judge: set ``responder`` to return the judge's JSON.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

from tests.vendors._http import FakeServer, Reply, Request, sse


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = 0
    for m in messages or []:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += 4 + len(str(content or "").split())
    return total


class FakeOpenAI(FakeServer):
    def __init__(self, text: str = "This is a test answer.", *, logprob: float = -0.05, cached_tokens: int = 0,
                 model: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.logprob = logprob
        self.cached_tokens = cached_tokens
        self.model = model
        self.responder: Callable[[Request], str] | None = None

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # --- canned errors
    def rate_limited(self, retry_after: float | None = None) -> Reply:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return Reply(429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                                     "param": None, "code": "rate_limit_exceeded"}}, headers)

    def server_error(self, status: int = 500) -> Reply:
        return Reply(status, {"error": {"message": "The server had an error while processing your request.",
                                        "type": "server_error", "param": None, "code": None}})

    def model_not_found(self, model: str = "nope") -> Reply:
        return Reply(404, {"error": {"message": f"The model `{model}` does not exist or you do not have access to it.",
                                     "type": "invalid_request_error", "param": None, "code": "model_not_found"}})

    def malformed(self) -> Reply:
        return Reply(200, b'{"id": "chatcmpl-x", "choices": [{"index": 0, "message": {"role": "assist')

    # --- wire format
    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path.endswith("/models"):
            return Reply(200, {"object": "list", "data": [{"id": self.model or "gpt-4o-mini", "object": "model",
                                                          "created": 0, "owned_by": "fake"}]})
        if not request.path.endswith("/chat/completions"):
            return Reply(404, {"error": {"message": "Unknown request URL", "type": "invalid_request_error",
                                         "param": None, "code": "unknown_url"}})
        body = request.body or {}
        model = self.model or body.get("model", "gpt-4o-mini")
        text = self.responder(request) if self.responder else self.text
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        pieces = _tokens(text)
        finish = "stop"
        if limit is not None and len(pieces) > int(limit):
            pieces, finish = pieces[: int(limit)], "length"
        text = "".join(pieces)
        want_lp = bool(body.get("logprobs"))
        prompt_tokens = count_prompt_tokens(body.get("messages", []))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                 "total_tokens": prompt_tokens + len(pieces),
                 "prompt_tokens_details": {"cached_tokens": min(self.cached_tokens, prompt_tokens), "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                               "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        created = int(time.time())

        def lp(tok: str) -> dict[str, Any]:
            return {"token": tok, "logprob": self.logprob, "bytes": list(tok.encode()),
                    "top_logprobs": [{"token": tok, "logprob": self.logprob, "bytes": list(tok.encode())}]}

        if not body.get("stream"):
            return Reply(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "fp_fake", "service_tier": "default",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                                     "annotations": []},
                             "logprobs": {"content": [lp(t) for t in pieces], "refusal": None} if want_lp else None,
                             "finish_reason": finish}],
                "usage": usage,
            })

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None) -> bytes:
            return sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                        "system_fingerprint": "fp_fake",
                        "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]})

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        for tok in pieces:
            events.append(chunk({"content": tok}, None, {"content": [lp(tok)], "refusal": None} if want_lp else None))
        events.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                               "model": model, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return Reply(200, events=events)


def geometric_mean_probability(logprob: float) -> float:
    return math.exp(logprob)
