"""Long-running callwise commands as real processes, for the tests that stop them with a real signal."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from callwise.infra.db import PostmasterPid, pid_alive

ROOT = Path(__file__).resolve().parents[1]


def server_running(data_dir: Path) -> bool:
    """Whether the embedded Postgres of ``data_dir`` is up."""
    pm = PostmasterPid.read(data_dir / "pg")
    return pm is not None and pid_alive(pm.pid)


def start_command(args: list[str], env: dict[str, str], *, ready: str,
                  timeout_s: float = 240) -> tuple[subprocess.Popen[str], str]:
    """``python -m callwise.cli.main ARGS`` started in the repository, and the stdout line that says it is ready
    (the test fails with the process's stderr when it exits first). The caller stops and reaps it."""
    proc = subprocess.Popen([sys.executable, "-m", "callwise.cli.main", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    line = ""
    while time.monotonic() < deadline and ready not in line:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            pytest.fail(f"callwise {' '.join(args)} exited: {proc.stderr.read() if proc.stderr else ''}")
    return proc, line
