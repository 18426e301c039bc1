"""A local OpenAI-compatible chat server that plays a RAGAS judge (OpenAI wire format).

``POST /v1/chat/completions`` answers with a chat.completion whose message content is a JSON
object built from the request's ``response_format.json_schema`` (what instructor sends in
JSON_SCHEMA mode): strings, integer verdicts of 1 (``noncommittal`` 0), one item per array. That is
a judge that agrees with everything — enough to prove the plumbing. ``mode="garbage"`` answers
with prose that is not JSON, like a small base model does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.vendors._http import FakeServer, Reply, Request


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        return _resolve(node, root)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        return _resolve(options[0] if options else {"type": "null"}, root)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(schema["allOf"][0], root)
    return schema


def instance(schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "") -> Any:
    """A value that validates against ``schema`` (the subset pydantic emits)."""
    root = root or schema
    s = _resolve(schema, root)
    kind = s.get("type")
    if "enum" in s:
        return s["enum"][0]
    if kind == "object" or "properties" in s:
        return {k: instance(v, root, k) for k, v in s.get("properties", {}).items()}
    if kind == "array":
        return [instance(s.get("items", {"type": "string"}), root, name)]
    if kind == "integer":
        return 0 if name in ("noncommittal",) else 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if name == "question":
        return "What does the answer say?"
    return f"the {name or 'text'} is supported by the context"


class JudgeServer(FakeServer):
    def __init__(self, mode: str = "agree") -> None:
        super().__init__()
        self.mode = mode

    def handle(self, request: Request) -> Reply:
        if request.method != "POST" or not request.path.rstrip("/").endswith("/chat/completions"):
            return Reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        return Reply(200, self.completion(request.body if isinstance(request.body, dict) else {}))

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.mode == "garbage":
            content = "Sure! The answer is definitely very good and I think 7 out of 10 maybe."
        else:
            rf = body.get("response_format") or {}
            schema = (rf.get("json_schema") or {}).get("schema") or rf.get("schema") or {"type": "object"}
            content = json.dumps(instance(schema))
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "judge"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }


@contextmanager
def serve_judge(mode: str = "agree") -> Iterator[JudgeServer]:
    server = JudgeServer(mode)
    server.start()
    try:
        yield server
    finally:
        server.stop()
