"""A local OpenAI embeddings server in OpenAI's wire format (``POST /v1/embeddings``).

Request: ``{model, input: str | [str], encoding_format?: "float" | "base64", dimensions?}``; reply:
``{object: "list", data: [{object: "embedding", index, embedding}], model, usage: {prompt_tokens,
total_tokens}}``. With ``encoding_format=base64`` (what the official SDK asks for by default) each
embedding is the base64 of little-endian float32s. Errors as ``{error: {message, type, code}}``.
"""

from __future__ import annotations

import base64
import struct

from tests.vendors._embed import bag_of_words
from tests.vendors._http import FakeServer, Reply, Request

MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


def _error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})


class OpenAIEmbedServer(FakeServer):
    API_KEY = "sk-test-key"

    def handle(self, request: Request) -> Reply:
        if request.path != "/v1/embeddings" or request.method != "POST":
            return _error(404, f"Unknown request URL: {request.method} {request.path}")
        if request.headers.get("authorization", "") != f"Bearer {self.API_KEY}":
            return _error(401, "Incorrect API key provided", "authentication_error")
        body = request.json or {}
        model, inputs = body.get("model"), body.get("input")
        if model not in MODELS:
            return _error(404, f"The model `{model}` does not exist")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or len(inputs) > 2048 or any(not i for i in inputs):
            return _error(400, "'input' must be a non-empty string or a list of 1 to 2048 non-empty strings")
        dims = body.get("dimensions")
        if dims is not None and model == "text-embedding-ada-002":
            return _error(400, "This model does not support specifying dimensions.")
        dim = dims or MODELS[model]
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(inputs):
            vec = bag_of_words(text, dim, salt="openai")
            emb: object = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(len(t.split()) for t in inputs)
        return Reply(200, {"object": "list", "data": data, "model": model,
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
