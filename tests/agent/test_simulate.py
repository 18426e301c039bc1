"""`callwise simulate` drives the sample calls through VAD, STT and the support pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from callwise.agent.simulate import simulate_support
from callwise.agent.voice import build_vad
from callwise.infra.audio import write_wav
from tests.call_fixtures import CALLS

ROOT = Path(__file__).resolve().parents[2]


async def test_sample_call_through_the_pipeline(whisper_stt, support_deps, kb_org, pg_pool, calls_manifest) -> None:
    call = next(c for c in calls_manifest["calls"] if c["file"] == "password-reset.wav")
    report = await simulate_support(CALLS / call["file"], deps=support_deps, stt=whisper_stt, vad=build_vad(),
                                    organization_id=kb_org, stt_name="whisper-tiny.en")
    data = report.as_dict()
    json.dumps(data)  # the --json output is one serialisable object
    assert len(data["turns"]) == len(call["utterances"]), [t["transcript"] for t in data["turns"]]
    for turn, ref in zip(data["turns"], call["utterances"], strict=True):
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
    proc = subprocess.run([sys.executable, "-m", "callwise.cli.main", "simulate", str(bad)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "CALLWISE_DATA_DIR": str(tmp_path / "d")})
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def _script(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


async def test_text_script_is_a_conversation_with_memory(support_deps, kb_org, pg_pool, tmp_path: Path) -> None:
    """A statement is acknowledged, a question answered, and a pronoun-led follow-up is retrieved with
    the topic of the question before it."""
    from callwise.agent.simulate import simulate_script

    script = _script(tmp_path, "sla.txt", "# a support lead's test conversation\n"
                     "Hi, we moved our whole company onto the Enterprise plan last month.\n"
                     "\n"
                     "What service credits do we get when you miss the uptime commitment?\n"
                     "And how long does it take to get them?\n")
    report = await simulate_script(script, deps=support_deps, organization_id=kb_org)
    data = report.as_dict()
    json.dumps(data)
    kinds = [t["kind"] for t in data["turns"]]
    assert kinds == ["acknowledgement", "answer", "answer"], [t["answer"] for t in data["turns"]]
    ack, first, follow = data["turns"]
    assert ack["sources"] == [] and "What would you like to know" in ack["answer"]
    sla = "examples/kb/plans/sla-and-service-credits.md"
    assert first["sources"][0]["document"] == sla
    assert follow["query"] and "credits" in follow["query"]  # the standalone form carries the topic
    assert follow["sources"][0]["document"] == sla
    rows = await pg_pool.fetch("select role, passages from turns where organization_id = $1 and session_id = $2 "
                               "order by seq", kb_org, report.session_id)
    assert [r["role"] for r in rows] == ["user", "assistant"] * 3
    assert json.loads(rows[1]["passages"]) == [] and json.loads(rows[5]["passages"])[0]["document"] == sla


async def test_the_follow_up_alone_finds_another_topic(support_deps, kb_org) -> None:
    """Control for the test above: without the conversation, the follow-up's words lead elsewhere."""
    result = await support_deps.retriever.retrieve("And how long does it take to get them?", kb_org, top_k=3)
    assert result.chunks[0].document != "examples/kb/plans/sla-and-service-credits.md"


@pytest.mark.parametrize("name, content, message", [
    ("empty.txt", "\n# only a comment\n", "no customer turns"),
    ("bad.jsonl", '{"text": "hi"}\nnot json\n', "bad.jsonl:2: not JSON"),
    ("bad.jsonl", '{"turn": 1}\n', 'expected a string or {"text": "..."}'),
    ("latin1.txt", None, "not UTF-8"),
])
def test_cli_refuses_bad_scripts_before_loading_models(tmp_path: Path, name: str, content: str | None,
                                                       message: str) -> None:
    path = tmp_path / name
    if content is None:
        path.write_bytes("caf\xe9 question\n".encode("latin-1"))
    else:
        path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "callwise.cli.main", "simulate", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "CALLWISE_DATA_DIR": str(tmp_path / "d")})
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_jsonl_scripts_take_strings_and_objects(tmp_path: Path) -> None:
    from callwise.agent.simulate import load_script

    path = _script(tmp_path, "c.jsonl", '"How do I reset my password?"\n\n{"text": "  And how long is the link good for? "}\n')
    assert load_script(path) == ["How do I reset my password?", "And how long is the link good for?"]
