"""Settings -> knowledge objects: one process-wide embedder; the knowledge store in Postgres by default.

Without ``QDRANT_URL`` dense and lexical retrieval run inside Postgres (knowledge/pgstore.py), which
every process shares; with it, both go to the Qdrant server (dense vectors and sparse BM25 vectors with
the IDF modifier; a collection made by an older release, without the sparse vector, keeps BM25 in
each process's memory).
The in-process qdrant-edge shard is no longer a store: it takes an exclusive lock, so only one
process could use it (the old release's data is migrated out of it, see knowledge/pgmigrate.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from callwise.infra.telemetry import metered_retriever
from callwise.knowledge.ann import AnnIndexes
from callwise.knowledge.chunking import Chunker, ChunkingConfig
from callwise.knowledge.docstore import PgDocumentStore
from callwise.knowledge.embeddings import Embedder
from callwise.knowledge.ingest import Ingestor
from callwise.knowledge.lexical import BM25Registry
from callwise.knowledge.pages import PageRetriever
from callwise.knowledge.pgstore import PgKnowledgeStore, PgLexical, PgVectors
from callwise.knowledge.rerank import CohereReranker, EmbeddingReranker, Reranker
from callwise.knowledge.retriever import Retriever, RetrieverConfig
from callwise.knowledge.vectors import QdrantLexical, QdrantServerStore, VectorStore
from callwise.wiring.settings import Settings

# Measured on bench/data/orbitly (bench/retrieval_quality.py, 100 queries): fusion order (hybrid RRF)
# nDCG@10 0.939 vs the local embedding re-score 0.886 (0.902 blended with the child's similarity),
# so without Cohere the "rerank" step keeps fusion order. CALLWISE_RERANKER=embedding opts in.
# Issue 9 re-measure (page level, bench/retrieval_quality.py --sets orbitly --experiments): fusion order won
# typed questions (nDCG@10 0.939 vs 0.919 for the best blend, EmbeddingReranker(child_weight=0.5,
# fusion_weight=0.5)); that blend won spoken ones (0.834 vs 0.789). On the public manuals the dense modes
# were not measured in that session.
# Second session, the full product path on all four sets (python bench/retrieval_quality.py --experiments
# --cache-dir DIR; page ranking callwise.knowledge.pages.DEFAULT), fusion order -> this blend, nDCG@10 / right page first:
#   public-manual mean, dev questions 0.689 / 0.529 -> 0.705 / 0.536; spoken 0.589 / 0.373 -> 0.621 / 0.459;
#   held-out 0.659 / 0.478 -> 0.701 / 0.580 (looked at after the choice); mean of all four sets, dev
#   0.750 / 0.610 -> 0.756 / 0.602. It loses Orbitly typed (0.939 / 0.870 -> 0.916 / 0.820) and wins Orbitly
#   spoken (0.787 / 0.636 -> 0.823 / 0.727). So the blend is the local default: it won on the mean across sets.
LOCAL_RERANKER_DEFAULT = "embedding"
EMBEDDING_BLEND = {"child_weight": 0.5, "fusion_weight": 0.5}

_lock = threading.Lock()
_embedders: dict[str, Embedder] = {}
_server_stores: dict[str, QdrantServerStore] = {}
_indexes: dict[str, AnnIndexes] = {}

INDEX_DIR = "vector-index"


def vector_indexes(settings: Settings) -> AnnIndexes:
    """The organizations' vector index files under ``data_dir/vector-index`` (knowledge/ann.py): one
    reader per process, so every call of the process shares its memory maps."""
    root = (settings.data_dir / INDEX_DIR).resolve()
    with _lock:
        idx = _indexes.get(str(root))
        if idx is None:
            idx = _indexes[str(root)] = AnnIndexes(root)
        return idx


def get_embedder(settings: Settings) -> Embedder:
    """One Embedder per model per process (loading takes seconds); a cloud one with
    CALLWISE_EMBEDDING_PROVIDER (knowledge/embedders)."""
    from callwise.knowledge.embedders import embedder_from_settings

    key = f"{settings.embedding_provider}:{settings.embedding_model or ''}:{settings.embedding_dimensions or ''}"
    with _lock:
        emb = _embedders.get(key)
        if emb is None:
            emb = _embedders[key] = embedder_from_settings(settings)
        return emb


def vector_store(settings: Settings, dim: int) -> VectorStore:
    """The Qdrant server store (QDRANT_URL); one client per process."""
    if not settings.qdrant_url:
        raise ValueError("vector_store() is the QDRANT_URL store; without it the knowledge store is Postgres")
    from qdrant_client import QdrantClient

    with _lock:
        store = _server_stores.get(settings.qdrant_url)
        if store is None:
            key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            store = _server_stores[settings.qdrant_url] = QdrantServerStore(
                QdrantClient(url=settings.qdrant_url, api_key=key), dim)
        return store


def build_reranker(settings: Settings, vectors: VectorStore) -> Reranker | None:
    choice: str = settings.reranker
    if choice == "auto":
        choice = "cohere" if settings.cohere_api_key else LOCAL_RERANKER_DEFAULT
    if choice == "cohere":
        if not settings.cohere_api_key:
            raise ValueError("CALLWISE_RERANKER=cohere needs COHERE_API_KEY")
        return CohereReranker.from_key(settings.cohere_api_key.get_secret_value(), settings.rerank_model,
                                       base_url=settings.cohere_base_url, timeout_s=settings.rerank_timeout_s)
    if choice == "embedding":
        return EmbeddingReranker(vectors, **EMBEDDING_BLEND)
    return None


@dataclass
class Knowledge:
    docs: PgDocumentStore
    vectors: Any  # PgVectors (default) or a VectorStore (QDRANT_URL)
    embedder: Embedder
    bm25: Any  # PgLexical (default) or BM25Registry (QDRANT_URL)
    retriever: Retriever
    ingestor: Ingestor


def build_knowledge(settings: Settings, pool: Any, *, embedder: Embedder | None = None) -> Knowledge:
    embedder = embedder or get_embedder(settings)
    docs = PgDocumentStore(pool)
    vectors: Any
    bm25: Any
    if settings.qdrant_url:
        vectors = vector_store(settings, embedder.dim)
        bm25 = QdrantLexical(vectors) if vectors.has_sparse else BM25Registry(docs)
    else:
        from callwise.knowledge.embedders.reembed import model_name
        from callwise.knowledge.pgmigrate import legacy_migration

        store = PgKnowledgeStore(pool, embedder.dim, model_name(embedder),
                                 first_use=legacy_migration(settings.data_dir.resolve(), embedder),
                                 ann=vector_indexes(settings))
        vectors, bm25 = PgVectors(store), PgLexical(store)
    config = RetrieverConfig(
        candidates=settings.retrieval_candidates, top_k=settings.retrieval_top_k, fusion=settings.fusion,
        rrf_k=settings.rrf_k, alphas=dict(settings.fusion_alphas),
        # the SDK's own timeout bounds the HTTP call; this bounds the whole rerank step
        rerank_timeout_s=settings.rerank_timeout_s + 0.5,
    )
    # page ranking and query clean-up (knowledge/pages.py, knowledge/query.py) wrap the retriever
    retriever = metered_retriever(  # retrieval stage timings as metrics (callwise.infra.telemetry)
        PageRetriever(Retriever(docs, vectors, embedder, bm25, build_reranker(settings, vectors), config)))
    ingestor = Ingestor(docs, vectors, embedder, bm25, Chunker(embedder.count_tokens_batch, ChunkingConfig()))
    return Knowledge(docs, vectors, embedder, bm25, retriever, ingestor)


def close_vector_stores() -> None:
    """Close the process-wide Qdrant clients (end of a CLI command or worker); the Postgres store holds none."""
    with _lock:
        for store in _server_stores.values():
            store.close()
        _server_stores.clear()
