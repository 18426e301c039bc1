"""A recording played into the framework's own ``AgentSession`` at real-time pace: ``callwise simulate
FILE.wav --live``.

Nothing of the voice loop is driven by hand here: the session gets the same ``SupportAgent``, STT,
VAD, turn detection and TTS as the worker, an audio input that plays the file 20 ms frame by 20 ms
frame on the wall clock (``CallerPlayback``), and an audio output that plays the agent's audio out
in real time and records when each frame was produced (``RecordingAudioOutput``). Endpointing,
the turn detector, preemptive generation, interruptions and TTS run as they would in a room.

The caller takes turns the way a person does when the file has a manifest (``examples/calls``):
after each of its utterances it waits until the agent has answered and stopped speaking (or for
``max_wait_s`` without an answer), then goes on; the agent's greeting is heard before the first
word. Without a manifest the file plays through, as a recording would.

Every figure comes from the framework's metrics events (``EOUMetrics``: end of turn and
transcription delay; ``LLMMetrics``: time to first token; ``TTSMetrics``: time to first byte) or
from the audio timeline: ``first_audio_s`` is the agent's first audio frame of the turn, and
``customer_last_word_s`` the end of the customer's last word before that turn, from Whisper word
timings over the played file (one decode after the call, so it does not load the call). Times are
seconds since playback start (``t=0``: the file's first sample).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents import stt as lk_stt
from livekit.agents import tts as lk_tts
from livekit.agents import vad as lk_vad
from livekit.agents.voice import io
from livekit.agents.voice.transcription import TranscriptSynchronizer
from livekit.agents.voice.turn import TurnHandlingOptions

from callwise.agent.line import LineTimeouts, attach_line_handlers, line_session_options
from callwise.agent.support import SupportAgent, track_end_of_speech
from callwise.calls import SupportCall, SupportDeps
from callwise.infra.audio import FRAME_MS, Clip, load_audio

log = logging.getLogger("callwise.live")

FRAME_S = FRAME_MS / 1000
ONSET_RMS = 0.02  # a 20 ms frame this loud (of full scale) is the caller's sound starting


def _rms(chunk: np.ndarray) -> float:
    return float(np.sqrt(np.mean((chunk.astype(np.float32) / 32768.0) ** 2))) if len(chunk) else 0.0


# ------------------------------------------------------------------------------------- audio in
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


# ------------------------------------------------------------------------------------- audio out
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


# ------------------------------------------------------------------------------------- the report
@dataclass
class LiveReport:
    file: str
    duration_s: float
    session_id: str | None
    stt: str
    turn_detection: str
    preemptive_generation: bool
    tts: str
    notes: list[str] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    customer_words: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    warmup_s: dict[str, float] | None = None
    discarded_generations: int = 0
    premature_turns: int | None = None  # user turns committed while the caller was still inside a sentence
    end_reason: str | None = None  # callwise.calls.ending: completed, caller_silent, caller_hung_up
    silence_prompts: int = 0
    drafts: dict[str, Any] | None = None  # preemptive drafts: drafted, committed, discarded, discarded_busy_s
    caller_sounds: list[float] = field(default_factory=list)  # call times the VAD heard the caller start speaking
    agent_resumed: int = 0  # times the agent went on after a pause no words followed (a false interruption)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "mode": "live", "duration_s": round(self.duration_s, 2),
                "session_id": self.session_id, "stt": self.stt, "turn_detection": self.turn_detection,
                "preemptive_generation": self.preemptive_generation, "tts": self.tts, "notes": self.notes,
                "turns": self.turns, "cut_ins": sum(1 for t in self.turns if t.get("cut_in")),
                "discarded_generations": self.discarded_generations, "premature_turns": self.premature_turns,
                "end_reason": self.end_reason, "silence_prompts": self.silence_prompts, "drafts": self.drafts,
                "caller_sounds": [round(t, 2) for t in self.caller_sounds], "agent_resumed": self.agent_resumed,
                "warmup_s": self.warmup_s, "wall_s": round(self.wall_s, 2)}


class ChatLog:
    """The session's conversation items as they are added, with the framework's per-turn metrics
    (``ChatMessage.metrics``: user turns carry ``end_of_turn_delay`` and ``transcription_delay``,
    answers ``llm_node_ttft``, ``tts_node_ttfb`` and ``started_speaking_at``; livekit-agents 1.8
    deprecates the ``metrics_collected`` event in favour of these)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []  # (time.time() when added, ChatMessage)

    def on_item(self, ev: Any) -> None:
        if getattr(ev.item, "role", None) in ("user", "assistant"):
            self.items.append((time.time(), ev.item))

    def answer_for(self, seg: PlayedSegment) -> Any | None:
        for _, item in self.items:
            at = (item.metrics or {}).get("started_speaking_at") if item.role == "assistant" else None
            if at is not None and abs(at - seg.started_wall) < 0.005:
                return item
        return None

    def user_turns_before(self, wall: float, after: float) -> list[Any]:
        return [item for added, item in self.items if item.role == "user" and after <= added <= wall]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def word_timings(stt: lk_stt.STT, clip: Clip) -> list[dict[str, Any]]:
    """Customer words with start/end in the file (Whisper word timestamps), when the STT is ours."""
    from callwise.agent.plugins.stt_whisper import WhisperSTT

    if not isinstance(stt, WhisperSTT):
        return []
    return stt.words(clip.samples)


