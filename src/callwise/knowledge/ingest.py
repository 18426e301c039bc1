"""Ingestion with sync semantics: add new documents, re-chunk changed ones, remove deleted ones,
leave unchanged ones alone (by content hash), and say why anything was skipped."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from callwise.knowledge.chunking import Chunker, ParentPiece, index_text
from callwise.knowledge.lexical import BM25Registry
from callwise.knowledge.loaders import LoadedDocument, LoadError, discover, open_document
from callwise.knowledge.types import ChunkRecord
from callwise.knowledge.vectors import VectorPoint, VectorStore, bm25_document_sparse

log = logging.getLogger(__name__)
Status = Literal["added", "changed", "removed", "unchanged", "skipped"]


@dataclass
class IngestItem:
    source: str
    status: Status
    reason: str = ""
    chunks: int = 0


@dataclass
class IngestReport:
    items: list[IngestItem] = field(default_factory=list)
    seconds: float = 0.0
    index: dict[str, Any] | None = None  # what refreshing the org's vector index file did

    def _n(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def counts(self) -> dict[str, int]:
        return {s: self._n(s) for s in ("added", "changed", "removed", "unchanged", "skipped")}

    @property
    def chunks(self) -> int:
        return sum(i.chunks for i in self.items)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {**self.counts, "chunks": self.chunks, "seconds": round(self.seconds, 3),
               "items": [i.__dict__ for i in self.items]}
        if self.index is not None:
            out["index"] = self.index
        return out


Progress = Callable[[int, int, IngestItem | None], None]  # (done, total, item just finished)


class Ingestor:
    def __init__(self, docs: Any, vectors: VectorStore, embedder: Any, bm25: BM25Registry, chunker: Chunker,
                 *, batch_children: int = 64) -> None:
        self.docs = docs
        self.vectors = vectors
        self.embedder = embedder
        self.bm25 = bm25
        self.chunker = chunker
        self.batch_children = batch_children

    async def ingest(self, path: str | Path, organization_id: str, *, progress: Progress | None = None) -> IngestReport:
        root = Path(path)
        if not root.exists():
            raise FileNotFoundError(f"no such file or directory: {path}")
        started = time.perf_counter()
        report = IngestReport()
        if hasattr(self.vectors, "prepare"):  # the Postgres store migrates an older release's data first
            await self.vectors.prepare()
        files = list(discover(root))
        if progress:
            progress(0, len(files), None)
        seen: set[str] = set()
        for n, (file, source) in enumerate(files, start=1):
            seen.add(source)
            item = await self._one(file, source, organization_id)
            report.items.append(item)
            if progress:
                progress(n, len(files), item)
        if root.is_dir():
            for stale in await self.docs.under(organization_id, str(root).rstrip("/")):
                if stale.source not in seen:
                    await self._remove(organization_id, stale.id)
                    report.items.append(IngestItem(stale.source, "removed", "no longer on disk"))
        await asyncio.to_thread(self.vectors.commit)
        await self.bm25.mark_current(organization_id)
        if hasattr(self.vectors, "refresh_index"):  # the org's vector index file (knowledge/ann.py)
            report.index = await self.vectors.refresh_index(organization_id)
        report.seconds = time.perf_counter() - started
        return report

    @property
    def _in_postgres(self) -> bool:
        """Vectors and lexical weights written inside the document's own transaction (PgVectors)."""
        return bool(getattr(self.vectors, "transactional", False))

    async def _remove(self, organization_id: str, document_id: str) -> None:
        if self._in_postgres:
            await self.vectors.store.delete_document(organization_id, document_id)  # type: ignore[attr-defined]
            return
        await self.docs.delete_document(organization_id, document_id)
        await asyncio.to_thread(self.vectors.delete_document, organization_id, document_id)
        idx = self.bm25.for_update(organization_id)
        if idx is not None:
            idx.remove_group(document_id)

    async def _one(self, file: Path, source: str, organization_id: str) -> IngestItem:
        try:
            doc = await asyncio.to_thread(open_document, file, source)
        except LoadError as exc:
            return IngestItem(source, "skipped", str(exc))
        stored = await self.docs.get(organization_id, source)
        if stored is not None and stored.content_hash == doc.content_hash:
            return IngestItem(source, "unchanged", "content hash unchanged")
        status: Status = "changed" if stored is not None else "added"
        try:
            n = await self._write(doc, organization_id, stored.id if stored else None)
        except LoadError as exc:
            if stored is not None:
                await self._remove(organization_id, stored.id)
                return IngestItem(source, "skipped", f"{exc} (previous version removed)")
            return IngestItem(source, "skipped", str(exc))
        except Exception as exc:  # a broken file must not stop a directory ingest
            log.exception("ingest of %s failed", source)
            if stored is not None:
                await self._remove(organization_id, stored.id)
            return IngestItem(source, "skipped", f"failed: {type(exc).__name__}: {exc}"[:300])
        return IngestItem(source, status, "new" if status == "added" else "content changed", n)

    async def _write(self, doc: LoadedDocument, organization_id: str, existing_id: str | None) -> int:
        """Chunk, embed and store one document inside one transaction; returns child chunks written."""
        idx = self.bm25.for_update(organization_id)
        async with self.docs.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            doc_id = existing_id
            written: list[tuple[str, str]] = []  # (child id, index text) for BM25, applied after commit
            try:
                doc_id = await self.docs.upsert_document(
                    conn, organization_id, source=doc.source, title=doc.title or doc.path.stem,
                    mime_type=doc.mime_type, content_hash=doc.content_hash, size_bytes=doc.size_bytes,
                )
                if existing_id and self._in_postgres:
                    await self.vectors.store.delete_document_chunks(conn, organization_id, doc_id)  # type: ignore[attr-defined]
                elif existing_id:
                    await self.docs.delete_chunks(conn, doc_id)
                    await asyncio.to_thread(self.vectors.delete_document, organization_id, doc_id)
                    if idx is not None:
                        idx.remove_group(doc_id)
                seq = {"parent": 0, "child": 0}
                batch: list[ParentPiece] = []
                pending = 0
                sections = doc.sections()
                for parent in self.chunker.chunk(sections):
                    batch.append(parent)
                    pending += len(parent.children)
                    if pending >= self.batch_children:
                        written += await self._flush(conn, organization_id, doc, doc_id, batch, seq)
                        batch, pending = [], 0
                if batch:
                    written += await self._flush(conn, organization_id, doc, doc_id, batch, seq)
                if not written:
                    raise LoadError("no extractable text")
                await self.docs.set_title(conn, doc_id, doc.title or doc.path.stem, doc.summary)
                await tx.commit()
            except BaseException:
                await tx.rollback()
                if doc_id and not self._in_postgres:
                    await asyncio.to_thread(self.vectors.delete_document, organization_id, doc_id)
                raise
        if idx is not None:
            for cid, text in written:
                idx.add(cid, text, group=doc_id)
        return len(written)

    async def _flush(self, conn: Any, organization_id: str, doc: LoadedDocument, doc_id: str,
                     parents: list[ParentPiece], seq: dict[str, int]) -> list[tuple[str, str]]:
        parent_rows: list[ChunkRecord] = []
        child_rows: list[ChunkRecord] = []
        owners: list[int] = []
        for pi, p in enumerate(parents):
            pid = str(uuid.uuid4())
            parent_rows.append(ChunkRecord(pid, doc_id, "parent", seq["parent"], p.text, p.token_count, p.title_path))
            seq["parent"] += 1
            for c in p.children:
                child_rows.append(ChunkRecord(str(uuid.uuid4()), doc_id, "child", seq["child"], c.text,
                                              c.token_count, c.title_path, parent_id=pid))
                owners.append(pi)
                seq["child"] += 1
        texts = [index_text(c.text, c.title_path) for c in child_rows]  # what the embedder reads
        lex_texts = [index_text(c.text, c.title_path, doc.summary) for c in child_rows]  # what BM25 reads
        vecs = await asyncio.to_thread(self.embedder.encode, texts)
        if self._in_postgres:
            owner_arr = np.asarray(owners)
            pvecs = []
            for pi in range(len(parent_rows)):
                mine = vecs[owner_arr == pi]
                mean = mine.mean(axis=0) if len(mine) else np.zeros(vecs.shape[1], dtype=np.float32)
                pvecs.append(mean / (np.linalg.norm(mean) or 1.0))
            await self.vectors.store.write_chunks(  # type: ignore[attr-defined]
                conn, organization_id, doc.source, parent_rows, child_rows, lex_texts, vecs,
                np.asarray(pvecs, dtype=np.float32).reshape(len(parent_rows), vecs.shape[1]))
            return [(c.id, t) for c, t in zip(child_rows, lex_texts, strict=True)]  # no in-memory index to update (for_update: None)
        sparse = getattr(self.vectors, "has_sparse", False)  # the Qdrant server store keeps BM25 weights too
        points = [VectorPoint(c.id, v, organization_id, doc_id, "child",
                              bm25_document_sparse(organization_id, t) if sparse else None)
                  for c, v, t in zip(child_rows, vecs, lex_texts, strict=True)]
        owner_arr = np.asarray(owners)
        for pi, prow in enumerate(parent_rows):
            mine = vecs[owner_arr == pi]
            if len(mine):
                mean = mine.mean(axis=0)
                points.append(VectorPoint(prow.id, mean / (np.linalg.norm(mean) or 1.0), organization_id, doc_id,
                                          "parent"))
        await self.docs.insert_chunks(conn, organization_id, doc.source, parent_rows)
        await self.docs.insert_chunks(conn, organization_id, doc.source, child_rows)
        await asyncio.to_thread(self.vectors.upsert, points)
        return [(c.id, t) for c, t in zip(child_rows, lex_texts, strict=True)]
