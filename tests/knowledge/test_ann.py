"""The per-organization vector index files: written from Postgres, mapped by readers, never used stale."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from callwise.knowledge.ann import AnnIndexes, AnnParams, Snapshot
from callwise.knowledge.pgstore import PgKnowledgeStore
from callwise.knowledge.types import ChunkRecord

DIM = 16


async def _write_doc(store: PgKnowledgeStore, pool, org: str, n: int, rnd: np.random.Generator) -> str:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn, conn.transaction():
        doc_id = str(await conn.fetchval(
            "insert into documents (organization_id, source, title, mime_type, content_hash, size_bytes)"
            " values ($1, $2, 't', 'text/plain', 'h', 1) returning id", org, f"doc-{uuid.uuid4().hex}"))
        parents, children = [], []
        for i in range(n):
            pid = str(uuid.uuid4())
            parents.append(ChunkRecord(pid, doc_id, "parent", i, f"text {i}", 1, ()))
            children.append(ChunkRecord(str(uuid.uuid4()), doc_id, "child", i, f"text {i}", 1, (), parent_id=pid))
        vecs = rnd.normal(size=(n, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        await store.write_chunks(conn, org, "src", parents, children, [c.text for c in children], vecs, vecs)
    return doc_id


def _unit(rnd: np.random.Generator) -> np.ndarray:
    q = rnd.normal(size=DIM).astype(np.float32)
    return q / np.linalg.norm(q)


async def test_search_goes_to_the_index_file_and_matches_exact_search(pg_pool, org_id, tmp_path: Path):
    rnd = np.random.default_rng(0)
    writer = PgKnowledgeStore(pg_pool, DIM, "m", ann=AnnIndexes(tmp_path))
    for _ in range(4):
        await _write_doc(writer, pg_pool, org_id, 50, rnd)
    built = await writer.refresh_index(org_id)
    assert built is not None and built["action"] == "built" and built["chunks"] == 200
    # another process: its own reader over the same folder, and a store without files for the exact answer
    reader = PgKnowledgeStore(pg_pool, DIM, "m", ann=AnnIndexes(tmp_path))
    exact = PgKnowledgeStore(pg_pool, DIM, "m")
    for _ in range(10):
        q = _unit(rnd)
        got = await reader.dense_search(org_id, q, 10)
        want = await exact.dense_search(org_id, q, 10)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    assert reader.reloads == 0  # no vectors were loaded from the database by the reader
    assert exact.reloads == 1


async def test_a_write_after_the_index_makes_search_exact_until_refreshed(pg_pool, org_id, tmp_path: Path):
    rnd = np.random.default_rng(1)
    store = PgKnowledgeStore(pg_pool, DIM, "m", ann=AnnIndexes(tmp_path))
    first = await _write_doc(store, pg_pool, org_id, 10, rnd)
    await store.refresh_index(org_id)
    added = await _write_doc(store, pg_pool, org_id, 30, rnd)  # bumps the version: the file is stale
    new_ids = {str(r["id"]) for r in await pg_pool.fetch(
        "select id from chunks where document_id = $1 and kind = 'child'", uuid.UUID(added))}
    q = _unit(rnd)
    hits = await store.dense_search(org_id, q, 60)
    assert new_ids <= {i for i, _ in hits}  # the stale file was not used: the new chunks are found
    assert store.reloads == 1
    await store.delete_document(org_id, first)
    refreshed = await store.refresh_index(org_id)
    assert refreshed is not None and str(refreshed["action"]).startswith("refreshed (+30 -10)")
    hits = await store.dense_search(org_id, q, 60)
    assert {i for i, _ in hits} == new_ids and store.reloads == 1  # from the refreshed file, no reload


def test_a_large_index_is_approximate_with_high_recall(tmp_path: Path):
    rnd = np.random.default_rng(2)
    centers = rnd.normal(size=(50, DIM))
    mat = (centers[rnd.integers(0, 50, 3000)] + 0.3 * rnd.normal(size=(3000, DIM))).astype(np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    ids = [str(uuid.uuid4()) for _ in range(len(mat))]
    ann = AnnIndexes(tmp_path, AnnParams(exact_below=1000))
    ann.write("org", Snapshot(7, "m", ids, mat))
    view = AnnIndexes(tmp_path, AnnParams(exact_below=1000)).open("org", 7, DIM)
    assert view is not None and not view.exact
    assert ann.open("org", 8, DIM) is None and ann.open("org", 7, DIM + 1) is None  # stale version, other model
    recall = []
    for _ in range(30):
        q = _unit(rnd)
        want = set(np.argsort(-(mat @ q))[:20].tolist())
        got = {ids.index(i) for i, _ in view.search(q, 20)}
        recall.append(len(got & want) / 20)
    assert float(np.mean(recall)) >= 0.95


def test_a_missing_or_removed_file_is_not_used(tmp_path: Path):
    ann = AnnIndexes(tmp_path)
    assert ann.open("nobody", 1, DIM) is None
    mat = np.eye(DIM, dtype=np.float32)
    ann.write("org", Snapshot(3, "m", [str(uuid.uuid4()) for _ in range(DIM)], mat))
    folder = tmp_path / "org" / str(ann.pointer("org")["dir"])  # type: ignore[index]
    for f in folder.iterdir():
        f.unlink()
    assert AnnIndexes(tmp_path).open("org", 3, DIM) is None


def test_writers_of_one_org_take_turns_and_a_reader_never_mixes_two_writes(tmp_path: Path) -> None:
    """Two ingests refreshing one org at once (same snapshot version) while a process opens the file: every
    view's ids match its vectors; the second writer finds the version current; one folder is left."""
    import threading

    rnd = np.random.default_rng(3)
    mat = rnd.normal(size=(400, DIM)).astype(np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    ids = [str(uuid.uuid4()) for _ in range(len(mat))]
    by_id = dict(zip(ids, mat, strict=True))
    results: list[dict[str, object]] = []
    snaps = [Snapshot(5, "m", ids, mat), Snapshot(5, "m", ids[::-1], mat[::-1].copy())]  # two read orders
    writers = [threading.Thread(target=lambda s=s: results.append(AnnIndexes(tmp_path).write("org", s)))
               for s in snaps]
    for w in writers:
        w.start()
    seen = 0
    while any(w.is_alive() for w in writers) or seen == 0:
        view = AnnIndexes(tmp_path).open("org", 5, DIM)
        if view is not None:
            seen += 1
            q = mat[seen % len(mat)]
            for cid, score in view.search(q, 5):
                assert abs(float(by_id[cid] @ q) - score) < 1e-4
    for w in writers:
        w.join()
    assert sorted(str(r["action"]) for r in results) == ["built", "current"]
    assert len([p for p in (tmp_path / "org").iterdir() if p.name.startswith("v")]) == 1


async def test_ingest_through_the_wiring_writes_the_file_a_fresh_process_searches(pg_pool, org_id, embedder,
                                                                                   tmp_path: Path) -> None:
    """As the worker is wired (``build_knowledge``): ``callwise ingest`` leaves the org's index file under the
    data dir, and a process that never loaded the org's vectors answers from it."""
    import callwise.wiring.knowledge as wk
    from callwise.wiring.settings import Settings
    from tests.knowledge.conftest import write_corpus

    settings = Settings(data_dir=tmp_path / "data")
    writer = wk.build_knowledge(settings, pg_pool, embedder=embedder)
    report = await writer.ingestor.ingest(write_corpus(tmp_path / "kb"), org_id)
    assert report.index is not None and report.index["action"] == "built"
    assert report.as_dict()["index"]["chunks"] == report.chunks
    assert (tmp_path / "data" / wk.INDEX_DIR / org_id / "current.json").exists()
    wk._indexes.clear()  # a fresh process: no reader yet
    reader = wk.build_knowledge(settings, pg_pool, embedder=embedder)
    hits = await reader.retriever.retrieve("How long does a refund take?", org_id, top_k=3)
    assert hits.chunks and reader.vectors.store.reloads == 0


def test_loading_the_index_library_does_not_break_onnxruntime_later() -> None:
    """usearch loaded first, then onnxruntime (Silero VAD, the turn detector), in a fresh process: no crash."""
    import subprocess
    import sys

    code = ("from callwise.knowledge.ann import _usearch_index; _usearch_index()(ndim=4); "
            "import onnxruntime, livekit.plugins.silero; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-500:]