def partial_user_turns(chat: ChatLog, playback: CallerPlayback) -> set[int]:
    """User turns the framework committed before the caller's utterance was over (ids of the items).

    The caller says one utterance per segment and waits for the answer before the next, so every
    user turn committed between a segment's start and the next one's belongs to that utterance;
    all but the last of them were ended mid-sentence."""
    starts = [seg.call_start_s for seg in playback.segments if seg.call_start_s is not None]
    windows: dict[int, list[Any]] = {}
    for added, item in chat.items:
        if item.role != "user":
            continue
        at = playback.wall_to_call_s(added)
        i = max((k for k, a in enumerate(starts) if a <= at), default=0)
        windows.setdefault(i, []).append(item)
    return {id(item) for items in windows.values() for item in items[:-1]}


def barge_in(seg: PlayedSegment, playback: CallerPlayback) -> dict[str, Any]:
    """When the agent's audio stopped short (``agent_stopped_s``, its last sound) and, for a stop the caller
    caused, their sound's onset and the time from it to the agent's silence (``stop_after_onset_ms``)."""
    if seg.stopped_wall is None:
        return {}
    stopped = playback.wall_to_call_s(seg.stopped_wall)
    began = playback.wall_to_call_s(seg.started_wall)
    onsets = [p.onset_call_s for p in playback.segments
              if p.onset_call_s is not None and began <= p.onset_call_s <= stopped]
    onset = max(onsets) if onsets else None
    return {"agent_stopped_s": round(stopped, 3), "caller_onset_s": None if onset is None else round(onset, 3),
            "stop_after_onset_ms": None if onset is None else _ms(stopped - onset),
            "heard_s": None if seg.played_s is None else round(seg.played_s, 2)}


def build_turns(*, playback: CallerPlayback, output: RecordingAudioOutput, chat: ChatLog,
                words: list[dict[str, Any]], skip: int, utterances: list[tuple[float, float]] | None,
                partial: set[int] | None = None) -> list[dict[str, Any]]:
    """One entry per agent audio segment (after the first ``skip``: the greeting), on the call's timeline.

    ``cut_in``: the agent's sound started inside a caller's utterance, or it answers a user turn the
    framework ended mid-sentence (``partial``); ``None`` when the utterances are not known."""
    call_words = []
    for w in words:
        s, e = playback.call_s(w["start"]), playback.call_s(w["end"], end=True)
        if s is not None and e is not None:
            call_words.append({"word": w["word"], "start_s": s, "end_s": e})
    turns = []
    previous = 0.0
    for seg in output.segments[skip:]:
        first = playback.wall_to_call_s(seg.started_wall)
        before = [w for w in call_words if w["end_s"] <= first]
        last_word = before[-1]["end_s"] if before else None
        users = chat.user_turns_before(seg.started_wall, previous)
        previous = seg.started_wall
        user_m = (users[-1].metrics or {}) if users else {}
        answer = chat.answer_for(seg)
        answer_m = (answer.metrics or {}) if answer is not None else {}
        cut_in = None if utterances is None else (
            any(a <= first < b - 0.05 for a, b in utterances) or bool(users and id(users[-1]) in (partial or set())))
        turns.append({
            "customer_said": " ".join(u.text_content or "" for u in users),
            "agent_said": answer.text_content if answer is not None else "",
            "customer_last_word_s": None if last_word is None else round(last_word, 3),
            "first_audio_s": round(first, 3),
            "audio_s": round(seg.duration_s, 2),
            "interrupted": seg.interrupted,
            **barge_in(seg, playback),
            "cut_in": cut_in,
            "latencies_ms": {
                "last_word_to_first_audio": _ms(first - last_word) if last_word is not None else None,
                "end_of_turn_delay": _ms(user_m.get("end_of_turn_delay")),
                "transcription_delay": _ms(user_m.get("transcription_delay")),
                "llm_ttft": _ms(answer_m.get("llm_node_ttft")),
                "tts_ttfb": _ms(answer_m.get("tts_node_ttfb")),
            },
        })
    return turns


