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
from collections.abc import Callable
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
from livekit.agents.voice.turn import TurnHandlingOptions

from callwise.agent.support import SupportAgent, track_end_of_speech
from callwise.calls import SupportCall, SupportDeps
from callwise.infra.audio import FRAME_MS, Clip, load_audio

log = logging.getLogger("callwise.live")

FRAME_S = FRAME_MS / 1000


# ------------------------------------------------------------------------------------- audio in
@dataclass
class Segment:
    """Part of the file the caller says in one go (``file_start_s`` .. ``file_end_s``)."""

    file_start_s: float
    file_end_s: float
    call_start_s: float | None = None  # where it started on the call's timeline


class CallerPlayback(io.AudioInput):
    """The file as a caller on the line: 20 ms frames on an absolute real-time schedule.

    Between segments the caller waits (silence keeps flowing, as on a phone line) until
    ``ready()`` says the agent has answered and fallen silent, or ``max_wait_s`` has passed with no
    answer begun (``answering()``: an answer is playing; a caller hears it out). ``t0_wall`` is
    ``time.time()`` at the first sample; ``call_s(file_s)`` maps a file position to the call's
    timeline."""

    def __init__(self, clip: Clip, segments: list[Segment], *, ready: Callable[[float], bool] | None = None,
                 answering: Callable[[float], bool] | None = None, max_wait_s: float = 10.0,
                 gap_s: float = 0.4) -> None:
        super().__init__(label="callwise-caller")
        self._pcm = np.frombuffer(clip.pcm16(), dtype="<i2")
        self._rate = clip.sample_rate
        self._step = self._rate * FRAME_MS // 1000
        self.segments = segments
        self._ready = ready or (lambda _s: True)
        self._answering = answering or (lambda _s: False)
        self._max_wait_s = max_wait_s
        self._gap_s = gap_s
        self._queue: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()
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
        return await self._queue.get()

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
        for i, seg in enumerate(self.segments):
            seg.call_start_s = self.now_s
            a, b = int(seg.file_start_s * self._rate), int(seg.file_end_s * self._rate)
            for j in range(a, b, self._step):
                chunk = self._pcm[j:j + self._step]
                if len(chunk) < self._step:
                    chunk = np.pad(chunk, (0, self._step - len(chunk)))
                await self._emit(chunk.tobytes())
            ended = self.now_s
            await self._silence_until(partial(self._answered, ended))
            if i < len(self.segments) - 1:
                await self._silence_until(partial(self._passed, self.now_s, self._gap_s))
        self.finished.set()
        await self._silence_until(lambda: False)  # the line stays open until the session closes

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
        out.append(Segment(file_start_s=start, file_end_s=end))
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


class RecordingAudioOutput(io.AudioOutput):
    """Plays the agent's audio out in real time (nobody hears it) and records each frame's time."""

    def __init__(self, session: AgentSession | None = None, *, sample_rate: int | None = None) -> None:
        super().__init__(label="callwise-recorder", capabilities=io.AudioOutputCapabilities(pause=False),
                         sample_rate=sample_rate)
        self.session = session
        self.segments: list[PlayedSegment] = []
        self._current: PlayedSegment | None = None
        self._start_mono = 0.0
        self._flush_task: asyncio.Task[None] | None = None
        self._interrupted = asyncio.Event()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._flush_task is not None and not self._flush_task.done():
            await self._flush_task
        now = time.time()
        if self._current is None:
            speech = self.session.current_speech if self.session is not None else None
            self._current = PlayedSegment(started_wall=now, speech_id=speech.id if speech else None)
            self.segments.append(self._current)
            self._start_mono = time.monotonic()
            self._interrupted.clear()
            self.on_playback_started(created_at=now)
        self._current.frames.append(now)
        self._current.duration_s += frame.duration

    @property
    def silent(self) -> bool:
        """No agent audio being captured or played out."""
        return self._current is None and (self._flush_task is None or self._flush_task.done())

    def flush(self) -> None:
        super().flush()
        if self._current is not None:
            self._flush_task = asyncio.create_task(self._play_out(self._current))
            self._current = None

    def clear_buffer(self) -> None:
        self._interrupted.set()

    async def _play_out(self, seg: PlayedSegment) -> None:
        remaining = seg.duration_s - (time.monotonic() - self._start_mono)
        if remaining > 0:
            try:
                await asyncio.wait_for(self._interrupted.wait(), remaining)
                seg.interrupted = True
            except TimeoutError:
                pass
        played = min(seg.duration_s, max(0.0, time.monotonic() - self._start_mono))
        seg.played_s = played
        self._interrupted.clear()
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

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "mode": "live", "duration_s": round(self.duration_s, 2),
                "session_id": self.session_id, "stt": self.stt, "turn_detection": self.turn_detection,
                "preemptive_generation": self.preemptive_generation, "tts": self.tts, "notes": self.notes,
                "turns": self.turns, "cut_ins": sum(1 for t in self.turns if t.get("cut_in")),
                "discarded_generations": self.discarded_generations, "premature_turns": self.premature_turns,
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
                        caller: Any | None = None, max_wait_s: float = 20.0) -> LiveReport:
    """Play ``path`` into a real ``AgentSession`` in real time; see the module docstring."""
    started = time.perf_counter()
    clip = load_audio(path)
    if tts is None:
        raise ValueError("--live needs a TTS (install espeak-ng, or set CALLWISE_TTS): first audio is what it measures")
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

    call = await SupportCall.start(deps, organization_id=organization_id, room=f"live-{Path(path).stem}",
                                   modality="voice", metadata={"simulated_from": str(path), "mode": "live"},
                                   caller=caller)
    report.session_id = call.session_id
    session: AgentSession = AgentSession(stt=stt, vad=vad, tts=tts, turn_handling=turn_handling)
    output = RecordingAudioOutput(session)

    def answering(ended_s: float) -> bool:
        return any(playback.wall_to_call_s(s.started_wall) > ended_s for s in output.segments)

    def ready(ended_s: float) -> bool:
        """The caller goes on once an answer started after it stopped and the agent is silent again."""
        return answering(ended_s) and output.silent and session.agent_state != "speaking"

    playback = CallerPlayback(clip, segments, ready=ready, answering=answering,
                              max_wait_s=max_wait_s)
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
    session.input.audio = playback
    session.output.audio = output
    agent = SupportAgent(call)
    track_end_of_speech(session, agent)
    greeted = 0
    try:
        await session.start(agent, record=False)
        greeting = created[0] if created else None
        if greeting is not None:
            await greeting.wait_for_playout()
            await asyncio.sleep(0.3)
        greeted = len(output.segments)
        playback.begin()
        await playback.finished.wait()
        while not output.silent:
            await asyncio.sleep(0.1)
    finally:
        await session.drain()
        await session.aclose()
        playback.close()
        await call.end()
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


def _manifest_utterances(path: str | Path) -> list[dict[str, Any]]:
    from callwise.agent.simulate import manifest_entry

    entry = manifest_entry(path) or {}
    return list(entry.get("utterances") or [])
