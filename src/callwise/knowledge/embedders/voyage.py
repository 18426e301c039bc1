"""Voyage AI embeddings over its HTTP API (``POST {base}/embeddings``, base ``https://api.voyageai.com/v1``)
with httpx; no SDK (the ``voyageai`` package pulls in a tokenizer stack we do not need).

Documents are sent with ``input_type=document`` and queries with ``query``; ``truncation`` is on so an
over-long chunk is cut rather than failing an ingest; 128 texts a request. Rate limits (429) and
server errors are retried twice, honouring ``Retry-After``.
"""

from __future__ import annotations

import time
from typing import Any

from callwise.knowledge.embedders.base import CloudEmbedder, EmbeddingError, InputType

DEFAULT_BASE_URL = "https://api.voyageai.com/v1"


class VoyageEmbedder(CloudEmbedder):
    vendor = "voyage"
    DEFAULT_MODEL = "voyage-3.5"
    KNOWN_DIMS = {"voyage-3.5": 1024, "voyage-3.5-lite": 1024, "voyage-3-large": 1024, "voyage-code-3": 1024,
                  "voyage-3": 1024, "voyage-3-lite": 512, "voyage-context-3": 1024}
    max_batch = 128

    def __init__(self, api_key: str, model: str = DEFAULT_MODEL, *, base_url: str | None = None,
                 timeout_s: float = 30.0, max_retries: int = 2, dimensions: int | None = None,
                 batch_size: int | None = None, backoff_s: float = 0.5) -> None:
        import httpx

        super().__init__(model, dimensions=dimensions, batch_size=batch_size, max_seq_length=32000)
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._http = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"})

    def _embed_batch(self, texts: list[str], input_type: InputType) -> tuple[list[list[float]], int]:
        import httpx

        body: dict[str, Any] = {"input": texts, "model": self.model, "input_type": input_type, "truncation": True}
        if self.dimensions:
            body["output_dimension"] = self.dimensions
        url = f"{self.base_url}/embeddings"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                resp = self._http.post(url, json=body)
            except httpx.HTTPError as exc:
                if last:
                    raise EmbeddingError(f"voyage: embeddings with {self.model} failed: {exc}", retryable=True) from exc
                time.sleep(self.backoff_s * 2 ** attempt)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                if not last:
                    time.sleep(_retry_after(resp) or self.backoff_s * 2 ** attempt)
                    continue
            if resp.status_code != 200:
                raise EmbeddingError(f"voyage: embeddings with {self.model} failed with HTTP {resp.status_code}: "
                                     f"{_reason(resp)}", status=resp.status_code,
                                     retryable=resp.status_code == 429 or resp.status_code >= 500)
            try:
                payload = resp.json()
                data = sorted(payload["data"], key=lambda d: d["index"])
                vecs = [d["embedding"] for d in data]
            except (ValueError, KeyError, TypeError) as exc:
                raise EmbeddingError(f"voyage: unreadable reply from {url}: {resp.text[:200]!r}") from exc
            usage = payload.get("usage") or {}
            return vecs, int(usage.get("total_tokens") or 0)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._http.close()


def _retry_after(resp: Any) -> float | None:
    try:
        return min(30.0, max(0.0, float(resp.headers.get("retry-after", ""))))
    except ValueError:
        return None


def _reason(resp: Any) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    return str(body.get("detail") or body.get("message") or body) if isinstance(body, dict) else str(body)[:300]
