"""One BM25 index per organization, built from Postgres on first use and kept in step with ingestion.

The ingestor updates the index in place; another process's ingest is noticed through a cheap
signature query (document count and latest update) at most every ``refresh_s`` seconds, and the
index is then rebuilt from the chunks table.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from callwise.knowledge.bm25 import BM25Index, BM25Params
from callwise.knowledge.chunking import index_text


class BM25Registry:
    def __init__(self, docs: Any, *, params: BM25Params | None = None, refresh_s: float = 2.0) -> None:
        self.docs = docs
        self.params = params
        self.refresh_s = refresh_s
        self._indexes: dict[str, BM25Index] = {}
        self._checked: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def peek(self, organization_id: str) -> BM25Index | None:
        return self._indexes.get(organization_id)

    async def index(self, organization_id: str) -> BM25Index:
        idx = self._indexes.get(organization_id)
        now = time.monotonic()
        if idx is not None and now - self._checked.get(organization_id, 0.0) < self.refresh_s:
            return idx
        lock = self._locks.setdefault(organization_id, asyncio.Lock())
        async with lock:
            idx = self._indexes.get(organization_id)
            sig = await self.docs.signature(organization_id)
            if idx is None or idx.signature != sig:
                idx = await self._build(organization_id)
                idx.signature = sig
                self._indexes[organization_id] = idx
            self._checked[organization_id] = time.monotonic()
            return idx

    async def _build(self, organization_id: str) -> BM25Index:
        rows = await self.docs.children(organization_id)

        def build() -> BM25Index:
            idx = BM25Index(self.params)
            for chunk_id, document_id, text, title_path, lead in rows:
                idx.add(chunk_id, index_text(text, title_path, lead), group=document_id)
            return idx

        return await asyncio.to_thread(build)

    async def mark_current(self, organization_id: str) -> None:
        """After an in-process ingest updated the index, record the new signature."""
        idx = self._indexes.get(organization_id)
        if idx is not None:
            idx.signature = await self.docs.signature(organization_id)
            self._checked[organization_id] = time.monotonic()

    def for_update(self, organization_id: str) -> BM25Index | None:
        """The loaded index to update in place, if any (an unloaded one is built fresh later)."""
        return self._indexes.get(organization_id)
