"""Re-embed an organization's knowledge base with another embedder (``callwise ingest --reembed``).

The Postgres knowledge store records, per organization, the model and dimension that made its
vectors (``knowledge_stats.embedding_model``/``embedding_dim``) and refuses to mix them. Switching
``CALLWISE_EMBEDDING_PROVIDER``/``CALLWISE_EMBEDDING_MODEL`` therefore needs every chunk embedded
again: children from the same text the ingestor embeds (``index_text``: heading path + text),
parents as the normalised mean of their children (as ``callwise.knowledge.ingest`` does). The vectors are
computed first (batched, with progress; the old ones keep serving meanwhile), then written with the
new model name in one transaction, so searches see either the old or the new index, never a mix.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from callwise.knowledge.chunking import index_text

Progress = Callable[[int, int], None]


class ReembedError(Exception):
    """Re-embedding could not finish; nothing was changed."""


@dataclass
class ReembedReport:
    organization_id: str
    model_before: str | None
    dim_before: int | None
    model: str
    dim: int
    chunks: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def model_name(embedder: Any) -> str:
    """The name the knowledge store records for an embedder (``callwise.wiring.knowledge`` passes the same)."""
    from pathlib import Path

    return Path(str(embedder.model_path)).name


async def stored_model(pool: Any, organization_id: str) -> tuple[str | None, int | None]:
    """The (model, dimension) an organization's vectors were made with; (None, None) when it has none."""
    row = await pool.fetchrow("select embedding_model, embedding_dim from knowledge_stats where organization_id = $1",
                              organization_id)
    return (row["embedding_model"], row["embedding_dim"]) if row else (None, None)


async def needs_reembed(pool: Any, organization_id: str, embedder: Any) -> bool:
    model, dim = await stored_model(pool, organization_id)
    if dim is None:
        return False
    return dim != embedder.dim or (model is not None and model != model_name(embedder))


async def reembed(pool: Any, organization_id: str, embedder: Any, *, progress: Progress | None = None) -> ReembedReport:
    t0 = time.perf_counter()
    model_before, dim_before = await stored_model(pool, organization_id)
    rows = await pool.fetch(
        "select id, parent_id, kind, text, title_path from chunks where organization_id = $1 order by id",
        organization_id)
    children = [r for r in rows if r["kind"] == "child"]
    parents = [r for r in rows if r["kind"] == "parent"]
    texts = [index_text(r["text"], list(r["title_path"] or [])) for r in children]
    vecs = await asyncio.to_thread(_encode, embedder, texts, progress)
    dim = int(embedder.dim)
    if vecs.shape != (len(children), dim):
        raise ReembedError(f"the embedder returned {vecs.shape} for {len(children)} chunks of {dim} dimensions")
    by_parent: dict[Any, list[int]] = {}
    for i, r in enumerate(children):
        by_parent.setdefault(r["parent_id"], []).append(i)
    ids: list[uuid.UUID] = [r["id"] for r in children]
    blobs: list[bytes] = [np.asarray(v, dtype="<f4").tobytes() for v in vecs]
    for p in parents:
        mine = vecs[by_parent.get(p["id"], [])]
        mean = mine.mean(axis=0) if len(mine) else np.zeros(dim, dtype=np.float32)
        ids.append(p["id"])
        blobs.append(np.asarray(mean / (np.linalg.norm(mean) or 1.0), dtype="<f4").tobytes())
    name = model_name(embedder)
    async with pool.acquire() as conn, conn.transaction():
        # the stats row first: concurrent ingests queue behind it (the store locks it the same way)
        await conn.execute(
            """insert into knowledge_stats (organization_id) values ($1)
               on conflict (organization_id) do update set version = knowledge_stats.version + 1, updated_at = now()""",
            organization_id)
        now = await conn.fetchval("select count(*) from chunks where organization_id = $1", organization_id)
        if now != len(rows):
            raise ReembedError("the knowledge base changed while re-embedding (an ingest ran); run it again")
        status = await conn.execute(
            """update chunks set embedding = v.e from unnest($2::uuid[], $3::bytea[]) as v(id, e)
               where chunks.id = v.id and chunks.organization_id = $1""",
            organization_id, ids, blobs)
        if int(status.split()[-1]) != len(ids):
            raise ReembedError("the knowledge base changed while re-embedding (an ingest ran); run it again")
        await conn.execute(
            """update knowledge_stats set embedding_model = $2, embedding_dim = $3, version = version + 1,
                      updated_at = now() where organization_id = $1""",
            organization_id, name, dim)
    return ReembedReport(organization_id, model_before, dim_before, name, dim, len(ids), time.perf_counter() - t0)


def _encode(embedder: Any, texts: list[str], progress: Progress | None) -> np.ndarray:
    """Embed in slices so a local model reports progress too (cloud embedders batch inside)."""
    if not texts:
        return np.zeros((0, int(embedder.dim)), dtype=np.float32)
    step = 256
    out = []
    for start in range(0, len(texts), step):
        out.append(np.asarray(embedder.encode(texts[start:start + step]), dtype=np.float32))
        if progress is not None:
            progress(min(start + step, len(texts)), len(texts))
    return np.concatenate(out)
