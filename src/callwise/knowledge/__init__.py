"""Knowledge: loading, chunking, embeddings, vector and BM25 indexes, hybrid retrieval, reranking.

Imports nothing of ours: stores, embedder and reranker are constructor arguments.
"""

from callwise.knowledge.types import MODES, RetrievalResult, RetrievedChunk, StageScore

__all__ = ["MODES", "RetrievalResult", "RetrievedChunk", "StageScore"]
