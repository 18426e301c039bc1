"""Documents and chunks in Postgres (asyncpg): the system of record and the source BM25 is built from."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from callwise.knowledge.types import ChunkRecord


@dataclass(frozen=True)
class StoredDocument:
    id: str
    source: str
    content_hash: str
    title: str


@dataclass(frozen=True)
class ChunkText:
    """What the retriever needs to show a hit: the child, its parent and its document."""

    chunk_id: str
    document_id: str
    source: str
    title: str
    title_path: tuple[str, ...]
    text: str
    parent_id: str | None
    parent_text: str


class PgDocumentStore:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def get(self, organization_id: str, source: str) -> StoredDocument | None:
        row = await self.pool.fetchrow(
            "select id, source, content_hash, title from documents where organization_id = $1 and source = $2",
            organization_id, source,
        )
        return _doc(row) if row else None

    async def under(self, organization_id: str, prefix: str) -> list[StoredDocument]:
        """Documents whose source is ``prefix`` or lies inside the folder ``prefix``."""
        folder = prefix.rstrip("/") + "/"
        rows = await self.pool.fetch(
            "select id, source, content_hash, title from documents where organization_id = $1"
            " and (source = $2 or left(source, length($3)) = $3) order by source",
            organization_id, prefix, folder,
        )
        return [_doc(r) for r in rows]

    async def upsert_document(
        self, conn: Any, organization_id: str, *, source: str, title: str, mime_type: str,
        content_hash: str, size_bytes: int, metadata: dict[str, Any] | None = None,
    ) -> str:
        row = await conn.fetchrow(
            """insert into documents (organization_id, source, title, mime_type, content_hash, size_bytes, metadata)
               values ($1, $2, $3, $4, $5, $6, $7::jsonb)
               on conflict (organization_id, source) do update set title = excluded.title,
                 mime_type = excluded.mime_type, content_hash = excluded.content_hash,
                 size_bytes = excluded.size_bytes, metadata = excluded.metadata, updated_at = now()
               returning id""",
            organization_id, source, title, mime_type, content_hash, size_bytes, json.dumps(metadata or {}),
        )
        return str(row["id"])

    async def set_title(self, conn: Any, document_id: str, title: str, summary: str = "") -> None:
        await conn.execute("update documents set title = $2, summary = $3 where id = $1", document_id, title, summary)

    async def delete_chunks(self, conn: Any, document_id: str) -> None:
        await conn.execute("delete from chunks where document_id = $1", document_id)

    async def insert_chunks(self, conn: Any, organization_id: str, source: str, chunks: Iterable[ChunkRecord]) -> None:
        records = [
            (uuid.UUID(c.id), uuid.UUID(organization_id), uuid.UUID(c.document_id),
             uuid.UUID(c.parent_id) if c.parent_id else None, c.kind, c.seq, c.text, c.token_count, source,
             list(c.title_path))
            for c in chunks
        ]
        if records:
            await conn.copy_records_to_table(
                "chunks", records=records,
                columns=["id", "organization_id", "document_id", "parent_id", "kind", "seq", "text",
                         "token_count", "source", "title_path"],
            )

    async def delete_document(self, organization_id: str, document_id: str) -> None:
        await self.pool.execute(
            "delete from documents where organization_id = $1 and id = $2", organization_id, document_id
        )

    async def signature(self, organization_id: str) -> tuple[int, str]:
        """Changes whenever the organization's documents change (count or latest update)."""
        row = await self.pool.fetchrow(
            "select count(*) as n, max(updated_at) as ts from documents where organization_id = $1",
            organization_id,
        )
        return int(row["n"]), str(row["ts"])

    async def children(self, organization_id: str) -> list[tuple[str, str, str, tuple[str, ...], str]]:
        """(chunk_id, document_id, text, title_path, page lead sentence) of every child chunk: what BM25 indexes."""
        rows = await self.pool.fetch(
            """select c.id, c.document_id, c.text, c.title_path, d.summary from chunks c
               join documents d on d.id = c.document_id and d.organization_id = c.organization_id
               where c.organization_id = $1 and c.kind = 'child'""",
            organization_id,
        )
        return [(str(r["id"]), str(r["document_id"]), r["text"], tuple(r["title_path"]), r["summary"]) for r in rows]

    async def chunk_texts(self, organization_id: str, chunk_ids: list[str]) -> dict[str, ChunkText]:
        if not chunk_ids:
            return {}
        rows = await self.pool.fetch(
            """select c.id, c.document_id, c.text, c.title_path, c.parent_id, p.text as parent_text,
                      d.source, d.title
               from chunks c
               join documents d on d.id = c.document_id
               left join chunks p on p.id = c.parent_id
               where c.organization_id = $1 and c.id = any($2::uuid[])""",
            organization_id, chunk_ids,
        )
        out: dict[str, ChunkText] = {}
        for r in rows:
            cid = str(r["id"])
            out[cid] = ChunkText(
                chunk_id=cid, document_id=str(r["document_id"]), source=r["source"], title=r["title"],
                title_path=tuple(r["title_path"]), text=r["text"],
                parent_id=str(r["parent_id"]) if r["parent_id"] else None,
                parent_text=r["parent_text"] if r["parent_text"] is not None else r["text"],
            )
        return out


def _doc(row: Any) -> StoredDocument:
    return StoredDocument(id=str(row["id"]), source=row["source"], content_hash=row["content_hash"], title=row["title"])
