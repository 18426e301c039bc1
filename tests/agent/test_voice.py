"""STT/TTS selection from settings, and the espeak-ng TTS plugin."""

from __future__ import annotations

import shutil

import pytest

from callwise.agent.voice import VoiceConfigError, build_stt, build_tts, stt_choice, tts_choice
from callwise.wiring.settings import Settings


def _settings(**kw):  # type: ignore[no-untyped-def]
    return Settings(_env_file=None, **kw)


def test_deepgram_when_its_key_is_set() -> None:
    s = _settings(deepgram_api_key="dg-test-key")
    assert stt_choice(s) == "deepgram"
    stt = build_stt(s)
    assert stt.capabilities.streaming and type(stt).__module__.startswith("livekit.plugins.deepgram")
    assert tts_choice(s) == "deepgram"


def test_offline_defaults(whisper_stt) -> None:  # the fixture has the model loaded: building shares it
    s = _settings()
    assert stt_choice(s) == "whisper-tiny.en"
    assert build_stt(s).model == "whisper-tiny.en"
    assert tts_choice(s) == ("espeak" if shutil.which("espeak-ng") else "none")


def test_forced_choices() -> None:
    assert build_tts(_settings(tts="none")) is None
    assert tts_choice(_settings(openai_api_key="sk-test", deepgram_api_key="dg")) == "openai"
    with pytest.raises(VoiceConfigError, match="OPENAI_API_KEY"):
        tts_choice(_settings(tts="openai"))
    with pytest.raises(VoiceConfigError, match="DEEPGRAM_API_KEY"):
        tts_choice(_settings(tts="deepgram"))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
async def test_espeak_tts_speaks() -> None:
    from callwise.agent.plugins.tts_espeak import EspeakTTS

    tts = EspeakTTS()
    frame = await tts.synthesize("Your refund is on its way.").collect()
    assert frame.sample_rate == 22050 and frame.num_channels == 1
    assert 1.0 < frame.samples_per_channel / frame.sample_rate < 4.0
    await tts.aclose()
