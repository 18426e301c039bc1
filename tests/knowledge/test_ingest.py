import pytest

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


async def _consistent(pool, org_id: str) -> None:  # type: ignore[no-untyped-def]
    """The lexical statistics match the chunk rows exactly (nothing half-written, nothing counted twice)."""
    stats = await pool.fetchrow("select n_docs, total_len from knowledge_stats where organization_id = $1", org_id)
    rows = await pool.fetchrow(
        "select count(*) as n, coalesce(sum(lex_len), 0) as len, coalesce(sum(cardinality(lex_terms)), 0) as postings,"
        " count(*) filter (where embedding is null or lexical is null) as missing"
        " from chunks where organization_id = $1 and kind = 'child'", org_id)
    df = await pool.fetchval("select coalesce(sum(df), 0) from lexical_df where organization_id = $1", org_id)
    assert (stats["n_docs"], stats["total_len"], df, rows["missing"]) == (rows["n"], rows["len"], rows["postings"], 0)


@pytest.mark.timeout(1200)
async def test_killed_ingest_leaves_each_document_old_or_new(kb, pg_pool, pg_url, tmp_path):
    """SIGKILL a real `callwise ingest` mid-way: every document is wholly at its old or its new version."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid as _uuid

    from callwise.infra.db import ensure_organization

    slug = "kill-" + _uuid.uuid4().hex[:8]
    org_id = await ensure_organization(pg_pool, slug)
    root = tmp_path / "kb"

    def write(version: str) -> None:
        for i in range(12):
            paras = [f"Topic {i} paragraph {p}: the {version} wording of policy {i} covers refunds, invoices, "
                     f"single sign-on and error codes in detail, {version} everywhere." for p in range(10)]
            write_corpus(root, {f"doc{i:02d}.md": f"# Policy {i}\n\n" + "\n\n".join(paras) + "\n"})

    write("alphaversion")
    await kb.ingestor.ingest(root, org_id)
    old_hash = {r["source"]: r["content_hash"] for r in await pg_pool.fetch(
        "select source, content_hash from documents where organization_id = $1", org_id)}
    write("betaversion")
    env = {**os.environ, "DATABASE_URL": pg_url, "CALLWISE_DATA_DIR": str(tmp_path / "data")}
    env.pop("QDRANT_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "callwise.cli.main", "ingest", str(root), "--org", slug, "--json"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    changed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        changed = await pg_pool.fetchval(
            "select count(*) from documents where organization_id = $1 and content_hash <> all($2::text[])",
            org_id, list(old_hash.values()))
        if changed >= 1:
            break
        await __import__("asyncio").sleep(0.05)
    finished = proc.poll() is not None
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert changed >= 1 and not finished, (proc.returncode, proc.stderr.read().decode()[-2000:] if proc.stderr else "")
    docs = await pg_pool.fetch("select id, source, content_hash from documents where organization_id = $1", org_id)
    assert len(docs) == 12
    at = {"old": 0, "new": 0}
    for d in docs:
        texts = [r["text"] for r in await pg_pool.fetch("select text from chunks where document_id = $1", d["id"])]
        markers = {m for t in texts for m in ("alphaversion", "betaversion") if m in t}
        new = d["content_hash"] != old_hash[d["source"]]
        assert texts and markers == ({"betaversion"} if new else {"alphaversion"}), d["source"]
        at["new" if new else "old"] += 1
    assert at["new"] >= 1
    await _consistent(pg_pool, org_id)
    hits = await kb.retriever.retrieve("betaversion", org_id, top_k=30, mode="bm25")
    assert len({c.document for c in hits.chunks}) == at["new"]
    # the next run finishes the job
    await kb.ingestor.ingest(root, org_id)
    await _consistent(pg_pool, org_id)
    assert (await kb.retriever.retrieve("alphaversion", org_id, mode="bm25")).chunks == []


async def test_a_page_is_found_by_words_only_its_lead_sentence_has(kb, org_id, tmp_path, pg_pool):
    """The lead sentence heads every chunk's BM25 text, so a question in its words finds the options chunk too."""
    root = tmp_path / "man"
    root.mkdir()
    options = "\n\n".join(f"--flag{i}\n    Sets option number {i} of the annotation output format." for i in range(150))
    (root / "git-blame.md").write_text(
        "# git-blame(1)\n\n## NAME\n\ngit-blame - Show what revision and author last modified each line of a file\n\n"
        f"## OPTIONS\n\n{options}\n")
    (root / "git-log.md").write_text("# git-log(1)\n\n## NAME\n\ngit-log - Show commit logs\n\nLists commits.\n")
    (root / "git-tag.md").write_text("# git-tag(1)\n\n## NAME\n\ngit-tag - Create or list tags\n\nTags commits.\n")
    await kb.ingestor.ingest(root, org_id)
    assert await pg_pool.fetchval("select summary from documents where organization_id = $1 and source like '%blame.md'",
                                  org_id) == "git-blame - Show what revision and author last modified each line of a file"
    res = await kb.retriever.retrieve("who last modified each line", org_id, mode="bm25", top_k=10)
    blame = [c for c in res.chunks if c.document.endswith("git-blame.md")]
    assert len(blame) >= 2  # the NAME chunk and an OPTIONS chunk that never says "modified"
    assert any("modified" not in c.text for c in blame)
