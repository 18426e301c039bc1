"""`callwise simulate --live`: a recording played in real time into the framework's own AgentSession
(Silero VAD, the local turn detector, faster-whisper, espeak-ng), timed from its metrics and the audio
timeline. One short question keeps it near 20 s of wall time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from callwise.agent.live import CallerPlayback, RecordingAudioOutput, Segment, simulate_live
from callwise.agent.voice import build_turn_handling, build_vad
from callwise.infra.audio import load_audio, write_wav
from tests.call_fixtures import CALLS

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the live mode times espeak-ng's audio")


def _one_question(tmp_path: Path, calls_manifest: dict) -> tuple[Path, dict]:
    """The refund question of ``refund.wav`` alone, with its manifest entry (the caller's turn)."""
    entry = next(c for c in calls_manifest["calls"] if c["file"] == "refund.wav")
    utt = entry["utterances"][1]
    clip = load_audio(CALLS / "refund.wav")
    lead, tail = 0.3, 1.0
    a, b = int((utt["start_s"] - lead) * 16000), int((utt["end_s"] + tail) * 16000)
    path = tmp_path / "question.wav"
    write_wav(path, clip.samples[a:b])
    manifest = {"calls": [{"file": path.name, "kind": "support", "channels": ["caller"],
                           "utterances": [{**utt, "start_s": lead, "end_s": round(lead + utt["end_s"] - utt["start_s"], 3)}]}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return path, manifest["calls"][0]["utterances"][0]


async def test_a_question_through_the_framework_session(whisper_stt, support_deps, kb_org, pg_pool, calls_manifest,
                                                        agent_settings, tmp_path: Path) -> None:
    from callwise.agent.plugins.tts_espeak import EspeakTTS

    path, _ = _one_question(tmp_path, calls_manifest)
    report = await simulate_live(path, deps=support_deps, stt=whisper_stt, vad=build_vad(), tts=EspeakTTS(),
                                 organization_id=kb_org, turn_handling=build_turn_handling(agent_settings, "audio"),
                                 turn_detection_name="turn-detector-v1-mini")
    data = report.as_dict()
    json.dumps(data)
    assert len(data["turns"]) == 1, data["turns"]
    turn = data["turns"][0]
    assert "refund" in turn["customer_said"].lower()
    assert turn["agent_said"]
    # the customer's last word, from Whisper word timings, on the call's timeline (file and call agree:
    # nothing was waited for before this question), where the sound ends (espeak trails ~0.4 s of hiss)
    samples = load_audio(path).samples
    sound_end = np.nonzero(np.abs(samples) > 0.02)[0][-1] / 16000
    assert abs(turn["customer_last_word_s"] - sound_end) < 0.3, (turn, sound_end)
    assert turn["first_audio_s"] > turn["customer_last_word_s"]
    lat = turn["latencies_ms"]
    assert lat["last_word_to_first_audio"] == pytest.approx(
        (turn["first_audio_s"] - turn["customer_last_word_s"]) * 1000, abs=2)
    for key in ("end_of_turn_delay", "transcription_delay", "llm_ttft", "tts_ttfb"):
        assert lat[key] is not None and lat[key] > 0, (key, lat)
    # the framework only starts the reply after its end-of-turn decision, which needs the transcript
    assert lat["last_word_to_first_audio"] >= lat["transcription_delay"]
    assert turn["cut_in"] is False and data["cut_ins"] == 0
    rows = await pg_pool.fetch("select role, text from turns where session_id = $1 order by seq", report.session_id)
    assert [r["role"] for r in rows] == ["user", "assistant"], rows  # one turn stored: no discarded attempt
    assert rows[0]["text"] == turn["customer_said"]
    assert rows[1]["text"].strip() == turn["agent_said"].strip()  # what the caller heard is what was stored


def test_the_call_timeline_skips_the_waits() -> None:
    """A file position maps to where it was played: a segment's end belongs to it, not to the next."""
    clip = load_audio(CALLS / "refund.wav")
    play = CallerPlayback(clip, [Segment(0.0, 7.654, call_start_s=0.0), Segment(7.654, 14.39, call_start_s=12.0)])
    assert play.call_s(6.0) == 6.0
    assert play.call_s(7.654) == pytest.approx(12.0)
    assert play.call_s(7.654, end=True) == pytest.approx(7.654)
    assert play.call_s(10.0) == pytest.approx(14.346)
    assert play.call_s(20.0) is None


async def test_the_output_plays_out_in_real_time_and_stops_when_cleared() -> None:
    from livekit import rtc

    out = RecordingAudioOutput()
    pcm = np.zeros(2400, dtype="<i2").tobytes()  # 100 ms at 24 kHz
    for _ in range(5):
        await out.capture_frame(rtc.AudioFrame(pcm, 24000, 1, 2400))
    out.flush()
    ev = await out.wait_for_playout()
    assert not ev.interrupted and ev.playback_position == pytest.approx(0.5, abs=0.05)
    seg = out.segments[0]
    assert len(seg.frames) == 5 and seg.duration_s == pytest.approx(0.5)
    for _ in range(20):
        await out.capture_frame(rtc.AudioFrame(pcm, 24000, 1, 2400))
    out.flush()
    out.clear_buffer()
    ev = await out.wait_for_playout()
    assert ev.interrupted and ev.playback_position < 0.5 and out.segments[1].interrupted



def test_a_user_turn_ended_mid_sentence_is_counted() -> None:
    """Two user turns inside one utterance's window: the first was ended mid-sentence."""
    from livekit.agents import llm

    from callwise.agent.live import ChatLog, partial_user_turns

    clip = load_audio(CALLS / "refund.wav")
    play = CallerPlayback(clip, [Segment(0.0, 7.654, call_start_s=0.0), Segment(7.654, 14.39, call_start_s=12.0)])
    play.t0_wall = 1000.0
    chat = ChatLog()
    said = [(3.0, "Hi, I was looking at my invoice."), (5.0, "and I think I was charged twice."),
            (16.0, "Can I still get a full refund?")]
    items = []
    for at, text in said:
        item = llm.ChatMessage(role="user", content=[text])
        chat.items.append((1000.0 + at, item))
        items.append(item)
    assert partial_user_turns(chat, play) == {id(items[0])}
