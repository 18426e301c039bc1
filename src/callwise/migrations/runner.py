"""Apply numbered ``NNNN_name.sql`` files once each, in order, each in its own transaction.

Applied files are recorded in ``schema_migrations`` with a SHA-256 of their text; a file that
changed after it was applied is an error naming the file (write a new migration instead).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATIONS_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x63616C6C  # "call": one runner at a time across processes

_BOOKKEEPING = """
create table if not exists schema_migrations (
    version    integer primary key,
    filename   text not null,
    checksum   text not null,
    applied_at timestamptz not null default now()
)
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    filename: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied_at: Any | None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    seen: dict[int, str] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        version = int(m.group(1))
        if version in seen:
            raise MigrationError(f"{path.name}: version {version} already used by {seen[version]}")
        seen[version] = path.name
        found.append(Migration(version, path.name, path.read_text(encoding="utf-8")))
    return found


async def _applied(conn: Any) -> dict[int, Any]:
    await conn.execute(_BOOKKEEPING)
    rows = await conn.fetch("select version, filename, checksum, applied_at from schema_migrations")
    return {r["version"]: r for r in rows}


def _check_unchanged(migrations: list[Migration], applied: dict[int, Any]) -> None:
    for mig in migrations:
        row = applied.get(mig.version)
        if row is not None and row["checksum"] != mig.checksum:
            raise MigrationError(
                f"{mig.filename} was changed after it was applied (checksum {row['checksum'][:12]} in the database, "
                f"{mig.checksum[:12]} on disk); restore it and add a new migration instead"
            )


async def migrate(pool: Any, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations; return the ones applied now (empty when up to date)."""
    migrations = discover(directory)
    done: list[Migration] = []
    async with pool.acquire() as conn:
        await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        try:
            applied = await _applied(conn)
            _check_unchanged(migrations, applied)
            for mig in migrations:
                if mig.version in applied:
                    continue
                async with conn.transaction():
                    try:
                        await conn.execute(mig.sql)
                    except Exception as exc:
                        raise MigrationError(f"{mig.filename} failed: {exc}") from exc
                    await conn.execute(
                        "insert into schema_migrations (version, filename, checksum) values ($1, $2, $3)",
                        mig.version, mig.filename, mig.checksum,
                    )
                done.append(mig)
        finally:
            await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
    return done


async def status(pool: Any, directory: Path = MIGRATIONS_DIR) -> list[MigrationState]:
    migrations = discover(directory)
    async with pool.acquire() as conn:
        applied = await _applied(conn)
    _check_unchanged(migrations, applied)
    return [MigrationState(m, applied[m.version]["applied_at"] if m.version in applied else None) for m in migrations]
