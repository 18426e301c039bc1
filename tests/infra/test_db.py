"""The embedded server: password auth (no trust), and it stays up while any process uses it.

Each test runs its own embedded cluster in a temporary data directory (not the session one),
with real processes: a subprocess that starts the server, this process attaching beside it.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest

from callwise.infra.db import DatabaseError, EmbeddedPostgres, PostmasterPid, _pg_bin, create_pool, pid_alive

ROOT = Path(__file__).resolve().parents[2]

# Process A: start the embedded server, say its URL, wait for a line on stdin, then close it as callwise does.
STARTER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from callwise.infra.db import EmbeddedPostgres
    pg = EmbeddedPostgres(Path(sys.argv[1]))
    print(pg.start(), flush=True)
    sys.stdin.readline()
    print("stopped" if pg.stop() else "left running", flush=True)
""")


def _starter(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", STARTER, str(data_dir)], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("postgresql://"), proc.stderr.read() if proc.stderr else url
    return proc, url


def _server_running(data_dir: Path) -> bool:
    pm = PostmasterPid.read(data_dir / "pg")
    return pm is not None and pid_alive(pm.pid)


async def test_password_required_and_kept_private(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path)
    url = pg.start()
    try:
        mode = stat.S_IMODE(pg.password_file.stat().st_mode)
        assert mode == 0o600 and pg.password in url and len(pg.password) >= 32
        hba = (pg.pgdata / "pg_hba.conf").read_text()
        rules = [ln for ln in hba.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert rules and all(ln.split()[-1] == "scram-sha-256" for ln in rules)
        for bad in (f"postgresql://postgres@{pg.host}:{pg.port}/callwise",
                    f"postgresql://postgres:wrong@{pg.host}:{pg.port}/callwise"):
            with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
                await asyncpg.connect(bad, timeout=10)
        with pytest.raises(DatabaseError, match="rejected the credentials"):
            await create_pool(f"postgresql://postgres:wrong@{pg.host}:{pg.port}/callwise")
        # the unix socket asks for the password too (no trust for local connections either)
        res = subprocess.run([str(_pg_bin() / "psql"), "-h", str(pg.pgdata), "-p", str(pg.port), "-U", "postgres",
                              "-d", "callwise", "-w", "-tAc", "select 1"], capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "PGPASSWORD"}, user=pg._run_as)
        assert res.returncode != 0 and "password" in res.stderr
        conn = await asyncpg.connect(url, timeout=10)
        assert await conn.fetchval("select 1") == 1
        await conn.close()
    finally:
        pg.stop()


async def test_server_stays_up_while_another_process_uses_it(tmp_path: Path) -> None:
    proc, url_a = _starter(tmp_path)  # process A starts the server
    b = EmbeddedPostgres(tmp_path)
    try:
        url_b = b.start()  # this process (B) attaches
        assert not b.started_here and url_b == url_a
        assert proc.communicate("\n", timeout=60)[0].strip() == "left running"  # A exits
        conn = await asyncpg.connect(url_b, timeout=10)
        assert await conn.fetchval("select count(*) from pg_database where datname = 'callwise'") == 1
        await conn.close()
    finally:
        stopped = b.stop()
    assert stopped and not _server_running(tmp_path)  # the last user out stops it


async def test_killed_user_does_not_keep_the_server_forever(tmp_path: Path) -> None:
    b = EmbeddedPostgres(tmp_path)
    b.start()  # B starts it this time
    proc, _ = _starter(tmp_path)  # A attaches, then dies without closing
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert b.stop() and not _server_running(tmp_path)
    assert not list(b.users_dir.glob("*"))


async def test_cluster_from_a_trust_release_is_hardened(tmp_path: Path) -> None:
    """A data dir initialised by the previous release (initdb --auth=trust) gets a password on start."""
    old = EmbeddedPostgres(tmp_path)
    old.pgdata.mkdir(parents=True)
    old._prepare_permissions()
    res = old._run("initdb", "-D", str(old.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                   "--no-instructions")
    assert res.returncode == 0, res.stderr
    old.password_file.unlink()  # the old release had no password file
    pg = EmbeddedPostgres(tmp_path)
    url = pg.start()
    try:
        assert "trust" not in [ln.split()[-1] for ln in (pg.pgdata / "pg_hba.conf").read_text().splitlines()
                               if ln.strip() and not ln.startswith("#")]
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            await asyncpg.connect(f"postgresql://postgres@{pg.host}:{pg.port}/callwise", timeout=10)
        conn = await asyncpg.connect(url, timeout=10)
        assert await conn.fetchval("select 1") == 1
        await conn.close()
    finally:
        pg.stop()


def test_missing_password_file_is_a_clear_error(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path)
    pg.start()
    pg.stop()
    pg.password_file.unlink()
    with pytest.raises(DatabaseError, match="pg.password is missing"):
        EmbeddedPostgres(tmp_path).start()


def test_db_stop_stops_it_for_everyone(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path)
    pg.start()
    env = {**os.environ, "CALLWISE_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    res = subprocess.run([sys.executable, "-m", "callwise.cli.main", "db", "stop"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    said = " ".join(res.stdout.split())  # rich wraps long lines at the terminal width
    assert res.returncode == 0 and f"in use by pid {os.getpid()}" in said, res.stdout + res.stderr
    assert not _server_running(tmp_path)
    assert pg.stop() is False  # nothing left to stop; the registration is gone
    assert not list(pg.users_dir.glob("*"))
