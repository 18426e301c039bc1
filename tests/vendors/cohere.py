"""A local Cohere Rerank server in Cohere's v2 wire format (POST /v2/rerank).

Scores a document by the share of query words it contains, so the order it returns is meaningful
and deterministic. Script errors and slow replies with ``enqueue`` (see ``_http.FakeServer``).
"""

from __future__ import annotations

import re
import uuid

from tests.vendors._http import FakeServer, Reply, Request


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text.lower()))


class CohereServer(FakeServer):
    API_KEY = "co-test-key"

    def handle(self, request: Request) -> Reply:
        if request.path != "/v2/rerank" or request.method != "POST":
            return Reply(404, {"message": f"no route {request.method} {request.path}"})
        if request.headers.get("authorization", "").lower() != f"bearer {self.API_KEY}":
            return Reply(401, {"message": "invalid api token"})
        body = request.json or {}
        query, docs = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not query or not isinstance(docs, list) or not body.get("model"):
            return Reply(400, {"message": "invalid request: model, query and documents are required"})
        if len(docs) > 1000:
            return Reply(400, {"message": "too many documents"})
        q = _words(query)
        scored = []
        for i, d in enumerate(docs):
            text = d if isinstance(d, str) else str(d.get("text", ""))
            overlap = len(q & _words(text)) / (len(q) or 1)
            scored.append({"index": i, "relevance_score": round(overlap, 6)})
        scored.sort(key=lambda r: (-r["relevance_score"], r["index"]))
        top_n = body.get("top_n") or len(scored)
        return Reply(200, {
            "id": str(uuid.uuid4()),
            "results": scored[:top_n],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
        })
