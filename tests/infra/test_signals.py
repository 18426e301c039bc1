"""SIGTERM and SIGINT shut a long-running command down cleanly: the embedded Postgres it started is
stopped and its registration removed. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.processes import server_running, start_command

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import asyncio, os, sys
    from callwise.infra.signals import Stopped, run_until_signal

    async def work():
        try:
            print("ready", flush=True)
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)  # cleanup that awaits still runs
            print("cleaned up", flush=True)

    try:
        asyncio.run(run_until_signal(work))
    except Stopped as exc:
        print(exc, flush=True)
        sys.exit(exc.exit_code)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_the_task_and_cleanup_runs(sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, text=True, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert out.splitlines() == ["cleaned up", f"stopped by {sig.name}"]
    assert proc.returncode == 128 + sig


def test_sigterm_on_serve_stops_the_embedded_postgres(tmp_path: Path) -> None:
    """`callwise serve` started the server; SIGTERM (what systemd, Docker and Kubernetes send) must
    leave neither the server running nor the dead process registered."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path / "data"
    env = {**os.environ, "CALLWISE_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc, line = start_command(["serve", "--port", str(port)], env, ready="callwise API on")
    try:
        assert "callwise API on" in line
        assert server_running(data) and list((data / "pg-users").iterdir())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert not server_running(data)
    assert list((data / "pg-users").iterdir()) == []
