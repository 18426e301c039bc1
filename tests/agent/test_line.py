"""What a real line throws at a call, in live mode: recordings played in real time into the framework's own
AgentSession with the worker's line handlers (callwise.agent.line), Silero VAD, the local turn detector,
faster-whisper and espeak-ng. Silence timeouts are shortened (settings) so each call stays short."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from callwise.agent.line import LineTimeouts
from callwise.agent.live import simulate_live
from callwise.agent.voice import build_turn_handling, build_vad
from tests.agent.line_calls import cough_call, hang_up_call, silent_call, talk_over_call

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the live mode times espeak-ng's audio")

SHORT = LineTimeouts(prompt_s=3.0, goodbye_s=7.0)


async def _live(path: Path, deps, stt, kb_org: str, agent_settings, *, timeouts: LineTimeouts = SHORT,  # type: ignore[no-untyped-def]
                **kw):
    from callwise.agent.plugins.tts_espeak import EspeakTTS

    return await simulate_live(path, deps=deps, stt=stt, vad=build_vad(), tts=EspeakTTS(), organization_id=kb_org,
                               turn_handling=build_turn_handling(agent_settings, "audio"), timeouts=timeouts, **kw)


async def test_a_silent_caller_is_asked_once_then_the_call_ends_with_a_goodbye(
        whisper_stt, support_deps, kb_org, pg_pool, agent_settings, tmp_path: Path) -> None:
    report = await _live(silent_call(tmp_path).path, support_deps, whisper_stt, kb_org, agent_settings, stay_on_line_s=20)
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
        whisper_stt, support_deps, kb_org, pg_pool, agent_settings, tmp_path: Path) -> None:
    path = talk_over_call(tmp_path, after_s=1.5).path  # the refund question, then "how long ..." over the answer
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


async def test_a_cough_or_a_noise_burst_is_not_a_turn(whisper_stt, support_deps, kb_org, pg_pool, agent_settings,
                                                      tmp_path: Path) -> None:
    """Before the question (nobody talking) and over the agent's answer: no user turn, no answer, no stop."""
    call = cough_call(tmp_path)
    path, q_start, q_end = call.path, call.marks["question_start_s"], call.marks["question_end_s"]
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
        whisper_stt, support_deps, pg_pool, org_id, agent_settings, tmp_path: Path) -> None:
    from callwise.integrations.credentials import CredentialStore
    from callwise.routing.types import CustomerContext
    from callwise.wiring.settings import Settings
    from tests.vendors import twilio as tw

    path = hang_up_call(tmp_path, fraction=0.55).path  # "Hi, I upgraded our workspace to the Busi-" and the line drops
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
