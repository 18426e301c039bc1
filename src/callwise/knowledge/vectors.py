"""Qdrant vector stores: a Qdrant server (``QDRANT_URL``), and qdrant-edge (the previous release's
in-process store, kept to read and migrate old data dirs; its WAL lock allows one process only).

Both hold child vectors (searched) and parent vectors (the mean of their children, used by the
local re-score) with ``organization_id``, ``document_id`` and ``kind`` in the payload; every search
filters by organization. The server store also holds a sparse ``bm25`` vector per child (BM25
document-side weights over organization-salted term hashes; Qdrant's IDF modifier applies the idf
on the query side), so lexical search is shared by every process as well (:class:`QdrantLexical`).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass
class VectorPoint:
    id: str
    vector: np.ndarray
    organization_id: str
    document_id: str
    kind: str = "child"  # "child" | "parent"
    sparse: tuple[list[int], list[float]] | None = None  # BM25 document weights (QdrantServerStore)


# Qdrant keeps no average document length: document weights use this fixed one (tokens after the tokenizer's
# stop words; a 256-token child chunk has about this many), as fastembed's Bm25 does with its avg_len.
QDRANT_BM25_AVG_LEN = 128.0


def bm25_document_sparse(organization_id: str, text: str, *, k1: float = 1.5, b: float = 0.75,
                         avg_len: float = QDRANT_BM25_AVG_LEN) -> tuple[list[int], list[float]]:
    from collections import Counter

    from callwise.knowledge.pgstore import term_hash
    from callwise.knowledge.text import tokenize

    toks = tokenize(text)
    tf = Counter(term_hash(organization_id, t) for t in toks)
    norm = k1 * (1.0 - b + b * len(toks) / avg_len)
    keys = sorted(tf)
    return keys, [tf[h] * (k1 + 1.0) / (tf[h] + norm) for h in keys]


def bm25_query_sparse(organization_id: str, query: str) -> tuple[list[int], list[float]]:
    from collections import Counter

    from callwise.knowledge.pgstore import term_hash
    from callwise.knowledge.text import tokenize

    counts = Counter(term_hash(organization_id, t) for t in tokenize(query))
    keys = sorted(counts)
    return keys, [float(counts[h]) for h in keys]


class VectorStore(Protocol):
    def upsert(self, points: list[VectorPoint]) -> None: ...
    def delete_document(self, organization_id: str, document_id: str) -> None: ...
    def search(self, vector: np.ndarray, organization_id: str, limit: int) -> list[tuple[str, float]]: ...
    def vectors(self, organization_id: str, ids: list[str]) -> dict[str, np.ndarray]: ...
    def count(self, organization_id: str) -> int: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


def _payload(p: VectorPoint) -> dict[str, str]:
    return {"organization_id": p.organization_id, "document_id": p.document_id, "kind": p.kind}


class EdgeVectorStore:
    """qdrant-edge-py: one on-disk shard, HNSW, a tenant keyword index on ``organization_id``."""

    VECTOR = "dense"

    def __init__(self, path: str | Path, dim: int, *, hnsw_ef: int = 128) -> None:
        import qdrant_edge as q

        self._q = q
        self.path = Path(path)
        self.dim = dim
        self._lock = threading.Lock()
        self._params = q.SearchParams(hnsw_ef=hnsw_ef)
        if self.path.exists() and any(self.path.iterdir()):
            self._shard = q.EdgeShard.load(str(self.path))
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            cfg = q.EdgeConfig(vectors={self.VECTOR: q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine)})
            self._shard = q.EdgeShard.create(str(self.path), cfg)
            for name in ("organization_id", "document_id", "kind"):
                schema = q.KeywordIndexParams(is_tenant=True) if name == "organization_id" else q.PayloadSchemaType.Keyword
                self._shard.update(q.UpdateOperation.create_field_index(name, schema))
        self._dirty = False

    def _match(self, **fields: str) -> Any:
        q = self._q
        return q.Filter(must=[q.FieldCondition(k, match=q.MatchValue(v)) for k, v in fields.items()])

    def upsert(self, points: list[VectorPoint]) -> None:
        if not points:
            return
        q = self._q
        batch = [q.Point(p.id, {self.VECTOR: np.asarray(p.vector, dtype=np.float32).tolist()}, _payload(p))
                 for p in points]
        with self._lock:
            self._shard.update(q.UpdateOperation.upsert_points(batch))
            self._dirty = True

    def delete_document(self, organization_id: str, document_id: str) -> None:
        with self._lock:
            self._shard.update(self._q.UpdateOperation.delete_points_by_filter(
                self._match(organization_id=organization_id, document_id=document_id)))
            self._dirty = True

    def search(self, vector: np.ndarray, organization_id: str, limit: int) -> list[tuple[str, float]]:
        q = self._q
        req = q.QueryRequest(
            limit=limit, query=q.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist(), using=self.VECTOR),
            filter=self._match(organization_id=organization_id, kind="child"), params=self._params,
            with_payload=False, with_vector=False,
        )
        return [(str(p.id), float(p.score)) for p in self._shard.query(req)]

    def vectors(self, organization_id: str, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        recs = self._shard.retrieve(list[int | uuid.UUID | str](ids), True, True)
        return {
            str(r.id): np.asarray(r.vector[self.VECTOR], dtype=np.float32)
            for r in recs
            if isinstance(r.vector, dict) and r.payload and r.payload.get("organization_id") == organization_id
        }

    def count(self, organization_id: str) -> int:
        return int(self._shard.count(self._q.CountRequest(filter=self._match(organization_id=organization_id))))

    def commit(self) -> None:
        """Persist and (re)build the HNSW index after a batch of changes."""
        with self._lock:
            if self._dirty:
                self._shard.flush()
                self._shard.optimize()
                self._dirty = False

    def close(self) -> None:
        with self._lock:
            if self._dirty:
                self._shard.flush()
            self._shard.close()


class QdrantServerStore:
    """The same interface over qdrant-client (a Qdrant server at QDRANT_URL, or ``:memory:`` in tests)."""

    VECTOR = "dense"
    SPARSE = "bm25"

    def __init__(self, client: Any, dim: int, collection: str = "callwise_chunks") -> None:
        from qdrant_client import models

        self._m = models
        self.client = client
        self.dim = dim
        self.collection = collection
        if not client.collection_exists(collection):
            client.create_collection(
                collection,
                vectors_config={self.VECTOR: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={self.SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            for name in ("organization_id", "document_id", "kind"):
                schema: Any = (models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
                               if name == "organization_id" else models.PayloadSchemaType.KEYWORD)
                try:
                    client.create_payload_index(collection, name, field_schema=schema)
                except Exception:  # local mode ignores payload indexes
                    pass
        sparse = client.get_collection(collection).config.params.sparse_vectors or {}
        self.has_sparse = self.SPARSE in sparse  # a collection made by an older release has none

    def _match(self, **fields: str) -> Any:
        m = self._m
        return m.Filter(must=[m.FieldCondition(key=k, match=m.MatchValue(value=v)) for k, v in fields.items()])

    def upsert(self, points: list[VectorPoint]) -> None:
        if not points:
            return
        m = self._m

        def vector(p: VectorPoint) -> dict[str, Any]:
            v: dict[str, Any] = {self.VECTOR: np.asarray(p.vector, dtype=np.float32).tolist()}
            if p.sparse is not None and self.has_sparse and p.sparse[0]:
                v[self.SPARSE] = m.SparseVector(indices=p.sparse[0], values=p.sparse[1])
            return v

        self.client.upsert(self.collection, points=[
            m.PointStruct(id=p.id, vector=vector(p), payload=_payload(p)) for p in points
        ])

    def lexical_search(self, query: str, organization_id: str, limit: int) -> list[tuple[str, float]]:
        indices, values = bm25_query_sparse(organization_id, query)
        if not indices:
            return []
        m = self._m
        res = self.client.query_points(
            self.collection, query=m.SparseVector(indices=indices, values=values), using=self.SPARSE,
            query_filter=self._match(organization_id=organization_id, kind="child"), limit=limit, with_payload=False,
        )
        return [(str(p.id), float(p.score)) for p in res.points]

    def delete_document(self, organization_id: str, document_id: str) -> None:
        self.client.delete(self.collection, points_selector=self._m.FilterSelector(
            filter=self._match(organization_id=organization_id, document_id=document_id)))

    def search(self, vector: np.ndarray, organization_id: str, limit: int) -> list[tuple[str, float]]:
        res = self.client.query_points(
            self.collection, query=np.asarray(vector, dtype=np.float32).tolist(), using=self.VECTOR,
            query_filter=self._match(organization_id=organization_id, kind="child"), limit=limit,
            with_payload=False,
        )
        return [(str(p.id), float(p.score)) for p in res.points]

    def vectors(self, organization_id: str, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        recs = self.client.retrieve(self.collection, ids=ids, with_payload=True, with_vectors=True)
        return {
            str(r.id): np.asarray(r.vector[self.VECTOR], dtype=np.float32)
            for r in recs
            if r.payload and r.payload.get("organization_id") == organization_id
        }

    def count(self, organization_id: str) -> int:
        return int(self.client.count(self.collection, count_filter=self._match(organization_id=organization_id)).count)

    def commit(self) -> None:
        return None

    def close(self) -> None:
        self.client.close()


class QdrantLexical:
    """The ``bm25`` role over the server store's sparse vectors (shared by every process, nothing in memory).

    Scores differ from BM25Okapi: a fixed average length (``QDRANT_BM25_AVG_LEN``) and Qdrant's idf,
    ``ln(1 + (N - n + 0.5) / (n + 0.5))`` with N counted over the whole collection."""

    def __init__(self, store: QdrantServerStore) -> None:
        self.store = store

    async def search_async(self, organization_id: str, query: str, limit: int) -> list[tuple[str, float]]:
        import asyncio

        return await asyncio.to_thread(self.store.lexical_search, query, organization_id, limit)

    def for_update(self, organization_id: str) -> None:
        return None

    def peek(self, organization_id: str) -> None:
        return None

    async def mark_current(self, organization_id: str) -> None:
        return None
