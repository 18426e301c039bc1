"""The Postgres knowledge store: BM25 scores against rank-bm25, the query plan, consistency of writes."""

from __future__ import annotations

import random
import uuid

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from callwise.knowledge.pgstore import PgKnowledgeStore, StoreError, term_hash
from callwise.knowledge.text import tokenize
from callwise.knowledge.types import ChunkRecord

DIM = 8


def _docs(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    vocab = [f"w{i}" for i in range(40)] + ["e-1042", "sku-88a", "refund", "invoice"]
    return [" ".join(rnd.choice(vocab) for _ in range(rnd.randint(3, 30))) for _ in range(n)]


async def _write_doc(store: PgKnowledgeStore, pool, org: str, texts: list[str], rnd: np.random.Generator) -> str:  # type: ignore[no-untyped-def]
    """One document, one parent per text with one child each, written in one transaction as the ingestor does."""
    async with pool.acquire() as conn, conn.transaction():
        doc_id = str(await conn.fetchval(
            "insert into documents (organization_id, source, title, mime_type, content_hash, size_bytes)"
            " values ($1, $2, 't', 'text/plain', 'h', 1) returning id", org, f"doc-{uuid.uuid4().hex}"))
        parents, children = [], []
        for i, t in enumerate(texts):
            pid = str(uuid.uuid4())
            parents.append(ChunkRecord(pid, doc_id, "parent", i, t, 1, ()))
            children.append(ChunkRecord(str(uuid.uuid4()), doc_id, "child", i, t, 1, (), parent_id=pid))
        vecs = rnd.normal(size=(len(texts), DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        await store.write_chunks(conn, org, "src", parents, children, texts, vecs, vecs)
    return doc_id


async def _child_order(pool, org: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(r["id"]) for r in await pool.fetch(
        "select id from chunks where organization_id = $1 and kind = 'child' order by document_id, seq", org)]


async def test_lexical_scores_equal_bm25okapi_after_reweigh(pg_pool, org_id):
    store = PgKnowledgeStore(pg_pool, DIM, "test")
    rnd = np.random.default_rng(0)
    texts = _docs(120, seed=3)
    doc_ids = [await _write_doc(store, pg_pool, org_id, texts[i:i + 10], rnd) for i in range(0, len(texts), 10)]
    # weights were written with the avgdl of their time; bring all of them to today's
    assert await store.reweigh(org_id, 0.0) > 0
    rows = await pg_pool.fetch(
        "select c.id, c.text from chunks c where c.organization_id = $1 and c.kind = 'child'", org_id)
    ids = [str(r["id"]) for r in rows]
    ref = BM25Okapi([tokenize(r["text"]) for r in rows])
    q_rnd = random.Random(1)
    for _ in range(20):
        q = " ".join(q_rnd.choice(tokenize(texts[q_rnd.randrange(len(texts))])) for _ in range(q_rnd.randint(1, 4)))
        expected = dict(zip(ids, ref.get_scores(tokenize(q)), strict=True))
        got = await store.lexical_search(org_id, q, 15)
        assert got
        for key, score in got:
            assert score == pytest.approx(expected[key], rel=1e-5, abs=1e-5), q
        holding = [i for i, r in zip(ids, rows, strict=True) if set(tokenize(q)) & set(tokenize(r["text"]))]
        best = sorted(expected[i] for i in holding)[::-1][:15]
        assert [s for _, s in got] == pytest.approx(best, rel=1e-5, abs=1e-5)
    # deleting a document takes its df and lengths with it: still equal to a fresh BM25Okapi
    await store.delete_document(org_id, doc_ids[0])
    await store.reweigh(org_id, 0.0)
    rows = await pg_pool.fetch("select id, text from chunks where organization_id = $1 and kind = 'child'", org_id)
    ref = BM25Okapi([tokenize(r["text"]) for r in rows])
    expected = dict(zip([str(r["id"]) for r in rows], ref.get_scores(["refund", "w3"]), strict=True))
    for key, score in await store.lexical_search(org_id, "refund w3", 10):
        assert score == pytest.approx(expected[key], rel=1e-5, abs=1e-5)


async def test_tenants_never_mix_and_the_gin_index_is_used(pg_pool, org_id):
    store = PgKnowledgeStore(pg_pool, DIM, "test")
    rnd = np.random.default_rng(1)
    other = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id",
                                       "t-" + uuid.uuid4().hex[:12]))
    await _write_doc(store, pg_pool, org_id, ["refund policy for annual plans", "error e-1042 saml"], rnd)
    await _write_doc(store, pg_pool, other, ["refund tomatoes", "e-1042 sprinkler code"], rnd)
    mine = set(await _child_order(pg_pool, org_id))
    for q in ("refund", "e-1042 refund", "sprinkler tomatoes"):
        hits = await store.lexical_search(org_id, q, 10)
        assert {h for h, _ in hits} <= mine
    assert await store.lexical_search(org_id, "sprinkler tomatoes", 10) == []
    dense = await store.dense_search(org_id, rnd.normal(size=DIM).astype(np.float32), 10)
    assert dense and {h for h, _ in dense} <= mine
    # the plan: candidates through an index that holds the tenant (the GIN index on the organization's term hashes;
    # on a table this small the planner may take the organization btree instead), never a scan of all chunks
    async with pg_pool.acquire() as conn, conn.transaction():
        await conn.execute("set local enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(
            "explain select id from chunks where organization_id = $1 and kind = 'child' and lex_terms && $2::int[]",
            org_id, [term_hash(org_id, "refund")]))
    assert ("chunks_lex_terms" in plan or "chunks_org_doc" in plan) and "Seq Scan" not in plan


async def test_a_failed_write_leaves_nothing_behind(pg_pool, org_id):
    store = PgKnowledgeStore(pg_pool, DIM, "test")
    rnd = np.random.default_rng(2)
    await _write_doc(store, pg_pool, org_id, ["refund policy"], rnd)
    before = await pg_pool.fetchrow("select n_docs, total_len, version from knowledge_stats where organization_id = $1",
                                    org_id)
    df_before = await pg_pool.fetchval("select sum(df) from lexical_df where organization_id = $1", org_id)
    with pytest.raises(RuntimeError, match="boom"):
        async with pg_pool.acquire() as conn, conn.transaction():
            await store.write_chunks(conn, org_id, "src", [], [], [], np.zeros((0, DIM)), np.zeros((0, DIM)))
            raise RuntimeError("boom")
    after = await pg_pool.fetchrow("select n_docs, total_len, version from knowledge_stats where organization_id = $1",
                                   org_id)
    assert tuple(after) == tuple(before)
    assert await pg_pool.fetchval("select sum(df) from lexical_df where organization_id = $1", org_id) == df_before


async def test_a_different_embedder_is_a_clear_error(pg_pool, org_id):
    rnd = np.random.default_rng(3)
    await _write_doc(PgKnowledgeStore(pg_pool, DIM, "test"), pg_pool, org_id, ["refund policy"], rnd)
    other = PgKnowledgeStore(pg_pool, DIM * 2, "bigger-model")
    with pytest.raises(StoreError, match="were made with test"):
        async with pg_pool.acquire() as conn, conn.transaction():
            await other.write_chunks(conn, org_id, "src", [], [], [], np.zeros((0, DIM * 2)), np.zeros((0, DIM * 2)))
    with pytest.raises(StoreError, match="dimensions"):
        await other.dense_search(org_id, np.zeros(DIM * 2, dtype=np.float32), 5)
