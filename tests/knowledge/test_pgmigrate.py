"""A data dir from the release that kept vectors in qdrant-edge is migrated into Postgres, not emptied."""

from __future__ import annotations

import numpy as np

from callwise.knowledge.embedders.reembed import model_name
from callwise.knowledge.pgmigrate import legacy_migration
from callwise.knowledge.pgstore import PgKnowledgeStore, PgVectors
from callwise.knowledge.vectors import EdgeVectorStore
from tests.knowledge.conftest import make_kb, write_corpus


async def test_previous_release_data_dir_is_migrated(pg_pool, embedder, org_id, tmp_path):
    data_dir = tmp_path / "data"
    # the previous release: chunk rows in Postgres, vectors in <data_dir>/qdrant, BM25 in memory
    edge = EdgeVectorStore(data_dir / "qdrant", embedder.dim)
    old = make_kb(pg_pool, embedder, edge)
    report = await old.ingestor.ingest(write_corpus(tmp_path / "kb"), org_id)
    assert report.counts["added"] == 5
    ids = [str(r["id"]) for r in await pg_pool.fetch("select id from chunks where organization_id = $1", org_id)]
    old_vectors = edge.vectors(org_id, ids)
    edge.close()
    assert len(old_vectors) == len(ids)
    assert await pg_pool.fetchval(
        "select count(*) from chunks where organization_id = $1 and embedding is not null", org_id) == 0

    # the upgrade: the first query of the new release migrates, then answers from Postgres
    store = PgKnowledgeStore(pg_pool, embedder.dim, model_name(embedder), first_use=legacy_migration(data_dir, embedder))
    steps: list[tuple[int, int]] = []
    from callwise.knowledge.pgmigrate import migrate_legacy

    counts = await migrate_legacy(store, data_dir, embedder, progress=lambda done, total: steps.append((done, total)))
    assert counts["copied"] > 0 and counts["documents"] >= 5
    assert steps[-1][0] == steps[-1][1]
    assert not (data_dir / "qdrant").exists() and (data_dir / "qdrant.migrated").is_dir()
    new = make_kb(pg_pool, embedder, PgVectors(store))
    for mode in ("bm25", "vector", "hybrid"):
        res = await new.retriever.retrieve("SAML assertion expired", org_id, top_k=3, mode=mode)
        assert res.chunks and res.chunks[0].document.endswith("errors/e-1042.md"), mode
    rows = await pg_pool.fetch("select id, embedding from chunks where organization_id = $1", org_id)
    assert len(rows) == len(ids)
    for r in rows:  # the vectors were copied, not re-embedded
        assert np.array_equal(np.frombuffer(r["embedding"], dtype="<f4"), old_vectors[str(r["id"])])
    # ingest goes on as usual on the migrated data (unchanged documents stay unchanged)
    again = await new.ingestor.ingest(tmp_path / "kb", org_id)
    assert again.counts["unchanged"] == 5


async def test_missing_vectors_are_reembedded(pg_pool, embedder, org_id, tmp_path):
    data_dir = tmp_path / "data"
    edge = EdgeVectorStore(data_dir / "qdrant", embedder.dim)
    old = make_kb(pg_pool, embedder, edge)
    await old.ingestor.ingest(write_corpus(tmp_path / "kb", {"a.md": "# Gift cards\n\nThey never expire.\n"}), org_id)
    doc = await pg_pool.fetchval("select id from documents where organization_id = $1", org_id)
    edge.delete_document(org_id, str(doc))  # a shard that lost this document's points
    edge.close()
    store = PgKnowledgeStore(pg_pool, embedder.dim, model_name(embedder), first_use=legacy_migration(data_dir, embedder))
    res = await make_kb(pg_pool, embedder, PgVectors(store)).retriever.retrieve("gift cards", org_id, mode="vector")
    assert res.chunks and res.chunks[0].document.endswith("a.md")  # the query itself triggered the migration
    assert (data_dir / "qdrant.migrated").is_dir()
