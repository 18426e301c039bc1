"""Settings -> knowledge objects: one process-wide embedder and vector store, stores under data_dir."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.settings import Settings
from knowledge.chunking import Chunker, ChunkingConfig
from knowledge.docstore import PgDocumentStore
from knowledge.embeddings import Embedder
from knowledge.ingest import Ingestor
from knowledge.lexical import BM25Registry
from knowledge.rerank import CohereReranker, EmbeddingReranker, Reranker
from knowledge.retriever import Retriever, RetrieverConfig
from knowledge.vectors import EdgeVectorStore, QdrantServerStore, VectorStore

# Measured on bench/data/orbitly (bench/retrieval_quality.py, 100 queries): fusion order (hybrid RRF)
# nDCG@10 0.939 vs the local embedding re-score 0.886 (0.902 blended with the child's similarity),
# so without Cohere the "rerank" step keeps fusion order. CALLWISE_RERANKER=embedding opts in.
LOCAL_RERANKER_DEFAULT = "none"

_lock = threading.Lock()
_embedders: dict[str, Embedder] = {}
_edge_stores: dict[Path, EdgeVectorStore] = {}


def get_embedder(settings: Settings) -> Embedder:
    """One Embedder per model per process (loading takes seconds)."""
    key = settings.embedding_model or ""
    with _lock:
        emb = _embedders.get(key)
        if emb is None:
            emb = _embedders[key] = Embedder(settings.embedding_model or None)
        return emb


def vector_store(settings: Settings, dim: int) -> VectorStore:
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantServerStore(QdrantClient(url=settings.qdrant_url, api_key=key), dim)
    path = (settings.data_dir / "qdrant").resolve()
    with _lock:
        store = _edge_stores.get(path)
        if store is None:
            store = _edge_stores[path] = EdgeVectorStore(path, dim)
        return store


def build_reranker(settings: Settings, vectors: VectorStore) -> Reranker | None:
    choice = settings.reranker
    if choice == "auto":
        choice = "cohere" if settings.cohere_api_key else LOCAL_RERANKER_DEFAULT
    if choice == "cohere":
        if not settings.cohere_api_key:
            raise ValueError("CALLWISE_RERANKER=cohere needs COHERE_API_KEY")
        return CohereReranker.from_key(settings.cohere_api_key.get_secret_value(), settings.rerank_model,
                                       base_url=settings.cohere_base_url, timeout_s=settings.rerank_timeout_s)
    if choice == "embedding":
        return EmbeddingReranker(vectors)
    return None


@dataclass
class Knowledge:
    docs: PgDocumentStore
    vectors: VectorStore
    embedder: Embedder
    bm25: BM25Registry
    retriever: Retriever
    ingestor: Ingestor


def build_knowledge(settings: Settings, pool: Any, *, embedder: Embedder | None = None) -> Knowledge:
    embedder = embedder or get_embedder(settings)
    docs = PgDocumentStore(pool)
    vectors = vector_store(settings, embedder.dim)
    bm25 = BM25Registry(docs)
    config = RetrieverConfig(
        candidates=settings.retrieval_candidates, top_k=settings.retrieval_top_k, fusion=settings.fusion,
        rrf_k=settings.rrf_k, alphas=dict(settings.fusion_alphas),
        # the SDK's own timeout bounds the HTTP call; this bounds the whole rerank step
        rerank_timeout_s=settings.rerank_timeout_s + 0.5,
    )
    retriever = Retriever(docs, vectors, embedder, bm25, build_reranker(settings, vectors), config)
    ingestor = Ingestor(docs, vectors, embedder, bm25, Chunker(embedder.count_tokens_batch, ChunkingConfig()))
    return Knowledge(docs, vectors, embedder, bm25, retriever, ingestor)


def close_vector_stores() -> None:
    """Flush and close the process-wide embedded stores (end of a CLI command or worker)."""
    with _lock:
        for store in _edge_stores.values():
            store.close()
        _edge_stores.clear()
