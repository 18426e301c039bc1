"""Worker wiring that can be checked without a LiveKit server (none can run on the build machines)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from livekit import rtc

from callwise.agent.worker import build_server, call_kind, valid_frames

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("configured, room, room_meta, job_meta, expected", [
    ("support", "meeting-x", "", "", "support"),
    ("meeting", "call-1", "", "", "meeting"),
    ("auto", "meeting-weekly", "", "", "meeting"),
    ("auto", "call-1", "", "", "support"),
    ("auto", "call-1", '{"kind": "meeting"}', "", "meeting"),
    ("auto", "meeting-x", "", '{"kind": "support", "org": "acme"}', "support"),
])
def test_dispatch_kind(configured: str, room: str, room_meta: str, job_meta: str, expected: str) -> None:
    ctx = SimpleNamespace(room=SimpleNamespace(name=room, metadata=room_meta), job=SimpleNamespace(metadata=job_meta))
    assert call_kind(ctx, configured) == expected  # type: ignore[arg-type]


def test_agent_names() -> None:
    assert build_server("support")._agent_name == "support"
    assert build_server("meeting")._agent_name == "meeting"
    assert build_server("auto")._agent_name == ""


async def test_bad_frames_are_skipped() -> None:
    good = rtc.AudioFrame(b"\x00\x01" * 320, 16000, 1, 320)
    empty = rtc.AudioFrame(b"", 16000, 1, 0)

    async def frames():  # type: ignore[no-untyped-def]
        for f in (good, empty, good):
            yield f

    assert [f async for f in valid_frames(frames())] == [good, good]


def test_worker_without_livekit_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "CALLWISE_LIVEKIT"))}
    proc = subprocess.run([sys.executable, "-m", "callwise.cli.main", "worker", "start"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "LIVEKIT_URL" in proc.stderr


async def test_job_process_opens_its_pool_on_the_job_loop_before_the_job(pg_url: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the framework's own job process (``ProcJobExecutor``): the setup hook arranges the
    opening, the pool is open on the job loop while the process idles, the job uses it, and the job's
    shutdown closes it."""
    import json

    from tests.agent.job_process_probe import fake_job, probe_entry, probe_setup, run_one_job

    out = tmp_path / "probe.json"
    monkeypatch.setenv("PROBE_PG_URL", pg_url)
    monkeypatch.setenv("PROBE_OUT", str(out))
    await run_one_job(probe_setup, probe_entry, fake_job({}), idle_s=3.0)
    result = json.loads(out.read_text())
    assert result == {"started_before_job": True, "opened_before_job": True, "same_loop": True, "value": 42}
    assert (tmp_path / "probe.json.closed").exists()
