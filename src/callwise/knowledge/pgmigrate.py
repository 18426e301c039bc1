"""Upgrade a data dir from the release that kept vectors in qdrant-edge (``<data_dir>/qdrant``).

That release wrote chunk rows to Postgres and their vectors to an in-process Qdrant shard. On the
first use of the Postgres store, every child and parent row without an embedding gets its vector
copied from the shard (or, when the shard has no vector for it, re-embedded from the chunk text),
and its lexical weights computed, one document per transaction; a progress bar goes to stderr.
The shard directory is then renamed to ``qdrant.migrated`` (kept, never deleted). Concurrent
processes queue on an advisory lock, and the loser finds nothing left to do.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from callwise.knowledge.chunking import index_text
from callwise.knowledge.pgstore import PgKnowledgeStore, StoreError

log = logging.getLogger(__name__)
_LOCK_KEY = 0x63775F76  # "cw_v"


def legacy_migration(data_dir: Path, embedder: Any) -> Callable[[PgKnowledgeStore], Awaitable[None]] | None:
    """The store's ``first_use`` hook that migrates ``<data_dir>/qdrant``, or None when there is nothing to migrate."""
    if not (data_dir / "qdrant").is_dir():
        return None

    async def migrate(store: PgKnowledgeStore) -> None:
        await migrate_legacy(store, data_dir, embedder)

    return migrate


def _open_shard(path: Path) -> Any:
    import qdrant_edge as q

    try:
        return q.EdgeShard.load(str(path))
    except Exception as exc:
        raise StoreError(
            f"cannot open the previous release's vector store in {path} to migrate it ({exc}); if an older callwise "
            f"process is still running, stop it and retry"
        ) from None


def _shard_vectors(shard: Any, ids: list[str]) -> dict[str, np.ndarray]:
    if not ids:
        return {}
    out: dict[str, np.ndarray] = {}
    for rec in shard.retrieve(ids, True, True):
        vec = (rec.vector or {}).get("dense")
        if vec is not None:
            out[str(rec.id)] = np.asarray(vec, dtype=np.float32)
    return out


async def migrate_legacy(store: PgKnowledgeStore, data_dir: Path, embedder: Any,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Migrate ``data_dir/qdrant`` into ``store``; returns counts (documents, copied, re-embedded)."""
    legacy = Path(data_dir) / "qdrant"
    counts = {"documents": 0, "copied": 0, "reembedded": 0}
    if not legacy.is_dir():
        return counts
    async with store.pool.acquire() as lock_conn:
        await lock_conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        try:
            if not legacy.is_dir():  # another process finished it while we waited
                return counts
            docs = await store.pool.fetch(
                "select distinct organization_id, document_id from chunks where embedding is null order by 1, 2")
            shard = _open_shard(legacy) if docs else None
            bar = _bar(len(docs)) if progress is None and docs else None
            try:
                for n, d in enumerate(docs, start=1):
                    await _one_document(store, shard, embedder, str(d["organization_id"]), str(d["document_id"]), counts)
                    counts["documents"] += 1
                    if progress:
                        progress(n, len(docs))
                    elif bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
                if shard is not None:
                    shard.close()
            target = legacy.with_name("qdrant.migrated")
            if target.exists():
                target = legacy.with_name(f"qdrant.migrated-{int(__import__('time').time())}")
            legacy.rename(target)
            log.warning("migrated the previous release's vectors into Postgres", extra={**counts, "kept": str(target)})
        finally:
            await lock_conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
    return counts


def _bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="migrating vectors into Postgres", unit="doc", file=sys.stderr)


async def _one_document(store: PgKnowledgeStore, shard: Any, embedder: Any, org: str, doc_id: str,
                        counts: dict[str, int]) -> None:
    async with store.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "select id, kind, parent_id, text, title_path from chunks"
            " where organization_id = $1 and document_id = $2 and embedding is null order by kind, seq",
            org, doc_id)
        children = [r for r in rows if r["kind"] == "child"]
        parents = [r for r in rows if r["kind"] == "parent"]
        texts = [index_text(r["text"], tuple(r["title_path"])) for r in children]
        have = _shard_vectors(shard, [str(r["id"]) for r in rows]) if shard is not None else {}
        ok = all(str(r["id"]) in have and len(have[str(r["id"])]) == store.dim for r in children)
        if ok:
            child_vecs = np.asarray([have[str(r["id"])] for r in children], dtype=np.float32).reshape(-1, store.dim)
            counts["copied"] += len(children)
        else:
            child_vecs = np.asarray(embedder.encode(texts), dtype=np.float32).reshape(-1, store.dim)
            counts["reembedded"] += len(children)
        parent_vecs = []
        for p in parents:
            pv = have.get(str(p["id"])) if ok else None
            if pv is None or len(pv) != store.dim:
                mine = child_vecs[[i for i, c in enumerate(children) if c["parent_id"] == p["id"]]]
                mean = mine.mean(axis=0) if len(mine) else np.zeros(store.dim, dtype=np.float32)
                pv = mean / (np.linalg.norm(mean) or 1.0)
            parent_vecs.append(pv)
        await store.index_existing(conn, org, [str(r["id"]) for r in children], texts, child_vecs,
                                   [str(p["id"]) for p in parents],
                                   np.asarray(parent_vecs, dtype=np.float32).reshape(-1, store.dim))
