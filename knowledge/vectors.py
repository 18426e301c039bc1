"""Vector stores: Qdrant's engine in process (qdrant-edge) by default, a Qdrant server in production.

Both hold child vectors (searched) and parent vectors (the mean of their children, used by the
local re-score) with ``organization_id``, ``document_id`` and ``kind`` in the payload; every search
filters by organization.
"""

from __future__ import annotations

import threading
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
        recs = self._shard.retrieve(ids, True, True)
        return {
            str(r.id): np.asarray(r.vector[self.VECTOR], dtype=np.float32)
            for r in recs
            if r.payload and r.payload.get("organization_id") == organization_id
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
            )
            for name in ("organization_id", "document_id", "kind"):
                schema: Any = (models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
                               if name == "organization_id" else models.PayloadSchemaType.KEYWORD)
                try:
                    client.create_payload_index(collection, name, field_schema=schema)
                except Exception:  # local mode ignores payload indexes
                    pass

    def _match(self, **fields: str) -> Any:
        m = self._m
        return m.Filter(must=[m.FieldCondition(key=k, match=m.MatchValue(value=v)) for k, v in fields.items()])

    def upsert(self, points: list[VectorPoint]) -> None:
        if not points:
            return
        m = self._m
        self.client.upsert(self.collection, points=[
            m.PointStruct(id=p.id, vector={self.VECTOR: np.asarray(p.vector, dtype=np.float32).tolist()},
                          payload=_payload(p))
            for p in points
        ])

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
