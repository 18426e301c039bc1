"""What a real line throws at a call, in live mode: recordings played in real time into the framework's own
AgentSession with the worker's line handlers (callwise.agent.line), Silero VAD, the local turn detector,
faster-whisper and espeak-ng. Silence timeouts are shortened (settings) so each call stays short."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cryptography.fernet import Fernet

from callwise.agent.line import LineTimeouts
from callwise.agent.live import simulate_live
from callwise.agent.voice import build_turn_handling, build_vad
from callwise.infra.audio import load_audio, write_wav
from tests.call_fixtures import CALLS

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the live mode times espeak-ng's audio")

RATE = 16_000
SHORT = LineTimeouts(prompt_s=3.0, goodbye_s=7.0)


def _utterance(calls_manifest: dict, file: str, i: int) -> tuple[np.ndarray, dict]:
    entry = next(c for c in calls_manifest["calls"] if c["file"] == file)
    utt = entry["utterances"][i]
    samples = load_audio(CALLS / file).samples
    return samples[int(utt["start_s"] * RATE):int(utt["end_s"] * RATE)], utt


def _write_call(tmp_path: Path, name: str, parts: list[np.ndarray], utterances: list[dict], **entry: object) -> Path:
    """``parts`` joined into ``name`` beside a manifest whose entry lists ``utterances`` (start/end in the file)."""
    path = tmp_path / name
    write_wav(path, np.concatenate(parts).astype(np.float32))
    manifest = {"calls": [{"file": name, "kind": "support", "channels": ["caller"], "utterances": utterances,
                           **entry}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return path


def _silence(seconds: float) -> np.ndarray:
    """A quiet line: faint hiss (a file of exact zeros is refused as silent audio)."""
    return (np.random.default_rng(7).standard_normal(int(seconds * RATE)) * 0.001).astype(np.float32)


def cough(seconds: float = 0.35, seed: int = 3) -> np.ndarray:
    """A cough's shape: a sharp band-limited burst (about 300-3000 Hz) that decays within a third of a second."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3000)] = 0
    noise = np.fft.irfft(spectrum, n)
    t = np.arange(n) / RATE
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-t / 0.08)
    burst = noise / np.abs(noise).max() * envelope * 0.6
    return burst.astype(np.float32)


async def _live(path: Path, deps, stt, kb_org: str, agent_settings, *, timeouts: LineTimeouts = SHORT,  # type: ignore[no-untyped-def]
                **kw):
    from callwise.agent.plugins.tts_espeak import EspeakTTS

    return await simulate_live(path, deps=deps, stt=stt, vad=build_vad(), tts=EspeakTTS(), organization_id=kb_org,
                               turn_handling=build_turn_handling(agent_settings, "audio"), timeouts=timeouts, **kw)


