"""A livekit-agents TTS plugin over the espeak-ng command (Debian package ``espeak-ng``).

Offline and light: one ``espeak-ng --stdout`` process per sentence (the framework's
``tts.StreamAdapter`` splits the streamed answer into sentences), 22.05 kHz mono PCM out.
``espeak_available()`` tells the wiring whether to fall back to text-only.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import uuid
import wave

from livekit.agents import APIConnectOptions, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

SAMPLE_RATE = 22_050


def espeak_binary() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def espeak_available() -> bool:
    return espeak_binary() is not None


async def synthesize_wav(text: str, *, voice: str = "en-us", words_per_minute: int = 165) -> bytes:
    """Run espeak-ng and return its WAV bytes."""
    binary = espeak_binary()
    if binary is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    proc = await asyncio.create_subprocess_exec(
        binary, "-v", voice, "-s", str(words_per_minute), "--stdout", "--", text,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {err.decode(errors='replace').strip()}")
    return out


def wav_pcm(data: bytes) -> tuple[bytes, int, int]:
    """(PCM frames, sample rate, channels) of a WAV held in memory.

    espeak-ng writes a streaming header with unknown length when its output is a pipe, so the
    header is read for the format and the frame count is not trusted.
    """
    with wave.open(io.BytesIO(data), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
    if width != 2:
        raise RuntimeError(f"espeak-ng produced {width * 8}-bit audio; expected 16-bit")
    idx = data.find(b"data")
    pcm = data[idx + 8:] if idx >= 0 else b""
    return pcm[: len(pcm) - len(pcm) % (2 * channels)], rate, channels


class EspeakTTS(tts.TTS):
    def __init__(self, *, voice: str = "en-us", words_per_minute: int = 165) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1)
        self._voice = voice
        self._wpm = words_per_minute

    @property
    def model(self) -> str:
        return f"espeak-ng/{self._voice}"

    @property
    def voice(self) -> str:
        return self._voice

    def update_options(self, *, voice: str | None = None, words_per_minute: int | None = None) -> None:
        """Another voice (the call's language settled after the greeting) for every sentence from now on."""
        if voice is not None:
            if not voice.strip() or voice.startswith("-"):
                raise ValueError(f"not an espeak-ng voice: {voice!r}")
            self._voice = voice
        if words_per_minute is not None:
            self._wpm = words_per_minute

    @property
    def provider(self) -> str:
        return "espeak-ng"

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> EspeakStream:
        return EspeakStream(tts=self, input_text=text, conn_options=conn_options)


class EspeakStream(tts.ChunkedStream):
    def __init__(self, *, tts: EspeakTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._espeak = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        wav = await synthesize_wav(self.input_text, voice=self._espeak._voice,
                                   words_per_minute=self._espeak._wpm)
        pcm, rate, channels = wav_pcm(wav)
        output_emitter.initialize(request_id=uuid.uuid4().hex[:12], sample_rate=rate, num_channels=channels,
                                  mime_type="audio/pcm")
        output_emitter.push(pcm)
        output_emitter.flush()
