from tests.knowledge.conftest import CORPUS, vector_count, write_corpus


async def test_sync_add_unchanged_change_remove_skip(kb, org_id, tmp_path, pg_pool):
    root = write_corpus(tmp_path / "kb")
    (root / "notes.bin.txt").write_bytes(b"\x00\x01garbage" * 100)
    (root / "logo.png").write_bytes(b"\x89PNG")
    (root / "empty.md").write_text("")
    first = await kb.ingestor.ingest(root, org_id)
    assert first.counts["added"] == len(CORPUS)
    reasons = {i.source.rsplit("/", 1)[-1]: i.reason for i in first.items if i.status == "skipped"}
    assert set(reasons) == {"notes.bin.txt", "logo.png", "empty.md"}
    assert "binary" in reasons["notes.bin.txt"] and "unsupported" in reasons["logo.png"] and "empty" in reasons["empty.md"]
    children = await pg_pool.fetchval(
        "select count(*) from chunks where organization_id = $1 and kind = 'child'", org_id)
    assert children == first.chunks > 0
    assert await vector_count(kb, org_id) == children + await pg_pool.fetchval(
        "select count(*) from chunks where organization_id = $1 and kind = 'parent'", org_id)

    again = await kb.ingestor.ingest(root, org_id)
    assert again.counts["unchanged"] == len(CORPUS) and again.counts["added"] == 0 and again.chunks == 0

    (root / "accounts/password.md").write_text("# Reset your password\n\nUse the magic link instead; passwords are gone.\n")
    (root / "plans/sku.txt").unlink()
    (root / "billing/new.md").write_text("# Gift cards\n\nOrbitly gift cards never expire.\n")
    third = await kb.ingestor.ingest(root, org_id)
    status = {i.source.split("/kb/")[-1]: i.status for i in third.items}
    assert status["accounts/password.md"] == "changed"
    assert status["plans/sku.txt"] == "removed"
    assert status["billing/new.md"] == "added"
    assert status["billing/refunds.md"] == "unchanged"
    sources = {r["source"] for r in await pg_pool.fetch("select source from documents where organization_id = $1", org_id)}
    assert f"{root}/plans/sku.txt" not in sources and f"{root}/billing/new.md" in sources
    texts = [r["text"] for r in await pg_pool.fetch(
        "select c.text from chunks c join documents d on d.id = c.document_id"
        " where d.organization_id = $1 and d.source like '%password.md'", org_id)]
    assert texts and all("magic link" in t for t in texts)

    # lexical search followed every change
    res = await kb.retriever.retrieve("SKU-88A", org_id, mode="bm25")
    assert all("sku.txt" not in c.document for c in res.chunks)
    res = await kb.retriever.retrieve("magic link", org_id, mode="bm25")
    assert res.chunks[0].document.endswith("password.md")
    assert await vector_count(kb, org_id) == await pg_pool.fetchval(
        "select count(*) from chunks where organization_id = $1", org_id)


async def test_single_file_and_missing_path(kb, org_id, tmp_path):
    root = write_corpus(tmp_path / "kb")
    report = await kb.ingestor.ingest(root / "errors/e-1042.md", org_id)
    assert [i.status for i in report.items] == ["added"]
    assert report.items[0].source == f"{root}/errors/e-1042.md"
    import pytest

    with pytest.raises(FileNotFoundError):
        await kb.ingestor.ingest(tmp_path / "nope", org_id)


async def test_another_process_ingest_is_picked_up(kb, org_id, tmp_path, pg_pool, embedder):
    """A second store (as in another process, its own dense cache) writes; the first one's next query sees it."""
    from tests.knowledge.conftest import make_kb

    assert (await kb.retriever.retrieve("gift cards", org_id, mode="bm25")).chunks == []
    assert (await kb.retriever.retrieve("gift cards", org_id, mode="vector")).chunks == []
    other = make_kb(pg_pool, embedder)
    await other.ingestor.ingest(write_corpus(tmp_path / "x", {"gift.md": "# Gift cards\n\nThey never expire.\n"}), org_id)
    for mode in ("bm25", "vector"):
        res = await kb.retriever.retrieve("gift cards", org_id, mode=mode)
        assert res.chunks and res.chunks[0].document.endswith("gift.md"), mode
