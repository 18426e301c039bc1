"""Speech in and out, chosen from settings.

=====  ==================================  ==========================================
part   with a key                          offline default
=====  ==================================  ==========================================
VAD    Silero (bundled ONNX)               same
STT    Deepgram streaming (DEEPGRAM_...)   faster-whisper (``stt_model``) + Silero VAD
TTS    OpenAI, else Deepgram               espeak-ng if installed, else text-only
=====  ==================================  ==========================================

``CALLWISE_TTS`` forces one choice (``openai``, ``deepgram``, ``espeak``, ``none``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from livekit.agents import stt, tts, vad
from livekit.agents.voice.turn import PreemptiveGenerationOptions, TurnHandlingOptions

from callwise.wiring.settings import Settings

log = logging.getLogger("callwise.voice")


class VoiceConfigError(RuntimeError):
    """A forced choice cannot be honoured (its key or binary is missing)."""


@dataclass(frozen=True)
class VoiceChoice:
    stt: str
    tts: str
    vad: str = "silero"

    def as_dict(self) -> dict[str, str]:
        return {"stt": self.stt, "tts": self.tts, "vad": self.vad}


#: Silero's silence that ends speech (the framework's end of turn starts from it)
MIN_SILENCE_S = 0.55


@lru_cache(maxsize=4)
def _silero(min_silence_s: float) -> vad.VAD:
    from livekit.plugins import silero

    return silero.VAD.load(min_silence_duration=min_silence_s)


def build_vad(settings: Settings | None = None, *, min_silence_s: float = MIN_SILENCE_S) -> vad.VAD:
    """One Silero VAD per process and setting (streams created from it are independent)."""
    return _silero(min_silence_s)


def stt_choice(settings: Settings) -> str:
    return "deepgram" if settings.deepgram_api_key else f"whisper-{settings.stt_model}"


def build_stt(settings: Settings, language: str = "en", *, streaming: bool = True,
              vad: vad.VAD | None = None) -> stt.STT:
    """``language``: the call's (callwise.calls.languages), when known before the call; Deepgram is told it.
    ``streaming``: Whisper decodes at the caller's first pause (``stt_speculative``); False: once per utterance
    after the end of speech (the framework's ``StreamAdapter``), for comparison. ``vad``: the session's (the
    stream cuts utterances where the session does); the process's Silero by default."""
    if settings.deepgram_api_key:
        from livekit.plugins import deepgram

        from callwise.calls.languages import DEEPGRAM_LANGUAGES

        return deepgram.STT(api_key=settings.deepgram_api_key.get_secret_value(), model="nova-3",
                            language=DEEPGRAM_LANGUAGES.get(language, "en-US"), interim_results=True,
                            smart_format=True)
    from callwise.agent.plugins.stt_whisper import WhisperSTT

    return WhisperSTT(model=settings.stt_model, cache_dir=settings.data_dir / "models",
                      vad=(vad or build_vad(settings)) if streaming else None)


def tts_choice(settings: Settings) -> str:
    from callwise.agent.plugins.tts_espeak import espeak_available

    wanted = settings.tts
    if wanted == "auto":
        if settings.openai_api_key:
            return "openai"
        if settings.deepgram_api_key:
            return "deepgram"
        return "espeak" if espeak_available() else "none"
    if wanted == "openai" and not settings.openai_api_key:
        raise VoiceConfigError("CALLWISE_TTS=openai needs OPENAI_API_KEY")
    if wanted == "deepgram" and not settings.deepgram_api_key:
        raise VoiceConfigError("CALLWISE_TTS=deepgram needs DEEPGRAM_API_KEY")
    if wanted == "espeak" and not espeak_available():
        raise VoiceConfigError("CALLWISE_TTS=espeak needs the espeak-ng command (apt-get install espeak-ng)")
    return wanted


def build_tts(settings: Settings, language: str = "en") -> tts.TTS | None:
    """The TTS to speak answers with, or ``None`` for a text-only agent; espeak-ng in the call's ``language``."""
    choice = tts_choice(settings)
    if choice == "openai":
        from livekit.plugins import openai

        kwargs = {"base_url": settings.openai_base_url} if settings.openai_base_url else {}
        return openai.TTS(api_key=settings.openai_api_key.get_secret_value(), **kwargs)  # type: ignore[union-attr,arg-type]
    if choice == "deepgram":
        from livekit.plugins import deepgram

        return deepgram.TTS(api_key=settings.deepgram_api_key.get_secret_value())  # type: ignore[union-attr]
    if choice == "espeak":
        from callwise.agent.plugins.tts_espeak import EspeakTTS
        from callwise.calls.languages import ESPEAK_VOICES

        return EspeakTTS(voice=ESPEAK_VOICES.get(language, "en-us"))
    log.info("no TTS available: the agent answers in text only (install espeak-ng for offline speech)")
    return None


def voice_choice(settings: Settings) -> VoiceChoice:
    return VoiceChoice(stt=stt_choice(settings), tts=tts_choice(settings))


# ---------------------------------------------------------------------------------------- turn taking
TURN_DETECTION = ("audio", "vad", "text")


def turn_detection_choice(settings: Settings, mode: str = "audio") -> str:
    """``audio``: the framework's ``inference.TurnDetector`` (LiveKit Cloud's ``v1`` when the LiveKit
    keys are set, else the local ``v1-mini`` model from ``livekit-local-inference``, offline);
    ``vad``: Silero's silence alone, for comparison; ``text``: Silero's silence, held open while the
    transcript plainly stops mid-phrase (``callwise.agent.completeness``)."""
    if mode not in TURN_DETECTION:
        raise VoiceConfigError(f"turn detection must be one of {', '.join(TURN_DETECTION)}, not {mode!r}")
    if mode in ("vad", "text"):
        return {"vad": "vad", "text": "vad+transcript-completeness"}[mode]
    cloud = settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret
    return "turn-detector-v1" if cloud else "turn-detector-v1-mini"


def build_turn_handling(settings: Settings, mode: str = "audio", *, preemptive: bool = True,
                        preemptive_tts: bool = False, min_delay: float | None = None,
                        max_delay: float | None = None) -> TurnHandlingOptions:
    """The session's ``turn_handling`` options (``livekit.agents.voice.turn.TurnHandlingOptions``).

    Preemptive generation is on (the framework's default): the answer starts on the transcript at the caller's
    first pause. Our "LLM" is the whole support turn, so each reply is a draft (``callwise.calls.draft``) that
    writes nothing until the session commits its user turn; before that, a run on "Hi, I was looking at my
    invoice." opened a billing case before the caller finished the sentence (paused-billing.wav), and discarded
    runs were stored as answers nobody heard. ``preemptive_tts``: the draft is also synthesized before the turn
    is committed (the framework's default: text only). ``min_delay``/``max_delay``: the framework's endpointing delays
    (seconds after the last speech; ``max_delay`` is how long a turn the detector finds unfinished is held)."""
    choice = turn_detection_choice(settings, mode)
    detection: Any = "vad"
    if choice == "vad+transcript-completeness":
        from callwise.agent.completeness import CompletenessDetector

        detection = CompletenessDetector()
    elif choice != "vad":
        from livekit.agents.inference import TurnDetector

        if choice == "turn-detector-v1":
            detection = TurnDetector(  # the gateway URL: LIVEKIT_INFERENCE_URL, else LiveKit Cloud's
                version="v1", api_key=settings.livekit_api_key.get_secret_value(),  # type: ignore[union-attr]
                api_secret=settings.livekit_api_secret.get_secret_value())  # type: ignore[union-attr]
        else:
            detection = TurnDetector(version="v1-mini")
    # the framework's own interruption model needs LiveKit Cloud; VAD barge-in offline
    preemption = PreemptiveGenerationOptions(enabled=preemptive)
    if preemptive and preemptive_tts:
        preemption["preemptive_tts"] = True
    options = TurnHandlingOptions(turn_detection=detection, preemptive_generation=preemption,
                                  interruption={"mode": "vad"} if choice != "turn-detector-v1" else {})
    endpointing: dict[str, float] = {}
    if choice == "vad+transcript-completeness":
        endpointing["max_delay"] = 1.5  # how long an unfinished sentence is held open at most
    if min_delay is not None:
        endpointing["min_delay"] = min_delay
    if max_delay is not None:
        endpointing["max_delay"] = max_delay
    if endpointing:
        options["endpointing"] = endpointing  # type: ignore[typeddict-item]
    return options
