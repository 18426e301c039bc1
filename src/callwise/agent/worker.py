"""The LiveKit worker: the support agent and the meeting copilot, on the framework's own server.

``callwise worker dev|start [--agent support|meeting|auto]`` runs an ``AgentServer`` through the
framework's CLI. With ``--agent support`` or ``--agent meeting`` the worker registers under that
agent name and joins the rooms it is explicitly dispatched to (``lk dispatch create --agent-name
support --room ...`` or a token's room configuration). With ``auto`` (the default) it joins every
new room and picks the kind from the job metadata, the room metadata (``{"kind": "meeting"}``) or
a room name starting with ``meeting-``; anything else is a support call.

Scaling out is LiveKit's job: start more worker processes (on more machines) with the same
agent name; the server dispatches each room to one of them by load, and each job runs in its own
process, which the framework starts and prewarms before a job is assigned to it and ends after the
call. Everything that does not depend on the call is made there before the call comes: ``prewarm``
(the framework's synchronous ``setup_fnc``) loads and runs the VAD, Whisper, the turn detector and the
embedder once, and arranges for the database pool, the knowledge store, the router with its breakers
and the CRM caller service to open on the job's event loop as soon as it exists
(``callwise.agent.warm.JobProcessParts``), with one answer run for the default organization. An
organization's vectors are a memory-mapped index file (``callwise.knowledge.ann``), not loaded per call.

The outbox dispatcher is not in the job: one per host runs in ``callwise serve`` or in
``callwise outbox run --forever`` beside the worker. A handoff still delivers its own rows at once.

Organization: ``{"org": "slug"}`` in job or room metadata, else ``CALLWISE_DEFAULT_ORG``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterable
from contextlib import AsyncExitStack
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentServer, AgentSession, AutoSubscribe, JobContext, JobProcess, cli, room_io
from livekit.agents import stt as lk_stt

from callwise.agent.shutdown import OrderedShutdown
from callwise.agent.support import SupportAgent, track_end_of_speech
from callwise.calls import ESCALATION_TOPIC, SupportCall
from callwise.calls.caller import CallerId
from callwise.calls.meeting import MeetingCopilot, RoomSuggestionSink
from callwise.routing.types import CustomerContext
from callwise.wiring.settings import Settings

log = logging.getLogger("callwise.worker")

PREWARM_TIMEOUT_S = 90.0


def prewarm(proc: JobProcess) -> None:
    """Load the heavy models once per job process and run each once (``callwise.agent.warm``), so
    the first caller does not pay any model's first-call cost; then arrange for the call-independent
    parts (pool, knowledge, router, CRM caller service) to open on the job loop before a job comes."""
    from callwise.agent.voice import build_stt, build_turn_handling, build_vad
    from callwise.agent.warm import JobProcessParts, warm_models
    from callwise.wiring.knowledge import get_embedder
    from callwise.wiring.telemetry import start_worker_telemetry

    start_worker_telemetry()  # metrics and spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (issue 24)
    settings = Settings()
    proc.userdata["settings"] = settings
    proc.userdata["vad"] = build_vad(settings)
    proc.userdata["stt"] = build_stt(settings)
    proc.userdata["turn_handling"] = build_turn_handling(settings, settings.turn_detection)
    embedder = get_embedder(settings)
    proc.userdata["warmup_s"] = warm_models(stt=proc.userdata["stt"], vad=proc.userdata["vad"], embedder=embedder,
                                            turn_detector=proc.userdata["turn_handling"]["turn_detection"])
    try:  # the multilingual Whisper, where installed, so the first non-English call does not load it (issue 25)
        from callwise.agent.plugins.stt_multilingual import build_multilingual_stt

        build_multilingual_stt(cache_dir=settings.data_dir / "models", english_model=False).warm_up()
    except Exception:  # noqa: BLE001 - no multilingual weights: English-only worker
        log.info("no multilingual Whisper in this worker")
    parts = JobProcessParts(lambda stack: open_call_parts(stack, settings))
    parts.start_on_job_loop()
    proc.userdata["parts"] = parts


async def open_call_parts(stack: AsyncExitStack, settings: Settings) -> Any:
    """What every call of this process uses: the components (pool, knowledge, router), the CRM caller
    service, and one answer through every stage for the default organization (classifier, retrieval
    with its index file, the router's first tier), not stored."""
    from callwise.agent.warm import warm_answer
    from callwise.wiring.agent import open_components_in

    comp = await open_components_in(stack, settings)
    deps = comp.support_deps()  # builds the process's caller service (its CRM cache is in Postgres)
    comp.warmed_org = await comp.runtime.org_id(None)
    try:
        comp.warmup_answer_s = await warm_answer(deps, comp.warmed_org)
    except Exception:  # noqa: BLE001 - a warm-up failure must not keep the worker from taking calls
        log.exception("answer warm-up failed")
    return comp


def process_parts(proc: JobProcess) -> Any:
    """The process's ``JobProcessParts`` (made here when ``prewarm`` did not run: a test, the console)."""
    from callwise.agent.warm import JobProcessParts

    parts = proc.userdata.get("parts")
    if parts is None:
        settings: Settings = proc.userdata.get("settings") or Settings()
        parts = proc.userdata["parts"] = JobProcessParts(lambda stack: open_call_parts(stack, settings))
    return parts


def _metadata(ctx: JobContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in (ctx.room.metadata if ctx.room else "", ctx.job.metadata):
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if isinstance(data, dict):
            out.update(data)
    return out


def call_kind(ctx: JobContext, configured: str) -> str:
    if configured in ("support", "meeting"):
        return configured
    meta = _metadata(ctx)
    kind = meta.get("kind") or meta.get("callwise_kind")
    if kind in ("support", "meeting"):
        return str(kind)
    return "meeting" if ctx.room.name.startswith("meeting-") else "support"


async def entrypoint(ctx: JobContext) -> None:
    parts = process_parts(ctx.proc)
    # one ordered shutdown: the call's writes finish before the process's parts (the pool) close
    shutdown = OrderedShutdown()
    ctx.add_shutdown_callback(shutdown.run)
    shutdown.closing(parts.release)
    # the room connection and the parts (open already when the process was prewarmed) in parallel
    _, comp = await asyncio.gather(ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY), parts.components())
    kind = call_kind(ctx, os.environ.get("CALLWISE_WORKER_AGENT", "auto"))
    org_id = await comp.runtime.org_id(_metadata(ctx).get("org"))
    if kind == "meeting":
        await run_meeting(shutdown.job_context(ctx), comp, org_id)
    else:
        await run_support(shutdown.job_context(ctx), comp, org_id)


# ---------------------------------------------------------------------------------------- support
class RoomSupportAgent(SupportAgent):
    """The support agent in a room: bad audio frames are logged and skipped, the call goes on; the STT
    events pass through the call's language (``callwise.agent.call_language.LiveLanguage``) when given."""

    def __init__(self, call: SupportCall, *, language: Any | None = None, **kwargs: Any) -> None:
        super().__init__(call, **kwargs)
        self.language = language

    async def stt_node(self, audio: AsyncIterable[rtc.AudioFrame], model_settings: Any) -> Any:
        events = Agent.default.stt_node(self, valid_frames(audio), model_settings)
        if self.language is not None:
            events = self.language.watch(events)
        async for ev in events:
            yield ev


async def valid_frames(audio: AsyncIterable[rtc.AudioFrame]) -> AsyncIterable[rtc.AudioFrame]:
    skipped = 0
    async for frame in audio:
        ok = (frame.sample_rate >= 8000 and frame.num_channels >= 1 and frame.samples_per_channel > 0
              and len(frame.data) == frame.samples_per_channel * frame.num_channels)
        if ok:
            yield frame
            continue
        skipped += 1
        if skipped == 1 or skipped % 100 == 0:
            log.warning("skipped %d bad audio frame(s) (rate=%s channels=%s samples=%s)", skipped,
                        frame.sample_rate, frame.num_channels, frame.samples_per_channel)


async def run_support(ctx: JobContext, comp: Any, org_id: str) -> None:
    participant = await ctx.wait_for_participant()

    async def publish(event: dict[str, Any]) -> None:
        lp = ctx.room.local_participant
        await lp.send_text(json.dumps(event), topic=ESCALATION_TOPIC)
        await lp.set_attributes({"callwise.escalation": event["reason"], "callwise.handoff": event["handoff"]})

    async def hang_up(reason: str) -> None:  # after the silence goodbye: a SIP caller's leg drops with the room
        try:
            await ctx.delete_room()
        except Exception:  # noqa: BLE001 - a room already gone, or no server API (console)
            log.debug("could not delete the room", exc_info=True)
        ctx.shutdown(reason=reason)

    call, session, agent = await open_support_session(
        comp, org_id, ctx.proc.userdata, participant, room_name=ctx.room.name, job_metadata=ctx.job.metadata,
        room_metadata=ctx.room.metadata, on_event=publish, add_shutdown=ctx.add_shutdown_callback, shutdown=hang_up)
    await session.start(agent, room=ctx.room, room_options=room_io.RoomOptions(
        participant_identity=participant.identity, audio_output=session.tts is not None))
    from callwise.agent.screen_share import attach_screen_share  # the customer's shared screen (issue 25)

    screen = attach_screen_share(ctx.room, participant, call)  # call.ctx.screen; modality -> screen_share/video
    ctx.add_shutdown_callback(screen.aclose)
    from callwise.agent.handoff_room import wire_room  # live handoff, join links, survey follow-up (issue 11)

    wire_room(ctx, call, session, participant, comp.settings)


async def open_support_session(comp: Any, org_id: str, userdata: dict[str, Any], participant: Any, *,
                               room_name: str, job_metadata: str, room_metadata: str,
                               on_event: Any, add_shutdown: Any,
                               shutdown: Any = None) -> tuple[SupportCall, AgentSession, RoomSupportAgent]:
    """The call, its session and agent, not started (what a call adds to the process's warm parts):
    the call's language, the call record (with the CRM lookup), the TTS and the session over the
    process's STT, VAD and turn detector, with the line's handlers (silence prompt and goodbye,
    barge-in, hang-up: ``callwise.agent.line``); ``shutdown(reason)`` ends the job after the goodbye.
    ``bench/pickup.py`` times this path up to the greeting."""
    from callwise.agent.call_language import LiveLanguage, requested_language, stt_for_call
    from callwise.agent.line import LineTimeouts, attach_line_handlers, line_session_options
    from callwise.agent.voice import build_tts, build_turn_handling
    from callwise.calls.stages.language import org_language

    settings: Settings = comp.settings
    request = requested_language(attributes=participant.attributes, participant_metadata=participant.metadata,
                                 job_metadata=job_metadata, room_metadata=room_metadata)
    org_lang = await org_language(comp.pool, org_id)
    call = await SupportCall.start(comp.support_deps(), organization_id=org_id, room=room_name,
                                   modality="video" if _has_video(participant) else "voice",
                                   customer=_customer(participant), speaker=participant.identity, on_event=on_event,
                                   metadata={"participant": participant.identity},
                                   caller=CallerId.from_participant(participant.attributes, participant.metadata))
    lines: list[Any] = []  # callwise.agent.line.CallLine, once the session exists
    sessions: list[AgentSession] = []

    async def end_call() -> None:
        # the session first: the framework closes it in a shutdown callback of its own, beside this one, and its
        # close handlers (the line's last writes: heard text, a hang-up's last words) must land before the pool closes
        for s in sessions:
            await s.aclose()
        for line in lines:
            await line.settled()
        await call.end()

    add_shutdown(end_call)
    tts = build_tts(settings)
    stt = stt_for_call(settings, userdata["stt"], request, org_lang)
    language = LiveLanguage(call, stt=stt, tts=tts, request=request, org_language=org_lang)
    if org_id != getattr(comp, "warmed_org", None):
        # another org than the one warmed before the job: its first retrieval runs while the greeting plays
        from callwise.agent.warm import warm_answer

        warming = asyncio.create_task(warm_answer(comp.support_deps(), org_id))
        add_shutdown(lambda: _cancel(warming))
    handling = userdata.get("turn_handling") or build_turn_handling(settings, settings.turn_detection)
    timeouts = LineTimeouts.from_settings(settings)  # silence prompt / goodbye (30 / 60 s)
    session: AgentSession = AgentSession(stt=stt, vad=userdata["vad"], tts=tts,  # type: ignore[arg-type]
                                         **line_session_options(handling, timeouts))
    sessions.append(session)
    agent = RoomSupportAgent(call, language=language)
    track_end_of_speech(session, agent)
    lines.append(attach_line_handlers(session, call, timeouts=timeouts,
                                      end_call=shutdown or (lambda _reason: None)))
    return call, session, agent


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _customer(participant: rtc.RemoteParticipant) -> CustomerContext:
    try:
        meta = json.loads(participant.metadata) if participant.metadata else {}
    except ValueError:
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    return CustomerContext(name=meta.pop("name", None) or participant.name or None, plan=meta.pop("plan", None),
                           extra={k: v for k, v in meta.items() if isinstance(v, (str, int, float))})


def _has_video(participant: rtc.RemoteParticipant) -> bool:
    return any(p.kind == rtc.TrackKind.KIND_VIDEO for p in participant.track_publications.values())


# ---------------------------------------------------------------------------------------- meeting
async def run_meeting(ctx: JobContext, comp: Any, org_id: str) -> None:
    """Transcribe each participant's audio separately; push suggestions to the reps only."""
    base_stt: lk_stt.STT = ctx.proc.userdata["stt"]
    vad = ctx.proc.userdata["vad"]
    copilot = await MeetingCopilot.start(comp.meeting_deps(), organization_id=org_id, room=ctx.room.name,
                                         sink=RoomSuggestionSink(ctx.room.local_participant))
    tasks: dict[str, asyncio.Task[None]] = {}

    async def transcribe_track(track: rtc.Track, identity: str) -> None:
        stt = base_stt if base_stt.capabilities.streaming else lk_stt.StreamAdapter(stt=base_stt, vad=vad)
        stream = stt.stream()
        audio = rtc.AudioStream.from_track(track=track, sample_rate=16000, num_channels=1)

        async def push() -> None:
            async for ev in audio:
                stream.push_frame(ev.frame)
            stream.end_input()

        pusher = asyncio.create_task(push())
        try:
            async for ev in stream:
                if ev.type == lk_stt.SpeechEventType.FINAL_TRANSCRIPT and ev.alternatives:
                    try:
                        await copilot.on_utterance(identity, ev.alternatives[0].text)
                    except Exception:  # noqa: BLE001 - one bad turn must not stop the transcription
                        log.exception("meeting turn failed")
        finally:
            pusher.cancel()
            await stream.aclose()
            await audio.aclose()

    def on_track(track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO and track.sid not in tasks:
            copilot.join(participant.identity)
            tasks[track.sid] = asyncio.create_task(transcribe_track(track, participant.identity))

    ctx.room.on("track_subscribed", on_track)
    ctx.room.on("participant_connected", lambda p: copilot.join(p.identity))
    ctx.room.on("participant_disconnected", lambda p: copilot.leave(p.identity))
    for p in ctx.room.remote_participants.values():
        copilot.join(p.identity)
        for pub in p.track_publications.values():
            if pub.track is not None:
                on_track(pub.track, pub, p)  # type: ignore[arg-type]

    async def finish() -> None:
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await copilot.finish()

    ctx.add_shutdown_callback(finish)


# ---------------------------------------------------------------------------------------- server
def build_server(agent_kind: str = "auto") -> AgentServer:
    # prewarm loads and runs every model once: more than the framework's default 10 s on a busy 2-core machine
    server = AgentServer(setup_fnc=prewarm, initialize_process_timeout=PREWARM_TIMEOUT_S)
    server.rtc_session(entrypoint, agent_name="" if agent_kind == "auto" else agent_kind)
    return server


def run_worker(agent_kind: str = "auto") -> None:
    cli.run_app(build_server(agent_kind))
