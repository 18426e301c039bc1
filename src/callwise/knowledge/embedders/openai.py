"""OpenAI embeddings (``POST /v1/embeddings``) through the official ``openai`` SDK.

``base_url`` (``CALLWISE_EMBEDDING_BASE_URL``, else ``OPENAI_BASE_URL``) reaches Azure-style proxies
or any server speaking the same wire format. OpenAI embeds queries and documents alike. Up to 2048
inputs a request; 256 are sent so a request stays well under the 300,000-token cap.
"""

from __future__ import annotations

from typing import Any

from callwise.knowledge.embedders.base import CloudEmbedder, EmbeddingError, InputType


class OpenAIEmbedder(CloudEmbedder):
    vendor = "openai"
    DEFAULT_MODEL = "text-embedding-3-small"
    KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
    max_batch = 256

    def __init__(self, api_key: str, model: str = DEFAULT_MODEL, *, base_url: str | None = None,
                 timeout_s: float = 30.0, max_retries: int = 2, dimensions: int | None = None,
                 batch_size: int | None = None) -> None:
        import openai

        super().__init__(model, dimensions=dimensions, batch_size=batch_size, max_seq_length=8191)
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url or None, timeout=timeout_s,
                                     max_retries=max_retries)

    def _embed_batch(self, texts: list[str], input_type: InputType) -> tuple[list[list[float]], int]:
        import openai

        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        try:
            resp = self._client.embeddings.create(model=self.model, input=texts, **extra)
        except openai.APIStatusError as exc:
            status = exc.status_code
            raise EmbeddingError(f"openai: embeddings with {self.model} failed with HTTP {status}: {_reason(exc)}",
                                 status=status, retryable=status == 429 or status >= 500) from exc
        except openai.APIError as exc:  # connection errors, timeouts
            raise EmbeddingError(f"openai: embeddings with {self.model} failed: {exc}", retryable=True) from exc
        except ValueError as exc:  # a reply that is not the embeddings JSON
            raise EmbeddingError(f"openai: unreadable reply to embeddings with {self.model}: {exc}") from exc
        try:
            data = sorted(resp.data, key=lambda d: d.index)
            vecs = [list(d.embedding) for d in data]
        except (AttributeError, TypeError) as exc:
            raise EmbeddingError(f"openai: unreadable reply to embeddings with {self.model}: {resp!r:.200}") from exc
        billed = int(resp.usage.total_tokens or 0) if getattr(resp, "usage", None) is not None else 0
        return vecs, billed


def _reason(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        return str(err.get("message") if isinstance(err, dict) else err)
    return str(exc)[:300]
