"""A streaming STT over a whole-utterance recognizer (Whisper): decode at the caller's first pause, so the end
of speech finds the transcript ready.

The framework's ``StreamAdapter`` decodes each utterance once Silero has heard ``min_silence_duration`` of
silence (0.55 s), so the end of turn waits for the whole decode after that. This stream cuts the same
utterances with the same VAD, and when the caller has been silent for ``early_silence_s`` it starts decoding
what was said so far in the background. At the VAD's end of speech, if the caller said nothing more since
(Silero's running silence only grew), that decode is the final transcript: reused when done, awaited when
still running. If the caller went on, it is dropped and the utterance is decoded whole, as before.

A decode that finishes before the end of speech is sent as a ``PREFLIGHT_TRANSCRIPT``: the framework starts
its preemptive generation on it (``audio_recognition._on_stt_event``), and since the final transcript is the
same text, the preemptive reply is the one it keeps.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import stt, utils, vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

log = logging.getLogger("callwise.stt")

Recognize = Callable[[list[rtc.AudioFrame]], Awaitable[stt.SpeechData]]

#: the adapter's own options: a recognize failure is not retried inside the stream
_STREAM_CONN = APIConnectOptions(max_retry=0, timeout=DEFAULT_API_CONNECT_OPTIONS.timeout)


@dataclass
class StreamStats:
    """What one stream's decodes did (read by tests and the bench)."""

    utterances: int = 0
    speculative: int = 0  # decodes started at a pause
    reused: int = 0  # ... that became the final transcript
    dropped: int = 0  # ... thrown away because the caller went on
    preflights: int = 0


class _Speculation:
    def __init__(self, task: asyncio.Future[stt.SpeechData], silence_s: float, started: float) -> None:
        self.task = task
        self.silence_s = silence_s  # Silero's running silence when it started
        self.started = started
        self.ended = False  # the end of speech came: no preflight any more


class SpeculativeStream(stt.RecognizeStream):
    """Speech events of one audio stream: start/end of speech, preflight and final transcripts."""

    def __init__(self, owner: stt.STT, *, vad: vad.VAD, recognize: Recognize, early_silence_s: float,
                 conn_options: APIConnectOptions = _STREAM_CONN) -> None:
        super().__init__(stt=owner, conn_options=conn_options)
        self._vad = vad
        self._recognize = recognize
        self._early_s = early_silence_s
        self.stats = StreamStats()

    async def _run(self) -> None:
        vad_stream = self._vad.stream()

        async def forward() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        tasks = [asyncio.create_task(forward(), name="whisper_forward"),
                 asyncio.create_task(self._recognize_loop(vad_stream), name="whisper_recognize")]
        try:
            await asyncio.gather(*tasks)
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            await vad_stream.aclose()

    async def _recognize_loop(self, vad_stream: vad.VADStream) -> None:
        frames: list[rtc.AudioFrame] | None = None  # the utterance so far (Silero's speech buffer)
        spec: _Speculation | None = None
        async for ev in vad_stream:
            if ev.type == vad.VADEventType.START_OF_SPEECH:
                frames, spec = list(ev.frames), None
                self._event_ch.send_nowait(stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH))
            elif ev.type == vad.VADEventType.INFERENCE_DONE and frames is not None:
                frames.extend(ev.frames)
                silence = ev.raw_accumulated_silence
                if spec is not None and silence < spec.silence_s:  # a speech window since: the caller went on
                    spec.task.cancel()
                    spec = None
                    self.stats.dropped += 1
                if spec is None and silence >= self._early_s:
                    spec = self._speculate(list(frames), silence)
            elif ev.type == vad.VADEventType.END_OF_SPEECH:
                speech_end = time.time() - ev.silence_duration - ev.inference_duration
                self._event_ch.send_nowait(stt.SpeechEvent(stt.SpeechEventType.END_OF_SPEECH,
                                                           speech_end_time=speech_end))
                self.stats.utterances += 1
                data = await self._final(spec, ev.frames)
                frames, spec = None, None
                if data is not None and data.text:
                    self._event_ch.send_nowait(stt.SpeechEvent(
                        type=stt.SpeechEventType.FINAL_TRANSCRIPT, request_id=uuid.uuid4().hex[:12],
                        alternatives=[data], speech_end_time=speech_end))

    def _speculate(self, frames: list[rtc.AudioFrame], silence_s: float) -> _Speculation:
        self.stats.speculative += 1
        spec = _Speculation(asyncio.ensure_future(self._recognize(frames)), silence_s, time.time())

        def preflight(task: asyncio.Future[stt.SpeechData]) -> None:
            if spec.ended or task.cancelled() or task.exception() is not None:
                return
            data = task.result()
            if data.text:
                self.stats.preflights += 1
                self._event_ch.send_nowait(stt.SpeechEvent(
                    type=stt.SpeechEventType.PREFLIGHT_TRANSCRIPT, request_id=uuid.uuid4().hex[:12],
                    alternatives=[data]))

        spec.task.add_done_callback(preflight)
        return spec

    async def _final(self, spec: _Speculation | None, frames: list[rtc.AudioFrame]) -> stt.SpeechData | None:
        """The pause's decode when nothing was said after it, else the whole utterance decoded now."""
        if spec is not None:
            spec.ended = True
            try:
                data = await spec.task
                self.stats.reused += 1
                return data
            except asyncio.CancelledError:
                if not spec.task.cancelled():
                    raise
            except Exception:  # noqa: BLE001 - a failed early decode: decode the utterance again
                pass
        try:
            return await self._recognize(frames)
        except Exception:  # noqa: BLE001 - one lost utterance must not end the stream (the framework retries none)
            log.exception("could not transcribe an utterance")
            return None
