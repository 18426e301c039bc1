"""A local Voyage AI embeddings server in Voyage's wire format (``POST /v1/embeddings``).

Request: ``{input: str | [str], model, input_type?: null | "query" | "document", truncation?,
output_dimension?}``; reply: ``{object: "list", data: [{object: "embedding", embedding, index}],
model, usage: {total_tokens}}``. Errors as ``{detail}``; more than 1000 inputs is a 400.
"""

from __future__ import annotations

from tests.vendors._embed import bag_of_words
from tests.vendors._http import FakeServer, Reply, Request

MODELS = {"voyage-3.5": 1024, "voyage-3.5-lite": 1024, "voyage-3-lite": 512}


class VoyageServer(FakeServer):
    API_KEY = "pa-test-key"

    def handle(self, request: Request) -> Reply:
        if request.path != "/v1/embeddings" or request.method != "POST":
            return Reply(404, {"detail": "Not Found"})
        if request.headers.get("authorization", "") != f"Bearer {self.API_KEY}":
            return Reply(401, {"detail": "Provided API key is invalid."})
        body = request.json or {}
        model, inputs, input_type = body.get("model"), body.get("input"), body.get("input_type")
        if model not in MODELS:
            return Reply(400, {"detail": f"Model {model} is not supported."})
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or len(inputs) > 1000:
            return Reply(400, {"detail": "input must be a string or a list of 1 to 1000 strings"})
        if input_type not in (None, "query", "document"):
            return Reply(400, {"detail": "input_type must be null, 'query' or 'document'"})
        dim = body.get("output_dimension") or MODELS[model]
        prefix = {"query": "represent query", "document": "represent document"}.get(input_type or "", "")
        data = [{"object": "embedding", "embedding": bag_of_words(t, dim, salt="voyage", prefix=prefix), "index": i}
                for i, t in enumerate(inputs)]
        return Reply(200, {"object": "list", "data": data, "model": model,
                           "usage": {"total_tokens": sum(len(t.split()) for t in inputs)}})
