"""The caller and the agent's speaker for ``callwise.agent.live``: a recording played into an ``AgentSession``
as a caller on the line (``CallerPlayback``: 20 ms frames on the wall clock, waiting for each answer as a
person does, talking over it, hanging up), and an audio output that plays the agent out in real time and
records when each frame was produced and when it stopped short (``RecordingAudioOutput``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice import io

from callwise.infra.audio import FRAME_MS, Clip

FRAME_S = FRAME_MS / 1000
ONSET_RMS = 0.02  # a 20 ms frame this loud (of full scale) is the caller's sound starting


def _rms(chunk: np.ndarray) -> float:
    return float(np.sqrt(np.mean((chunk.astype(np.float32) / 32768.0) ** 2))) if len(chunk) else 0.0


@dataclass
class Segment:
    """Part of the file the caller says in one go (``file_start_s`` .. ``file_end_s``)."""

    file_start_s: float
    file_end_s: float
    call_start_s: float | None = None  # where it started on the call's timeline
    #: talk over the agent: start once the agent's answer has played this long, instead of waiting for it
    over_agent_after_s: float | None = None
    onset_call_s: float | None = None  # the caller's first sound in the segment, on the call's timeline


class CallerPlayback(io.AudioInput):
    """The file as a caller on the line: 20 ms frames on an absolute real-time schedule.

    Between segments the caller waits (silence keeps flowing, as on a phone line) until
    ``ready()`` says the agent has answered and fallen silent, or ``max_wait_s`` has passed with no
    answer begun (``answering()``: an answer is playing; a caller hears it out). ``t0_wall`` is
    ``time.time()`` at the first sample; ``call_s(file_s)`` maps a file position to the call's
    timeline."""

    def __init__(self, clip: Clip, segments: list[Segment], *, ready: Callable[[float], bool] | None = None,
                 answering: Callable[[float], bool] | None = None, max_wait_s: float = 10.0,
                 gap_s: float = 0.4, agent_played_s: Callable[[], float] | None = None,
                 hang_up: bool = False) -> None:
        super().__init__(label="callwise-caller")
        self._pcm = np.frombuffer(clip.pcm16(), dtype="<i2")
        self._rate = clip.sample_rate
        self._step = self._rate * FRAME_MS // 1000
        self.segments = segments
        self._ready = ready or (lambda _s: True)
        self._answering = answering or (lambda _s: False)
        self._max_wait_s = max_wait_s
        self._gap_s = gap_s
        self._agent_played_s = agent_played_s or (lambda: 0.0)
        self.hang_up = hang_up  # the line drops at the file's end: the input ends, nobody waits for an answer
        self._queue: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()
        self._silence = np.zeros(self._step, dtype="<i2").tobytes()
        self._producer: asyncio.Task[None] | None = None
        self._start = asyncio.Event()
        self.finished = asyncio.Event()
        self.t0_wall: float | None = None
        self._t0: float | None = None
        self._sent = 0  # frames emitted since t0

    def begin(self) -> None:
        """Start the file (silence flows until then)."""
        self._start.set()

    @property
    def now_s(self) -> float:
        return self._sent * FRAME_S

    def call_s(self, file_s: float, *, end: bool = False) -> float | None:
        """Where ``file_s`` was played on the call's timeline (``end``: a point that closes a span, so a
        segment's end belongs to it, not to the next segment)."""
        for seg in self.segments:
            if seg.call_start_s is None:
                continue
            inside = (seg.file_start_s < file_s <= seg.file_end_s + 1e-6) if end else \
                (seg.file_start_s - 1e-6 <= file_s < seg.file_end_s)
            if inside:
                return seg.call_start_s + (file_s - seg.file_start_s)
        return None

    def wall_to_call_s(self, wall: float) -> float:
        return wall - (self.t0_wall or wall)

    async def __anext__(self) -> rtc.AudioFrame:
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce())
        frame = await self._queue.get()
        if frame is None:
            raise StopAsyncIteration
        return frame

    async def _emit(self, data: bytes) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()
            self.t0_wall = time.time()
        delay = self._t0 + self._sent * FRAME_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        self._queue.put_nowait(rtc.AudioFrame(data, self._rate, 1, self._step))
        self._sent += 1

    async def _silence_until(self, done: Callable[[], bool]) -> None:
        while not done():
            if self._t0 is None:  # before the file: real time without advancing the call's clock
                await asyncio.sleep(FRAME_S)
                self._queue.put_nowait(rtc.AudioFrame(self._silence, self._rate, 1, self._step))
            else:
                await self._emit(self._silence)

    async def _produce(self) -> None:
        await self._silence_until(self._start.is_set)
        ended = 0.0
        for i, seg in enumerate(self.segments):
            if seg.over_agent_after_s is not None and i > 0:
                # talk over the answer once it has played that long (or go on after max_wait_s without one)
                await self._silence_until(partial(self._over_agent, ended, seg.over_agent_after_s))
            elif i > 0:
                await self._silence_until(partial(self._answered, ended))
                await self._silence_until(partial(self._passed, self.now_s, self._gap_s))
            seg.call_start_s = self.now_s
            a, b = int(seg.file_start_s * self._rate), int(seg.file_end_s * self._rate)
            for j in range(a, b, self._step):
                chunk = self._pcm[j:j + self._step]
                if len(chunk) < self._step:
                    chunk = np.pad(chunk, (0, self._step - len(chunk)))
                if seg.onset_call_s is None and _rms(chunk) > ONSET_RMS:
                    seg.onset_call_s = self.now_s
                await self._emit(chunk.tobytes())
            ended = self.now_s
        if self.hang_up:
            self.finished.set()
            self._queue.put_nowait(None)  # the caller is gone: the input ends
            return
        await self._silence_until(partial(self._answered, ended))
        self.finished.set()
        await self._silence_until(lambda: False)  # the line stays open until the session closes

    def _over_agent(self, ended_s: float, after_s: float) -> bool:
        return self._agent_played_s() >= after_s or self.now_s - ended_s > self._max_wait_s

    def _passed(self, since_s: float, seconds: float) -> bool:
        return self.now_s - since_s >= seconds

    def _answered(self, ended_s: float) -> bool:
        if self._ready(ended_s):
            return True
        return self.now_s - ended_s > self._max_wait_s and not self._answering(ended_s)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.cancel()


