"""`callwise simulate` drives the sample calls through VAD, STT and the support pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.audio import write_wav
from agent.simulate import simulate_support
from agent.wiring.voice import build_vad
from tests.agent.conftest import CALLS

ROOT = Path(__file__).resolve().parents[2]


async def test_sample_call_through_the_pipeline(whisper_stt, support_deps, kb_org, pg_pool, calls_manifest) -> None:
    call = next(c for c in calls_manifest["calls"] if c["file"] == "password-reset.wav")
    report = await simulate_support(CALLS / call["file"], deps=support_deps, stt=whisper_stt, vad=build_vad(),
                                    organization_id=kb_org, stt_name="whisper-tiny.en")
    data = report.as_dict()
    json.dumps(data)  # the --json output is one serialisable object
    assert len(data["turns"]) == len(call["utterances"]), [t["transcript"] for t in data["turns"]]
    for turn, ref in zip(data["turns"], call["utterances"]):
        assert abs(turn["start_s"] - ref["start_s"]) < 0.6 and abs(turn["end_s"] - ref["end_s"]) < 0.6
        assert {"transcript", "answer", "sources", "tier", "escalated", "latencies_ms"} <= set(turn)
        assert turn["answer"]
        assert turn["latencies_ms"]["stt_ms"] > 0 and "eos_to_first_token_ms" in turn["latencies_ms"]
    first = data["turns"][0]
    assert any(s["document"] == "examples/kb/accounts/reset-password.md" for s in first["sources"])
    rows = await pg_pool.fetchval("select count(*) from turns where session_id = $1", report.session_id)
    assert rows == 2 * len(call["utterances"])


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"RIFF" + os.urandom(64)), "not a readable audio file"),
    (lambda p: write_wav(p, np.zeros(8000, np.float32)), "silent"),
])
def test_cli_refuses_bad_audio_before_loading_models(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.wav"
    make(bad)
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "simulate", str(bad)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "CALLWISE_DATA_DIR": str(tmp_path / "d")})
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
