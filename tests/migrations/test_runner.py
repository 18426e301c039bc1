import re
import shutil
from pathlib import Path

import pytest

from callwise.migrations.runner import MIGRATIONS_DIR, MigrationError, discover, migrate, status

# Tables DESIGN.md lists; every one but organizations holds customer data.
DESIGN_TABLES = {
    "organizations", "end_users", "sessions", "turns", "escalations", "survey_responses",
    "conversation_insights", "documents", "chunks", "knowledge_gaps", "unresolved_problems", "cost_events",
    "cost_summaries", "ai_prompts", "golden_dataset", "eval_runs", "experiment_results", "feedback_ratings",
    "integration_credentials", "audit_log",
}


@pytest.fixture
async def scratch_db(pg_pool, pg_url):
    """A fresh, empty database on the session server, so migrations run from zero."""
    import asyncpg

    name = "mig_" + __import__("uuid").uuid4().hex[:10]
    await pg_pool.execute(f'create database "{name}"')
    dsn = re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", pg_url.split("://", 1)[1], count=1)
    dsn = pg_url.split("://", 1)[0] + "://" + dsn
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()
        await pg_pool.execute(f'drop database "{name}" with (force)')


def test_migration_files_are_numbered_in_order():
    found = discover()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].filename == "0001_initial.sql"


async def test_fresh_apply_then_rerun_is_a_noop(scratch_db):
    applied = await migrate(scratch_db)
    assert [m.filename for m in applied] == [m.filename for m in discover()]
    assert await migrate(scratch_db) == []
    states = await status(scratch_db)
    assert all(s.applied for s in states)
    count = await scratch_db.fetchval("select count(*) from schema_migrations")
    assert count == len(states)


async def test_every_design_table_exists_with_organization_fk(pg_pool):
    rows = await pg_pool.fetch(
        "select table_name from information_schema.tables where table_schema = 'public'")
    tables = {r["table_name"] for r in rows}
    assert DESIGN_TABLES <= tables
    for table in DESIGN_TABLES - {"organizations"}:
        fk = await pg_pool.fetchval(
            """
            select count(*) from information_schema.key_column_usage k
            join information_schema.table_constraints c using (constraint_name, table_schema)
            where c.constraint_type = 'FOREIGN KEY' and k.table_name = $1 and k.column_name = 'organization_id'
            """, table)
        nullable = await pg_pool.fetchval(
            "select is_nullable from information_schema.columns where table_name = $1 and column_name = 'organization_id'",
            table)
        assert fk == 1, f"{table}.organization_id is not a foreign key"
        assert nullable == "NO", f"{table}.organization_id is nullable"


async def test_changed_file_after_apply_is_an_error_naming_it(scratch_db, tmp_path: Path):
    for f in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(f, tmp_path / f.name)
    await migrate(scratch_db, tmp_path)
    target = tmp_path / "0001_initial.sql"
    target.write_text(target.read_text() + "\n-- tampered\n")
    with pytest.raises(MigrationError, match="0001_initial.sql was changed after it was applied"):
        await migrate(scratch_db, tmp_path)
    with pytest.raises(MigrationError, match="0001_initial.sql"):
        await status(scratch_db, tmp_path)


async def test_failing_migration_rolls_back_and_names_the_file(scratch_db, tmp_path: Path):
    for f in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "9000_broken.sql").write_text("create table half_done (id int);\nselect * from no_such_table;\n")
    with pytest.raises(MigrationError, match="9000_broken.sql failed"):
        await migrate(scratch_db, tmp_path)
    assert await scratch_db.fetchval("select to_regclass('half_done')") is None
    assert await scratch_db.fetchval("select count(*) from schema_migrations where version = 9000") == 0


def test_badly_named_file_is_rejected(tmp_path: Path):
    (tmp_path / "add-users.sql").write_text("select 1")
    with pytest.raises(MigrationError, match="NNNN_lower_snake.sql"):
        discover(tmp_path)


@pytest.mark.parametrize("sql", [
    "insert into survey_responses (organization_id, session_id, rating, channel_used) values ($1, $2, 6, 'voice')",
    "insert into turns (organization_id, session_id, seq, speaker, role, text, tier) values ($1, $2, 0, 'a', 'assistant', 'x', 'tier4')",
    "insert into experiment_results (organization_id, experiment_id, user_key, variant) values ($1, $2, 'u', 'placebo')",
])
async def test_check_constraints_reject_bad_values(pg_pool, org_id, sql):
    import asyncpg

    session_id = await pg_pool.fetchval(
        "insert into sessions (organization_id, room, kind) values ($1, 'r', 'support') returning id", org_id)
    exp_id = await pg_pool.fetchval(
        "insert into experiments (organization_id, name) values ($1, 'e' || gen_random_uuid()) returning id", org_id)
    second = exp_id if "experiment_results" in sql else session_id
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(sql, org_id, second)
