"""`callwise ingest` and `callwise search` in process (typer's runner) against the test Postgres."""

import json

import pytest
from typer.testing import CliRunner

from callwise.cli.main import app
from tests.knowledge.conftest import write_corpus


@pytest.fixture
def cli_env(pg_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    import callwise.wiring.knowledge as wiring
    from callwise.knowledge.embeddings import Embedder

    for k in ("CALLWISE_DEFAULT_ORG", "QDRANT_URL", "CALLWISE_QDRANT_URL", "COHERE_API_KEY", "CALLWISE_COHERE_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("CALLWISE_DATA_DIR", str(tmp_path / "data"))
    if "" not in wiring._embedders:
        wiring._embedders[""] = Embedder()
    return tmp_path


def test_ingest_then_search_json(cli_env):
    root = write_corpus(cli_env / "kb")
    (root / "junk.txt").write_bytes(b"\x00\xff" * 50)
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(root), "--org", "cli-acme"])
    assert res.exit_code == 0, res.output
    assert "5 added" in res.output and "1 skipped" in res.output and "binary" in res.output
    res = runner.invoke(app, ["ingest", str(root), "--org", "cli-acme"])
    assert "5 unchanged" in res.output and "0 added" in res.output
    for mode in ("bm25", "vector", "hybrid", "hybrid+rerank"):
        res = runner.invoke(app, ["search", "E-1042", "--org", "cli-acme", "--mode", mode, "--top-k", "2", "--json"])
        assert res.exit_code == 0, res.output
        hits = json.loads(res.stdout)
        assert 1 <= len(hits) <= 2
        assert {"chunk_id", "document", "score", "text"} <= set(hits[0])
        assert any(h["document"].endswith("errors/e-1042.md") for h in hits)
    res = runner.invoke(app, ["search", "refund", "--org", "cli-acme"])
    assert res.exit_code == 0 and "refunds.md" in res.output


def test_search_errors(cli_env):
    runner = CliRunner()
    assert runner.invoke(app, ["search", "  ", "--org", "x"]).exit_code == 2
    assert runner.invoke(app, ["search", "q", "--mode", "magic"]).exit_code == 2
    res = runner.invoke(app, ["search", "q", "--org", "no-such-org"])
    assert res.exit_code == 2 and "unknown organization" in res.output
    assert runner.invoke(app, ["ingest", str(cli_env / "missing")]).exit_code == 2


def test_reembed_rebuilds_the_org_vector_index_file_at_the_new_version(cli_env):
    """A re-embed bumps the knowledge version; the org's index file follows at once, so processes keep
    searching the memory-mapped index instead of falling back to an exact per-process load."""
    root = write_corpus(cli_env / "kb")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(root), "--org", "cli-reembed"]).exit_code == 0
    org_dirs = list((cli_env / "data" / "vector-index").iterdir())
    assert len(org_dirs) == 1
    before = json.loads((org_dirs[0] / "current.json").read_text())
    res = runner.invoke(app, ["ingest", "--reembed", "--org", "cli-reembed", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["reembed"]["chunks"] > 0
    after = json.loads((org_dirs[0] / "current.json").read_text())
    assert out["index"]["version"] == after["version"] > before["version"]
    assert after["count"] == before["count"]