async def simulate_live(path: str | Path, *, deps: SupportDeps, stt: lk_stt.STT, vad: lk_vad.VAD,
                        tts: lk_tts.TTS | None, organization_id: str, turn_handling: TurnHandlingOptions,
                        stt_name: str = "", turn_detection_name: str = "", echo: Callable[[str], None] | None = None,
                        caller: Any | None = None, customer: Any | None = None, max_wait_s: float = 20.0,
                        timeouts: LineTimeouts | None = None, hang_up: bool | None = None,
                        stay_on_line_s: float = 0.0, settings: Any | None = None,
                        screen: str | Path | None = None) -> LiveReport:
    """Play ``path`` into a real ``AgentSession`` in real time; see the module docstring.

    The session gets the line handlers the worker uses (``callwise.agent.line``: silence prompt and
    goodbye at ``timeouts``, barge-in, what was heard, hang-up). ``hang_up``: the caller leaves when
    the file ends (default: the manifest entry's ``hangs_up``). ``stay_on_line_s``: after the file, a
    caller who says nothing more stays on the line this long, or until the agent ends the call.
    ``settings``: the survey follow-up is queued after the call, as the worker does. ``screen``: an image the
    caller shares as their screen for the whole call (``callwise.agent.screen_share``)."""
    started = time.perf_counter()
    clip = load_audio(path)
    if tts is None:
        raise ValueError("--live needs a TTS (install espeak-ng, or set CALLWISE_TTS): first audio is what it measures")
    timeouts = timeouts or LineTimeouts()
    preemptive = bool(turn_handling.get("preemptive_generation", {}).get("enabled", True))  # the framework's default
    report = LiveReport(file=str(path), duration_s=clip.duration_s, session_id=None, stt=stt_name,
                        turn_detection=turn_detection_name, preemptive_generation=preemptive,
                        tts=getattr(tts, "model", type(tts).__name__), notes=list(clip.notes))
    segments = manifest_segments(path, clip.duration_s)
    utterances_known = segments is not None
    utterances: list[tuple[float, float]] | None = None
    if segments is None:
        segments = [Segment(0.0, clip.duration_s)]
        report.notes.append("no manifest entry: the file plays through as one turn (the caller does not wait "
                            "for the agent between sentences); cut_in is not judged")
    if hang_up is None:
        hang_up = bool((_manifest_entry(path) or {}).get("hangs_up"))

    call = await SupportCall.start(deps, organization_id=organization_id, room=f"live-{Path(path).stem}",
                                   modality="voice", metadata={"simulated_from": str(path), "mode": "live"},
                                   caller=caller, customer=customer)
    report.session_id = call.session_id
    if screen is not None:  # the caller's shared screen for the whole call, as the worker attaches a track
        from callwise.agent.screen_share import share_still_image

        share = await share_still_image(call, screen)
        report.notes.append(f"screen {Path(screen).name}: " + (", ".join(share.latest.codes) if share.latest
                            else "ignored (" + "; ".join(share.reader.rejected) + ")"))
    session: AgentSession = AgentSession(stt=stt, vad=vad, tts=tts, **line_session_options(turn_handling, timeouts))
    output = RecordingAudioOutput(session)
    # what the caller heard, as a room computes it: the transcript synchronised to the audio played
    sync = TranscriptSynchronizer(next_in_chain_audio=output, next_in_chain_text=None)

    def answering(ended_s: float) -> bool:
        return any(playback.wall_to_call_s(s.started_wall) > ended_s for s in output.segments)

    def ready(ended_s: float) -> bool:
        """The caller goes on once an answer started after it stopped and the agent is silent again."""
        return answering(ended_s) and output.silent and session.agent_state != "speaking"

    playback = CallerPlayback(clip, segments, ready=ready, answering=answering, max_wait_s=max_wait_s,
                              agent_played_s=output.playing_s, hang_up=hang_up)
    chat = ChatLog()
    created: list[Any] = []

    def on_item(ev: Any) -> None:
        chat.on_item(ev)
        item = ev.item
        if echo and getattr(item, "role", None) in ("user", "assistant"):
            who = "customer" if item.role == "user" else "agent" + (" (interrupted)" if item.interrupted else "")
            echo(f"[{playback.now_s:5.1f}s] {who}: {item.text_content}")

    session.on("conversation_item_added", on_item)
    session.on("speech_created", lambda ev: created.append(ev.speech_handle))

    def on_user_state(ev: Any) -> None:
        if ev.new_state == "speaking" and playback.t0_wall is not None:
            report.caller_sounds.append(playback.now_s)

    session.on("user_state_changed", on_user_state)
    session.input.audio = playback
    session.output.audio = sync.audio_output
    session.output.transcription = sync.text_output
    agent = SupportAgent(call)
    track_end_of_speech(session, agent)
    agent_ended = asyncio.Event()
    line = attach_line_handlers(session, call, timeouts=timeouts, end_call=lambda _reason: agent_ended.set())
    greeted = 0
    try:
        await session.start(agent, record=False)
        greeting = created[0] if created else None
        if greeting is not None:
            await greeting.wait_for_playout()
            await asyncio.sleep(0.3)
        greeted = len(output.segments)
        playback.begin()
        await _first(playback.finished.wait(), agent_ended.wait())
        if hang_up:
            line.hang_up()
        elif not agent_ended.is_set():
            while not output.silent:
                await asyncio.sleep(0.1)
            if stay_on_line_s > 0:
                await _first(agent_ended.wait(), asyncio.sleep(stay_on_line_s))
    finally:
        if not hang_up:
            await session.drain()
        await session.aclose()
        playback.close()
        await line.settled()
        await call.end()
        report.drafts = agent.pipeline_llm.draft_stats().as_dict()
        if settings is not None:
            from callwise.agent.handoff_room import survey_if_unrated

            await survey_if_unrated(settings, call)
    report.end_reason = line.end_reason
    report.silence_prompts = line.prompts
    report.agent_resumed = sum(s.resumed for s in output.segments)
    # how many answers the framework generated and threw away (preemptive attempts the caller outran)
    report.discarded_generations = sum(1 for h in created if h.interrupted and not any(
        s.speech_id == h.id for s in output.segments))
    if utterances_known:
        utterances = []
        for u in _manifest_utterances(path):
            a, b = playback.call_s(float(u["start_s"])), playback.call_s(float(u["end_s"]), end=True)
            if a is not None and b is not None:
                utterances.append((a, b))
    partial: set[int] = set()
    if utterances is not None:
        partial = partial_user_turns(chat, playback)
        report.premature_turns = len(partial)
    words = await asyncio.get_running_loop().run_in_executor(None, word_timings, stt, clip)
    report.turns = build_turns(playback=playback, output=output, chat=chat, words=words, skip=greeted,
                               utterances=utterances, partial=partial)
    report.wall_s = time.perf_counter() - started
    return report


async def _first(*aws: Awaitable[Any]) -> None:
    """Wait for the first of ``aws``; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _manifest_entry(path: str | Path) -> dict[str, Any] | None:
    from callwise.agent.simulate import manifest_entry

    return manifest_entry(path)


def _manifest_utterances(path: str | Path) -> list[dict[str, Any]]:
    from callwise.agent.simulate import manifest_entry

    entry = manifest_entry(path) or {}
    return list(entry.get("utterances") or [])
