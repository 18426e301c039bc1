"""A local Cohere Embed server in Cohere's v2 wire format (``POST /v2/embed``).

Request: ``{model, texts, input_type, embedding_types, truncate?, output_dimension?}``; reply:
``{id, embeddings: {float: [[...]]}, texts, meta: {api_version, billed_units: {input_tokens}},
response_type: "embeddings_by_type"}``. More than 96 texts, a missing input_type (required for v3+
models) or an unknown model is a 400 with ``{message}``, as the API does.
"""

from __future__ import annotations

import uuid

from tests.vendors._embed import bag_of_words
from tests.vendors._http import FakeServer, Reply, Request

MODELS = {"embed-v4.0": 1536, "embed-english-v3.0": 1024, "embed-english-light-v3.0": 384}


class CohereEmbedServer(FakeServer):
    API_KEY = "co-test-key"

    def handle(self, request: Request) -> Reply:
        if request.path != "/v2/embed" or request.method != "POST":
            return Reply(404, {"message": f"no route {request.method} {request.path}"})
        if request.headers.get("authorization", "").lower() != f"bearer {self.API_KEY}":
            return Reply(401, {"message": "invalid api token"})
        body = request.json or {}
        model, texts, input_type = body.get("model"), body.get("texts"), body.get("input_type")
        if model not in MODELS:
            return Reply(400, {"message": f"model '{model}' not found"})
        if not isinstance(texts, list) or not texts or len(texts) > 96:
            return Reply(400, {"message": "invalid request: texts must be a list of 1 to 96 strings"})
        if input_type not in ("search_document", "search_query", "classification", "clustering"):
            return Reply(400, {"message": "invalid request: input_type is required for embed models v3 and higher"})
        if body.get("embedding_types", ["float"]) != ["float"]:
            return Reply(400, {"message": "this fake only serves float embeddings"})
        dim = body.get("output_dimension") or MODELS[model]
        vecs = [bag_of_words(t, dim, salt="cohere", prefix=input_type) for t in texts]
        return Reply(200, {
            "id": str(uuid.uuid4()),
            "embeddings": {"float": vecs},
            "texts": texts,
            "meta": {"api_version": {"version": "2"},
                     "billed_units": {"input_tokens": sum(len(t.split()) for t in texts)}},
            "response_type": "embeddings_by_type",
        })
