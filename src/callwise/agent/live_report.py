"""The per-turn report of ``callwise.agent.live``: the framework's per-turn metrics (from the conversation
items) and the audio timeline, on the call's timeline in seconds since playback start."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import stt as lk_stt

from callwise.agent.live_audio import CallerPlayback, PlayedSegment, RecordingAudioOutput
from callwise.infra.audio import Clip


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