async def test_a_silent_caller_is_asked_once_then_the_call_ends_with_a_goodbye(
        whisper_stt, support_deps, kb_org, pg_pool, agent_settings, tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    write_wav(path, _silence(0.5))
    report = await _live(path, support_deps, whisper_stt, kb_org, agent_settings, stay_on_line_s=20)
    data = report.as_dict()
    assert data["silence_prompts"] == 1 and data["end_reason"] == "caller_silent", data
    said = [t["agent_said"] for t in data["turns"]]
    assert said == ["Are you still there?", "I haven't heard from you, so I'll end the call now. Please call back "
                    "any time. Goodbye!"], data["turns"]
    prompt, goodbye = (t["first_audio_s"] for t in data["turns"])
    # the silence is counted from the end of the greeting (0.3 s before the file starts) to the line's first audio
    assert SHORT.prompt_s - 0.5 < prompt < SHORT.prompt_s + 1.5, prompt
    assert SHORT.goodbye_s - 0.5 < goodbye < SHORT.goodbye_s + 1.5, goodbye
    row = await pg_pool.fetchrow("select status, ended_at, end_reason from sessions where id = $1", report.session_id)
    assert row["ended_at"] is not None and row["status"] == "ended" and row["end_reason"] == "caller_silent"
    turns = await pg_pool.fetch("select role, text from turns where session_id = $1 order by seq", report.session_id)
    assert [(r["role"], r["text"]) for r in turns] == [("assistant", s) for s in said]


async def test_the_caller_talking_over_an_answer_stops_it_and_what_they_heard_is_stored(
        whisper_stt, support_deps, kb_org, pg_pool, agent_settings, calls_manifest, tmp_path: Path) -> None:
    question, _ = _utterance(calls_manifest, "refund.wav", 1)  # "... can I still get a full refund?"
    over, _ = _utterance(calls_manifest, "refund.wav", 2)  # "Okay, and how long does it take ..."
    lead = 0.3
    q_end = lead + len(question) / RATE
    path = _write_call(tmp_path, "talk-over.wav", [_silence(lead), question, _silence(1.0), over, _silence(1.0)], [
        {"start_s": lead, "end_s": round(q_end, 3)},
        {"start_s": round(q_end + 1.0, 3), "end_s": round(q_end + 1.0 + len(over) / RATE, 3),
         "over_agent_after_s": 1.5}])
    report = await _live(path, support_deps, whisper_stt, kb_org, agent_settings)
    data = report.as_dict()
    first = data["turns"][0]
    assert first["interrupted"] and "refund" in first["customer_said"].lower(), data["turns"]
    # from the caller's first sound over the answer to the answer's last sound
    assert first["stop_after_onset_ms"] is not None and 0 < first["stop_after_onset_ms"] <= 300, first
    assert 1.4 <= first["heard_s"] < first["audio_s"], first
    assert len(data["turns"]) == 2 and "how long" in data["turns"][1]["customer_said"].lower(), data["turns"]
    rows = await pg_pool.fetch("select role, text, heard, error from turns where session_id = $1 order by seq",
                               report.session_id)
    answer = next(r for r in rows if r["role"] == "assistant")
    assert answer["error"] == "interrupted" and answer["heard"], dict(answer)
    # what was heard is the start of what was said, and shorter
    heard_words, said_words = answer["heard"].split(), answer["text"].split()
    assert 0 < len(heard_words) < len(said_words) and said_words[:len(heard_words) - 1] == heard_words[:-1], \
        dict(answer)
    assert answer["heard"] == first["agent_said"].strip()
    assert [r["role"] for r in rows] == ["user", "assistant", "user", "assistant"], rows


def noise_burst(seconds: float = 0.25, seed: int = 9) -> np.ndarray:
    """A click or a knock on the line: flat noise, on and off."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 0.3).clip(-1, 1).astype(np.float32)


async def test_a_cough_or_a_noise_burst_is_not_a_turn(whisper_stt, support_deps, kb_org, pg_pool, agent_settings,
                                                      calls_manifest, tmp_path: Path) -> None:
    """Before the question (nobody talking) and over the agent's answer: no user turn, no answer, no stop."""
    question, _ = _utterance(calls_manifest, "refund.wav", 1)
    before = [_silence(0.5), cough(), _silence(0.8), noise_burst(), _silence(1.0)]
    q_start = sum(len(p) for p in before) / RATE
    q_end = q_start + len(question) / RATE
    path = _write_call(tmp_path, "cough.wav", [*before, question, _silence(1.0), cough(seed=5), _silence(1.0)], [
        {"start_s": round(q_start, 3), "end_s": round(q_end, 3)},
        {"start_s": round(q_end + 1.0, 3), "end_s": round(q_end + 1.0 + 0.35, 3), "over_agent_after_s": 1.0}])
    report = await _live(path, support_deps, whisper_stt, kb_org, agent_settings, max_wait_s=3.0,
                         timeouts=LineTimeouts())  # the default 30 s: no silence prompt in this short call
    data = report.as_dict()
    assert len(data["turns"]) == 1, data["turns"]
    turn = data["turns"][0]
    assert "refund" in turn["customer_said"].lower() and not turn["interrupted"], turn
    assert "agent_stopped_s" not in turn, turn  # the answer played to its end
    # the VAD heard speech only where the question is (the sounds are not speech to it)
    assert all(q_start - 0.2 <= t <= q_end for t in data["caller_sounds"]), (data["caller_sounds"], q_start, q_end)
    rows = await pg_pool.fetch("select role, text, heard from turns where session_id = $1 order by seq",
                               report.session_id)
    assert [r["role"] for r in rows] == ["user", "assistant"] and rows[1]["heard"] is None, rows
    assert data["end_reason"] == "completed"


async def test_a_hang_up_mid_sentence_ends_the_call_with_nothing_lost(
        whisper_stt, support_deps, pg_pool, org_id, agent_settings, calls_manifest, tmp_path: Path) -> None:
    from callwise.integrations.credentials import CredentialStore
    from callwise.routing.types import CustomerContext
    from callwise.wiring.settings import Settings
    from tests.vendors import twilio as tw

    said, _ = _utterance(calls_manifest, "refund.wav", 0)  # "Hi, I upgraded our workspace to the Business plan ..."
    cut = said[:int(len(said) * 0.55)]  # the line drops mid-sentence
    path = _write_call(tmp_path, "hang-up.wav", [_silence(0.3), cut], [{"start_s": 0.3, "end_s": 0.3 + len(cut) / RATE}],
                       hangs_up=True)
    key = Fernet.generate_key().decode()
    settings = Settings(_env_file=None, data_dir=tmp_path, encryption_key=key, survey_followup="auto")
    await CredentialStore(pg_pool, Fernet(key.encode())).set(
        org_id, "twilio", secrets={"auth_token": tw.AUTH_TOKEN},
        fields={"account_sid": tw.ACCOUNT_SID, "from_number": "+15550001111"})
    report = await _live(path, support_deps, whisper_stt, org_id, agent_settings, settings=settings,
                         customer=CustomerContext(name="Dana", extra={"phone": "+15557654321"}))
    data = report.as_dict()
    assert data["end_reason"] == "caller_hung_up", data
    row = await pg_pool.fetchrow("select status, ended_at, end_reason from sessions where id = $1", report.session_id)
    assert row["ended_at"] is not None and row["end_reason"] == "caller_hung_up"
    users = await pg_pool.fetch("select text, error from turns where session_id = $1 and role = 'user' order by seq",
                                report.session_id)
    words = " ".join(r["text"] for r in users).lower()
    assert "upgraded" in words and "business" in words, users  # the words the caller got out are kept
    survey = await pg_pool.fetchrow("select channel, contact from survey_requests where session_id = $1",
                                    report.session_id)
    assert survey is not None and tuple(survey) == ("sms", "+15557654321")
