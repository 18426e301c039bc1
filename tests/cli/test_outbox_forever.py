"""`callwise outbox run --forever`: the host's one outbox dispatcher beside the worker. A real process and
a real SIGTERM: it stops cleanly, and the embedded Postgres it started stops with it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.processes import server_running, start_command


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_outbox_run_forever_stops_on_a_signal_with_its_postgres(tmp_path: Path, sig: signal.Signals) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWISE_") and k != "DATABASE_URL"}
    env.update(CALLWISE_DATA_DIR=str(data), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc, line = start_command(["outbox", "run", "--forever"], env, ready="outbox dispatcher running")
    try:
        assert "every organization" in line
        time.sleep(1.5)  # a few idle polls
        assert proc.poll() is None and server_running(data)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f"stopped by {sig.name}" in err and "Traceback" not in err
    assert not server_running(data)
    assert list((data / "pg-users").iterdir()) == []
