"""Cohere Embed (API v2, ``POST /v2/embed``) through the official ``cohere`` SDK's ``ClientV2``.

Documents are embedded as ``search_document`` and queries as ``search_query``; 96 texts a request
(the API's limit); over-long texts are cut at the end (``truncate=END``) rather than failing an ingest.
``COHERE_BASE_URL`` points it at a proxy or a local server.
"""

from __future__ import annotations

from typing import Any

from callwise.knowledge.embedders.base import CloudEmbedder, EmbeddingError, InputType


class CohereEmbedder(CloudEmbedder):
    vendor = "cohere"
    DEFAULT_MODEL = "embed-v4.0"
    KNOWN_DIMS = {"embed-v4.0": 1536, "embed-english-v3.0": 1024, "embed-multilingual-v3.0": 1024,
                  "embed-english-light-v3.0": 384, "embed-multilingual-light-v3.0": 384}
    max_batch = 96

    def __init__(self, api_key: str, model: str = DEFAULT_MODEL, *, base_url: str | None = None,
                 timeout_s: float = 30.0, max_retries: int = 2, dimensions: int | None = None,
                 batch_size: int | None = None) -> None:
        import cohere

        super().__init__(model, dimensions=dimensions, batch_size=batch_size, max_seq_length=512)
        kwargs: dict[str, Any] = {"api_key": api_key, "timeout": timeout_s, "max_retries": max_retries}
        if base_url:
            kwargs["base_url"] = base_url.rstrip("/")
        self._client = cohere.ClientV2(**kwargs)

    def _embed_batch(self, texts: list[str], input_type: InputType) -> tuple[list[list[float]], int]:
        import httpx
        from cohere.core.api_error import ApiError

        extra: dict[str, Any] = {"output_dimension": self.dimensions} if self.dimensions else {}
        try:
            resp = self._client.embed(
                model=self.model, texts=texts, embedding_types=["float"], truncate="END",
                input_type="search_document" if input_type == "document" else "search_query", **extra)
        except ApiError as exc:
            status = exc.status_code
            raise EmbeddingError(f"cohere: embed with {self.model} failed with HTTP {status}: {_reason(exc.body)}",
                                 status=status, retryable=status is not None and (status == 429 or status >= 500)) from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise EmbeddingError(f"cohere: embed with {self.model} failed: {exc}", retryable=True) from exc
        vecs = resp.embeddings.float_ if resp.embeddings is not None else None
        if vecs is None:
            raise EmbeddingError(f"cohere: the reply to embed with {self.model} has no float embeddings")
        billed = 0
        if resp.meta is not None and resp.meta.billed_units is not None:
            billed = int(resp.meta.billed_units.input_tokens or 0)
        return [list(v) for v in vecs], billed


def _reason(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body)
    return str(body)[:300]
