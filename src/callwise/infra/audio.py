"""Audio helpers shared by the STT plugin, simulation and the benchmark.

``load_audio`` reads a file into 16 kHz mono float32 and says what it changed (downmix,
resample); files it cannot use raise ``AudioError`` with a message a user can act on.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

TARGET_RATE = 16_000
FRAME_MS = 20


class AudioError(ValueError):
    """The audio cannot be used (empty, unreadable, silent)."""


@dataclass
class Clip:
    samples: np.ndarray  # float32 mono in [-1, 1] at ``sample_rate``
    sample_rate: int
    source_rate: int
    source_channels: int
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def pcm16(self) -> bytes:
        return (np.clip(self.samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def to_mono(samples: np.ndarray, channels: int) -> np.ndarray:
    if channels <= 1:
        return samples.reshape(-1)
    usable = len(samples) - len(samples) % channels
    return samples[:usable].reshape(-1, channels).mean(axis=1)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int = TARGET_RATE) -> np.ndarray:
    if src_rate == dst_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(src_rate, dst_rate)
    return resample_poly(samples, dst_rate // g, src_rate // g).astype(np.float32)


def int16_to_float(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def _read_wav(path: Path, *, downmix: bool = True) -> tuple[np.ndarray, int, int]:
    """PCM WAV: (samples, sample rate, channels in the file); mono, or (n, channels) when not downmixed."""
    with wave.open(str(path), "rb") as w:
        channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int32) << 16))
        ints = np.where(ints & 0x800000, ints - 0x1000000, ints)
        data = ints.astype(np.float32) / 8388608.0
    else:
        raise AudioError(f"{path}: unsupported WAV sample width {width * 8} bits")
    if not downmix:
        usable = len(data) - len(data) % channels
        return data[:usable].reshape(-1, channels), rate, channels
    return to_mono(data, channels), rate, channels


def _read_any(path: Path) -> tuple[np.ndarray, int, int]:
    """Other containers and codecs (mp3, ogg, flac, float WAV...) through PyAV, downmixed."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise AudioError(f"{path}: the file has no audio stream")
            codec: Any = stream.codec_context  # an AudioCodecContext (PyAV types the attribute as CodecContext)
            rate = codec.sample_rate
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):  # type: ignore[arg-type]  # an audio stream yields AudioFrames
                    parts.append(out.to_ndarray().reshape(-1))
            channels = codec.channels
    except AudioError:
        raise
    except Exception as exc:  # av raises many error types for bad input
        raise AudioError(f"{path}: not a readable audio file ({type(exc).__name__}: {exc})") from None
    data = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return data.astype(np.float32), rate, int(channels or 1)


def load_audio(path: str | Path) -> Clip:
    """Read ``path`` into 16 kHz mono; stereo is downmixed and other rates resampled (noted)."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    try:
        data, rate, channels = _read_wav(path)
    except (wave.Error, EOFError):
        data, rate, channels = _read_any(path)
    notes: list[str] = []
    if channels > 1:
        notes.append(f"downmixed {channels} channels to mono")
    if len(data) == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    if rate < 8000:
        raise AudioError(f"{path}: sample rate {rate} Hz is too low for speech recognition (need 8000 Hz or more)")
    if rate != TARGET_RATE:
        notes.append(f"resampled {rate} Hz to {TARGET_RATE} Hz")
        data = resample(data, rate)
    if float(np.max(np.abs(data))) < 1e-4:
        raise AudioError(f"{path}: the audio is silent")
    return Clip(samples=data.astype(np.float32), sample_rate=TARGET_RATE, source_rate=rate,
                source_channels=channels, notes=notes)


def load_channels(path: str | Path) -> list[Clip]:
    """One 16 kHz clip per channel of a PCM WAV (a per-speaker recording); other files give one."""
    path = Path(path)
    clip = load_audio(path)  # validates: exists, not empty, readable, not silent
    if clip.source_channels <= 1:
        return [clip]
    try:
        data, rate, channels = _read_wav(path, downmix=False)
    except (wave.Error, EOFError):
        return [clip]
    note = [f"{channels} channels taken as {channels} participants"] + (
        [f"resampled {rate} Hz to {TARGET_RATE} Hz"] if rate != TARGET_RATE else [])
    return [Clip(samples=resample(data[:, i], rate), sample_rate=TARGET_RATE, source_rate=rate,
                 source_channels=channels, notes=list(note)) for i in range(channels)]


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = TARGET_RATE) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
