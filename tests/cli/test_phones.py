"""`callwise phones normalize` as an operator runs it, on rows written in the old formats."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import typer
from typer.testing import CliRunner

from callwise.cli import phones
from tests.integrations.test_phone_rewrite import seed_old_rows


@pytest.fixture
def cli(pg_url: str, pg_pool: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, dict[str, str]]:  # pg_pool: migrated
    monkeypatch.chdir(tmp_path)  # no stray .env
    root = typer.Typer()
    root.command("noop")(lambda: None)  # a group of one command would be flattened by typer
    phones.register(root)
    return root, {"CALLWISE_DATABASE_URL": pg_url, "CALLWISE_DATA_DIR": str(tmp_path / "data"),
                  "CALLWISE_LOG_LEVEL": "ERROR", "CALLWISE_DEFAULT_PHONE_REGION": "US"}


def _db(pg_url: str, fn: Any) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(pg_url)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_normalize_rewrites_reports_and_is_idempotent(cli, pg_url: str) -> None:
    root, env = cli
    rows = _db(pg_url, seed_old_rows)
    slug = _db(pg_url, lambda c: c.fetchval("select slug from organizations where id = $1", rows["org"]))
    runner = CliRunner()

    res = runner.invoke(root, ["phones", "normalize", "--org", slug, "--dry-run"], env=env)
    assert res.exit_code == 0, res.output
    assert "would rewrite 6 numbers to E.164 (region US)" in res.stdout and "12345" in res.stdout

    res = runner.invoke(root, ["phones", "normalize", "--org", slug, "--json"], env=env)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout[res.stdout.index("{"):])
    assert {(c["place"], c["before"], c["after"]) for c in report["rewritten"]} >= {
        ("integration_credentials.from_number", "(555) 010-0100", "+15550100100"),
        ("end_users.phone", "555.010.0199", "+15550100199")}
    assert [c["before"] for c in report["unparseable"]] and not report["dry_run"]
    assert _db(pg_url, lambda c: c.fetchval("select actor from audit_log where organization_id = $1 "
                                            "and action = 'phones.normalize'", rows["org"])).startswith("cli")

    res = runner.invoke(root, ["phones", "normalize", "--org", slug], env=env)
    assert res.exit_code == 0 and "rewrote 0 numbers" in res.stdout and "2 left as they are" in res.stdout


def test_a_bad_region_or_org_is_a_clear_error(cli) -> None:
    root, env = cli
    res = CliRunner().invoke(root, ["phones", "normalize", "--region", "XX"], env=env)
    assert res.exit_code == 2 and "not a region" in res.output
    res = CliRunner().invoke(root, ["phones", "normalize", "--org", "no-such-org"], env=env)
    assert res.exit_code != 0 and "unknown organization" in res.output
