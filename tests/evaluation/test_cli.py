"""`callwise eval golden import|export`, `callwise ab create|assign|report`, and clear CLI errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callwise.cli.main import app


@pytest.fixture
def cli_env(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("CALLWISE_DATA_DIR", str(tmp_path / "data"))
    return "cli-" + uuid.uuid4().hex[:8]


def test_golden_import_export_roundtrip(cli_env: str, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "golden", "import", "--org", cli_env])
    assert res.exit_code == 0, res.output
    assert "imported" in res.output
    out = tmp_path / "golden.jsonl"
    res = runner.invoke(app, ["eval", "golden", "export", "--org", cli_env, "--out", str(out)])
    assert res.exit_code == 0, res.output
    from callwise.evaluation import golden

    assert {e.id for e in golden.load(out).examples} == {e.id for e in golden.load().examples}


def test_bad_golden_file_is_one_clear_line(cli_env: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("")
    res = CliRunner().invoke(app, ["eval", "nightly", "--org", cli_env, "--golden", str(bad)])
    assert res.exit_code == 2 and "golden set is empty" in res.output
    res = CliRunner().invoke(app, ["eval", "schedule", "--at", "25:99"])
    assert res.exit_code == 2 and "HH:MM" in res.output


def test_ab_commands(cli_env: str) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["ab", "create", "rerank-off", "--org", cli_env, "--control", '{"rerank": true}',
                              "--treatment", '{"rerank": false}', "--split", "0.5"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["ab", "assign", "rerank-off", "alice", "--org", cli_env])
    assert res.exit_code == 0 and json.loads(res.output)["variant"] in ("control", "treatment")
    res = runner.invoke(app, ["ab", "report", "rerank-off", "--org", cli_env, "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["sample_too_small"] and rep["verdict"].startswith("sample too small")
    res = runner.invoke(app, ["ab", "report", "nope", "--org", cli_env])
    assert res.exit_code == 2 and "no experiment named" in res.output
    res = runner.invoke(app, ["ab", "create", "x", "--org", cli_env, "--treatment", "not json"])
    assert res.exit_code == 2 and "JSON object" in res.output
