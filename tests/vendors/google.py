"""Fake Gemini API server (https://ai.google.dev/api/generate-content).

``POST /v1beta/models/{model}:generateContent`` answers a GenerateContentResponse (camelCase:
``candidates[].content.parts[].text``, ``finishReason``, ``avgLogprobs``, ``usageMetadata`` with
``promptTokenCount``, ``candidatesTokenCount``, ``cachedContentTokenCount``); ``:streamGenerateContent?alt=sse``
answers ``data: {GenerateContentResponse}`` events, the last carrying finishReason and usage.
Errors use Google's ``{"error": {"code", "message", "status"}}``. Point the SDK at it with
``genai.Client(api_key=..., http_options=types.HttpOptions(base_url=fake.url))``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.vendors._http import FakeServer, Reply, Request, sse

_PATH = re.compile(r"^/(v1beta|v1|v1alpha)/models/([^:]+):(generateContent|streamGenerateContent)$")


class FakeGemini(FakeServer):
    def __init__(self, text: str = "This is a test answer.", *, avg_logprob: float = -0.05, cached_tokens: int = 0) -> None:
        super().__init__()
        self.text = text
        self.avg_logprob = avg_logprob
        self.cached_tokens = cached_tokens
        self.responder: Callable[[Request], str] | None = None

    @property
    def generate_requests(self) -> list[Request]:
        return [r for r in self.requests if _PATH.match(r.path)]

    def _err(self, code: int, status: str, message: str) -> Reply:
        return Reply(code, {"error": {"code": code, "message": message, "status": status}})

    def rate_limited(self) -> Reply:
        return self._err(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")

    def server_error(self, code: int = 500) -> Reply:
        return self._err(code, "INTERNAL" if code == 500 else "UNAVAILABLE", "An internal error has occurred.")

    def model_not_found(self, model: str = "nope") -> Reply:
        return self._err(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta, or is not supported "
                                           "for generateContent.")

    def malformed(self) -> Reply:
        return Reply(200, b'{"candidates": [{"content": {"parts": [{"text": "Hel')

    def handle(self, request: Request) -> Reply:
        m = _PATH.match(request.path)
        if not m or request.method != "POST":
            return self._err(404, "NOT_FOUND", "Not found")
        model, method = m.group(2), m.group(3)
        body = request.body or {}
        cfg = body.get("generationConfig") or {}
        text = self.responder(request) if self.responder else self.text
        pieces = re.findall(r"\s*\S+", text)
        finish = "STOP"
        limit = cfg.get("maxOutputTokens")
        if limit is not None and len(pieces) > int(limit):
            pieces, finish = pieces[: int(limit)], "MAX_TOKENS"
        prompt_tokens = sum(len(str(p.get("text", "")).split()) for c in body.get("contents", [])
                            for p in c.get("parts", []))
        sys_parts = (body.get("systemInstruction") or {}).get("parts", [])
        prompt_tokens += sum(len(str(p.get("text", "")).split()) for p in sys_parts)
        usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": len(pieces),
                 "totalTokenCount": prompt_tokens + len(pieces),
                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}]}
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = min(self.cached_tokens, prompt_tokens)

        def candidate(parts: list[str], final: bool) -> dict[str, Any]:
            c: dict[str, Any] = {"content": {"parts": [{"text": "".join(parts)}], "role": "model"}, "index": 0}
            if final:
                c["finishReason"] = finish
                c["avgLogprobs"] = self.avg_logprob
            if final and cfg.get("responseLogprobs"):
                c["logprobsResult"] = {"chosenCandidates": [{"token": p, "logProbability": self.avg_logprob}
                                                            for p in pieces], "topCandidates": []}
            return c

        if method == "generateContent":
            return Reply(200, {"candidates": [candidate(pieces, True)], "usageMetadata": usage,
                               "modelVersion": model, "responseId": "fake-response"})
        if request.query.get("alt") != ["sse"]:
            return self._err(400, "INVALID_ARGUMENT", "streaming needs alt=sse in this fake")
        events = []
        for i, p in enumerate(pieces):
            final = i == len(pieces) - 1
            events.append(sse({"candidates": [candidate([p], final)],
                               "usageMetadata": usage if final else {"promptTokenCount": prompt_tokens},
                               "modelVersion": model, "responseId": "fake-response"}))
        return Reply(200, events=events)
