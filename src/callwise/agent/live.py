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

The session carries the worker's line handlers (``callwise.agent.line``): the silence prompt and goodbye,
barge-in with what the caller heard, coughs that are no turn, hang-ups. The caller and the speaker are in
``live_audio``, the per-turn report in ``live_report``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession
from livekit.agents import stt as lk_stt
from livekit.agents import tts as lk_tts
from livekit.agents import vad as lk_vad
from livekit.agents.voice.transcription import TranscriptSynchronizer
from livekit.agents.voice.turn import TurnHandlingOptions

from callwise.agent.line import LineTimeouts, attach_line_handlers, line_session_options
from callwise.agent.live_audio import CallerPlayback, RecordingAudioOutput, Segment, manifest_segments
from callwise.agent.live_report import ChatLog, LiveReport, build_turns, partial_user_turns, word_timings
from callwise.agent.support import SupportAgent, track_end_of_speech
from callwise.calls import SupportCall, SupportDeps
from callwise.infra.audio import load_audio

__all__ = ["CallerPlayback", "ChatLog", "LiveReport", "RecordingAudioOutput", "Segment", "partial_user_turns",
           "simulate_live"]

log = logging.getLogger("callwise.live")


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
