"""The CLI as a user runs it: a real subprocess against the embedded or a given Postgres."""

import json
import os
import re
import subprocess
import sys

CLI = [sys.executable, "-m", "callwise.cli.main"]


def _run(args, cwd, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWISE_") and k != "DATABASE_URL"}
    env.update(env_extra or {})
    return subprocess.run(CLI + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_design_command(tmp_path):
    res = _run(["--help"], tmp_path)
    assert res.returncode == 0
    for cmd in ("ingest", "search", "ask", "costs", "simulate", "worker", "serve", "eval", "ab", "migrate", "db", "config"):
        assert cmd in res.stdout


def test_migrate_then_status_on_the_embedded_default(tmp_path):
    res = _run(["migrate"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "0001_initial.sql" in res.stdout or "up to date" in res.stdout
    status = _run(["db", "status"], tmp_path)
    assert status.returncode == 0, status.stderr
    assert "0 pending" in status.stdout and "pending" not in status.stdout.replace("0 pending", "")
    assert (tmp_path / ".callwise" / "pg" / "PG_VERSION").exists()


def test_unreachable_database_url_is_one_clear_line(tmp_path):
    res = _run(["db", "status"], tmp_path, {"DATABASE_URL": "postgresql://app:pw@127.0.0.1:9/callwise"})
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "127.0.0.1" in res.stderr and "port 9" in res.stderr and "pw@" not in res.stderr


def test_wrong_password_is_explained(tmp_path, pg_url):
    url = re.sub(r"//[^@/]+@", "//nobody:wrong@", pg_url)
    assert url != pg_url
    res = _run(["db", "status"], tmp_path, {"DATABASE_URL": url})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "DATABASE_URL" in res.stderr


def test_corrupt_embedded_data_dir_is_a_clear_error(tmp_path):
    pg = tmp_path / ".callwise" / "pg"
    pg.mkdir(parents=True)
    (pg / "garbage.bin").write_bytes(os.urandom(64))
    res = _run(["db", "status"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "corrupt" in res.stderr


def test_invalid_setting_names_the_variable(tmp_path):
    res = _run(["config"], tmp_path, {"CALLWISE_TIERS": "tier1,gold"})
    assert res.returncode == 2 and "CALLWISE_TIERS" in res.stderr and "Traceback" not in res.stderr


def test_config_masks_secrets(tmp_path):
    res = _run(["config", "--json"], tmp_path, {"OPENAI_API_KEY": "sk-proj-verysecretkey9876"})
    assert res.returncode == 0
    shown = json.loads(res.stdout)
    assert shown["openai_api_key"] == "****9876"
    assert "verysecretkey" not in res.stdout + res.stderr
