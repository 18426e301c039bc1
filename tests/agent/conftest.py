"""Fixtures of the agent suite: heavy models load once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CALLS = Path(__file__).resolve().parents[2] / "examples" / "calls"


@pytest.fixture(scope="session")
def whisper_stt():  # type: ignore[no-untyped-def]
    from agent.plugins.stt_whisper import WhisperSTT

    return WhisperSTT(model="tiny.en", cpu_threads=2)


@pytest.fixture(scope="session")
def calls_manifest() -> dict:
    return json.loads((CALLS / "manifest.json").read_text())