def manifest_segments(path: str | Path, duration_s: float) -> list[Segment] | None:
    """One segment per customer utterance of the file's ``manifest.json`` entry, each running to the
    next utterance's start (the recorded gap included)."""
    from callwise.agent.simulate import manifest_entry

    entry = manifest_entry(path)
    if not entry or not entry.get("utterances"):
        return None
    utts = entry["utterances"]
    out = []
    for i, u in enumerate(utts):
        start = 0.0 if i == 0 else float(u["start_s"])
        end = float(utts[i + 1]["start_s"]) if i + 1 < len(utts) else duration_s
        over = u.get("over_agent_after_s")
        out.append(Segment(file_start_s=start, file_end_s=end,
                           over_agent_after_s=None if over is None else float(over)))
    return out


@dataclass
class PlayedSegment:
    """One stretch of agent audio: when its first frame was produced and how it ended."""

    started_wall: float
    speech_id: str | None
    duration_s: float = 0.0
    frames: list[float] = field(default_factory=list)  # time.time() of each frame as it was produced
    interrupted: bool = False
    played_s: float | None = None
    #: time.time() when the agent's audio stopped short (paused or cleared by a barge-in): its last sound
    stopped_wall: float | None = None
    resumed: int = 0  # times it went on after a pause (a false interruption: no words followed)


class _PlayClock:
    """Seconds of a segment played: runs in real time, stands still while paused."""

    def __init__(self) -> None:
        self._before = 0.0
        self._since: float | None = time.monotonic()

    def position(self) -> float:
        return self._before + (time.monotonic() - self._since if self._since is not None else 0.0)

    def pause(self) -> None:
        if self._since is not None:
            self._before, self._since = self.position(), None

    def resume(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    @property
    def paused(self) -> bool:
        return self._since is None


class RecordingAudioOutput(io.AudioOutput):
    """Plays the agent's audio out in real time (nobody hears it) and records each frame's time.

    It can pause, as a room's audio output can, so the framework's false-interruption handling
    (pause on the caller's sound, resume when no words follow) runs as it does in a room."""

    def __init__(self, session: AgentSession | None = None, *, sample_rate: int | None = None) -> None:
        super().__init__(label="callwise-recorder", capabilities=io.AudioOutputCapabilities(pause=True),
                         sample_rate=sample_rate)
        self.session = session
        self.segments: list[PlayedSegment] = []
        self._current: PlayedSegment | None = None
        self._playing: PlayedSegment | None = None
        self._clock = _PlayClock()
        self._flush_task: asyncio.Task[None] | None = None
        self._interrupted = asyncio.Event()
        self._progress = asyncio.Event()  # a pause, a resume or a clear: the play-out looks again
        self._paused = False

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._flush_task is not None and not self._flush_task.done():
            await self._flush_task
        now = time.time()
        if self._current is None:
            speech = self.session.current_speech if self.session is not None else None
            self._current = PlayedSegment(started_wall=now, speech_id=speech.id if speech else None)
            self.segments.append(self._current)
            self._playing = self._current
            self._clock = _PlayClock()
            if self._paused:  # a paused output stays paused into the next segment, as a room's does
                self._clock.pause()
            self._interrupted.clear()
            self.on_playback_started(created_at=now)
        self._current.frames.append(now)
        self._current.duration_s += frame.duration

    def playing_s(self) -> float:
        """How long the segment playing now has played (0 when none is)."""
        return self._clock.position() if self._playing is not None else 0.0

    @property
    def silent(self) -> bool:
        """No agent audio being captured or played out."""
        return self._current is None and (self._flush_task is None or self._flush_task.done())

    def flush(self) -> None:
        super().flush()
        if self._current is not None:
            self._flush_task = asyncio.create_task(self._play_out(self._current))
            self._current = None

    def _stop_mark(self) -> None:
        seg = self._playing
        if seg is not None and seg.stopped_wall is None and self._clock.position() < seg.duration_s:
            seg.stopped_wall = time.time()

    def clear_buffer(self) -> None:
        self._stop_mark()
        self._interrupted.set()
        self._progress.set()

    def pause(self) -> None:
        super().pause()
        self._stop_mark()
        self._paused = True
        self._clock.pause()
        self._progress.set()

    def resume(self) -> None:
        super().resume()
        seg = self._playing
        if seg is not None and self._clock.paused and not self._interrupted.is_set():
            seg.resumed += 1
            seg.stopped_wall = None  # it went on: the stop was not its end
        self._paused = False
        self._clock.resume()
        self._progress.set()

    async def _play_out(self, seg: PlayedSegment) -> None:
        while not self._interrupted.is_set():
            remaining = seg.duration_s - self._clock.position()
            if remaining <= 0 and not self._clock.paused:
                break
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), None if self._clock.paused else remaining)
            except TimeoutError:
                pass
        seg.interrupted = self._interrupted.is_set()
        played = min(seg.duration_s, max(0.0, self._clock.position()))
        seg.played_s = played
        self._interrupted.clear()
        self._playing = None
        self.on_playback_finished(playback_position=played, interrupted=seg.interrupted)
