"""Warm transfer through the framework's ``WarmTransferTask``, end to end against the LiveKit stand-in.

The caller is a text-mode ``AgentSession`` running the support agent (the router behind ``PipelineLLM``, the
handoff service, Postgres); the escalation goes to the ``HandoffEscalator`` with a ``WarmLine`` built the way
``agent/handoff_room.py`` builds it (``warm_desk`` from ``Settings``). The task runs inside a real ``JobContext``
(a fake job, as the framework's console mode has) whose LiveKit server API is the stand-in: the dial is a
``CreateSIPParticipant`` with ``wait_until_answered``, the connection a ``MoveParticipant``. The one part that
needs a real server, the person's side room, is a text-mode session too, where a scripted person answers.
Set ``CALLWISE_WARM_TRANSCRIPT`` to a path to write the accepted and declined transcripts there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from livekit import api, rtc
from livekit.agents import Agent, AgentSession, JobContext, JobExecutorType, JobProcess
from livekit.agents.job import JobAcceptArguments, RunningJobInfo, _JobContextVar
from livekit.agents.utils import http_context
from livekit.protocol import agent as agent_pb
from livekit.protocol import models

from callwise.agent.handoff_room import settler, speaker, warm_desk
from callwise.agent.support import SupportAgent
from callwise.calls import SupportCall, SupportDeps
from callwise.handoff.cases import CaseDesk
from callwise.handoff.escalation import EscalationPolicy, EscalationRules
from callwise.handoff.service import HandoffConfig, HandoffEscalator, HandoffService
from callwise.handoff.warm import WarmLine
from callwise.integrations.actions import VendorConfig, build_handlers
from callwise.integrations.credentials import CredentialStore
from callwise.integrations.outbox import Dispatcher, list_items
from callwise.routing.types import CustomerContext
from callwise.wiring.settings import Settings
from tests.vendors.livekit_twirp import API_KEY, API_SECRET, LiveKitTwirpServer

CALLER = "sip_+15557654321"
TRUNK = "ST_onduty"
TRANSCRIPTS: dict[str, list[str]] = {}


class InHours(EscalationRules):
    def handoff(self, now=None):  # type: ignore[no-untyped-def]
        return super().handoff(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def livekit() -> Iterator[LiveKitTwirpServer]:
    server = LiveKitTwirpServer().start()
    yield server
    server.stop()


class Transcript:
    """Both sides of the call, as the sessions report them, with the time each line was added."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.lines: list[tuple[float, str]] = []

    def add(self, side: str, who: str, text: str, at: float | None = None) -> None:
        t = (time.monotonic() if at is None else at) - self.t0
        self.lines.append((t, f"| {t:6.2f} s | {side} | {who} | {text} |"))

    def follow(self, session: AgentSession, side: str, people: dict[str, str]) -> None:
        def on_item(ev: Any) -> None:
            item = ev.item
            if getattr(item, "type", "") == "message" and item.text_content:
                self.add(side, people.get(item.role, item.role), item.text_content)

        def on_tools(ev: Any) -> None:
            for call in ev.function_calls:
                self.add(side, "agent (tool call)", f"{call.name}({call.arguments})")

        session.on("conversation_item_added", on_item)
        session.on("function_tools_executed", on_tools)


class ScriptedSideRoom:
    """The person's side room in text mode: their session starts before the dial (as in the framework), and once
    the dial is answered the scripted person says their lines, one turn each. Closing it deletes the room on the
    LiveKit stand-in, as the framework's side room is deleted when the person's session closes."""

    def __init__(self, name: str, script: list[str], transcript: Transcript, url: str) -> None:
        self.name = name
        self.room = rtc.Room()
        self.script = script
        self.transcript = transcript
        self.url = url
        self.session: AgentSession | None = None
        self.closed = False
        self.talking: asyncio.Task[None] | None = None

    async def start(self, session: AgentSession, agent: Agent, *, identity: str) -> None:
        self.session = session
        self.transcript.follow(session, "on-duty person", {"user": "person", "assistant": "agent"})
        await session.start(agent)

    def answered(self, session: AgentSession) -> None:
        self.transcript.add("on-duty person", "phone", "answered (CreateSIPParticipant returned)")
        self.talking = asyncio.ensure_future(self._talk(session))

    async def _talk(self, session: AgentSession) -> None:
        for line in self.script:
            if self.closed:
                return
            with contextlib.suppress(RuntimeError):  # the transfer ended the person's session mid-script
                await session.run(user_input=line)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        lk = api.LiveKitAPI(self.url, API_KEY, API_SECRET)
        try:
            await lk.room.delete_room(api.DeleteRoomRequest(room=self.name))
        except api.TwirpError as exc:
            if exc.code != api.TwirpErrorCode.NOT_FOUND:
                raise
        finally:
            await lk.aclose()


def enter_job_context(room_name: str, url: str) -> tuple[JobContext, Any]:
    """A real ``JobContext`` for a fake job (no room connection), set in the running test's context the way the
    framework's job runner sets it for an entrypoint; returns it with the job's HTTP session factory."""
    room = rtc.Room()
    room._info.name = room_name  # what the job runner does before the entrypoint
    info = RunningJobInfo(accept_arguments=JobAcceptArguments(name="callwise", identity="agent-AJ_test", metadata=""),
                          job=agent_pb.Job(id="AJ_test", room=models.Room(name=room_name)), url=url, token="",
                          worker_id="test", fake_job=True)
    ctx = JobContext(proc=JobProcess(executor_type=JobExecutorType.THREAD, user_arguments=None, http_proxy=None),
                     info=info, room=room, on_connect=lambda: None, on_shutdown=lambda _reason: None,
                     inference_executor=None)  # type: ignore[arg-type]
    _JobContextVar.set(ctx)
    return ctx, http_context._new_session_ctx()


@pytest.fixture
async def warm_call(pg_pool, org_id, livekit, monkeypatch, tmp_path) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    livekit.reset()
    for name, value in {"LIVEKIT_URL": livekit.url, "LIVEKIT_API_KEY": API_KEY, "LIVEKIT_API_SECRET": API_SECRET,
                        "LIVEKIT_SIP_OUTBOUND_TRUNK": TRUNK}.items():
        monkeypatch.setenv(name, value)
    made: list[Any] = []

    async def start(script: list[str], *, room: str, ringing_timeout_s: int = 5, language: str = "en") -> Any:
        settings = Settings(_env_file=None, data_dir=tmp_path, handoff_transfer_to="tel:+15550001111",
                            handoff_ringing_timeout_s=ringing_timeout_s)
        creds = CredentialStore(pg_pool, Fernet(Fernet.generate_key()))
        cfg = VendorConfig(livekit_url=livekit.url, livekit_api_key=API_KEY, livekit_api_secret=API_SECRET)
        dispatch = Dispatcher(pg_pool, build_handlers(pg_pool, creds, cfg), organization_id=org_id)
        service = HandoffService(pg_pool, InHours(EscalationPolicy()), channels=creds.configured,
                                 deliver_now=dispatch.deliver_now,
                                 config=HandoffConfig(transfer_to=settings.handoff_transfer_to, livekit_configured=True,
                                                      ringing_timeout_s=ringing_timeout_s, transfer_mode="warm"),
                                 desk_factory=lambda org: CaseDesk(pg_pool, org))
        escalator = HandoffEscalator(service)
        deps = SupportDeps(retriever=None, router=None, pool=pg_pool, rules=service.rules,  # type: ignore[arg-type]
                           escalator=escalator)
        livekit.add_participant(room, CALLER)
        transcript = Transcript()
        sides: list[ScriptedSideRoom] = []

        def side_room(name: str) -> ScriptedSideRoom:
            sides.append(ScriptedSideRoom(name, script, transcript, livekit.url))
            return sides[-1]

        _job, http = enter_job_context(room, livekit.url)
        # a SIP caller: the worker puts the number they called from on the call (handoff_room.wire_room)
        call = await SupportCall.start(deps, organization_id=org_id, room=room, customer=CustomerContext(
            name="Sam Rivera", extra={"phone": "+15557654321"}))
        call.ctx.language = language  # what the worker's language choice sets (callwise.calls.languages.choose)
        session: AgentSession = AgentSession()
        transcript.follow(session, "caller", {"user": "caller", "assistant": "agent"})
        await session.start(SupportAgent(call, greet=False))
        quiet: list[bool] = []
        # no caller room to play hold music into: the caller session is text-only
        desk = warm_desk(call, session, settings, side_room=side_room, hold_audio=False)
        assert desk is not None, "a SIP caller with an on-duty number and an outbound trunk gets a warm desk"
        # the line as wire_room builds it (its quiet() needs a room's audio input; here it is recorded)
        call.ctx.handoff.line = WarmLine(room=room, caller="sip", participant_identity=CALLER,
                                         speak=speaker(call, session), settle=settler(session),
                                         quiet=lambda: quiet.append(True), warm=desk)
        state = {"call": call, "session": session, "escalator": escalator, "sides": sides, "quiet": quiet,
                 "transcript": transcript, "org": org_id, "http": http, "desk": desk, "creds": creds}
        made.append(state)
        return state

    yield start
    for state in made:
        with contextlib.suppress(Exception):
            await state["session"].aclose()
        for side in state["sides"]:
            if side.talking is not None:
                side.talking.cancel()
            if side.session is not None:
                with contextlib.suppress(Exception):
                    await side.session.aclose()
        with contextlib.suppress(Exception):
            await state["call"].end()
        await state["http"]().close()


async def _case(pool, org: str, label: str) -> Any:  # type: ignore[no-untyped-def]
    return await CaseDesk(pool, org).get(label)


async def _handed_over(state: dict[str, Any], timeout_s: float = 30.0) -> None:
    """Wait until the turn is stored and what follows the sentence (the warm transfer) has run: the session's
    run ends when the sentence is said, the turn is stored right after."""
    deadline = time.monotonic() + timeout_s
    while True:
        after = state["call"].ctx.handoff.after
        if after is not None and after.result.follow_up is None:
            break
        assert time.monotonic() < deadline, "the turn was not stored"
        await asyncio.sleep(0.02)
    await asyncio.wait_for(state["escalator"].drain(), max(deadline - time.monotonic(), 1.0))


def _said_by_agent(session: AgentSession) -> list[str]:
    return [m.text_content or "" for m in session.history.messages() if m.role == "assistant"]


def _keep(name: str, state: dict[str, Any], livekit: LiveKitTwirpServer) -> None:
    """The call's transcript with the LiveKit server API calls the stand-in answered, in time order."""
    t = state["transcript"]
    for at, method, outcome in livekit.call_log:
        what = f"{method} requested" if outcome == "request" else f"{method} answered {outcome}"
        t.add("LiveKit server API", "stand-in", what, at)
    TRANSCRIPTS[name] = [line for _, line in sorted(t.lines, key=lambda tl: tl[0])]


async def test_accepted_warm_transfer_dials_briefs_and_moves_the_person_into_the_callers_room(
        warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    livekit.dial_ring_s = 1.0  # the desk phone rings a second before Dana picks up
    state = await warm_call(["Hello, Dana speaking.", "yes, put them through"], room="call-warm-ok")
    out = await state["session"].run(user_input="my export keeps failing, I want to talk to a person")
    assert any("transferring you" in m for m in _said_by_agent(state["session"]))
    await _handed_over(state)

    assert livekit.calls[:2] == ["CreateSIPParticipant", "MoveParticipant"]
    [dial] = livekit.dials
    req = dial["request"]
    assert dial["outcome"] == "answered" and req.wait_until_answered and req.sip_call_to == "+15550001111"
    assert req.sip_trunk_id == TRUNK and req.room_name == "call-warm-ok-human-agent"
    assert req.ringing_timeout.seconds == 5
    [move] = livekit.moves
    assert (move.room, move.identity, move.destination_room) == ("call-warm-ok-human-agent", req.participant_identity,
                                                                 "call-warm-ok")
    assert req.participant_identity in livekit.rooms["call-warm-ok"] and CALLER in livekit.rooms["call-warm-ok"]

    person = state["sides"][0]
    heard = [m.text_content or "" for m in person.session.history.messages() if m.role == "assistant"]
    assert heard and "Sam Rivera, case CW-" in heard[0] and "they asked for a person" in heard[0]
    assert "Caller: my export keeps failing" in heard[0] and "transferring you" not in heard[0]
    label = state["call"].ctx.handoff.after.result.case.label
    case = await _case(pg_pool, state["org"], label)
    assert case.handoff_status == "warm_accepted" and case.status == "waiting"
    assert any("warm transfer accepted" in n["text"] for n in case.notes)
    record = state["call"].ctx.handoff.after.record
    assert record["handoff_status"] == "warm_accepted"
    assert state["quiet"] == [True], "the agent goes quiet once the person is in the room"
    assert _said_by_agent(state["session"])[-1].startswith("A colleague from our support team has joined")
    assert out is not None
    _keep("accepted", state, livekit)


async def test_declined_warm_transfer_is_a_callback_and_the_caller_hears_one_sentence(
        warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    livekit.dial_ring_s = 1.0
    state = await warm_call(["Hello, Dana speaking.", "no, I'm on another call"], room="call-warm-no")
    await state["session"].run(user_input="I want to talk to a person please")
    await _handed_over(state)

    assert livekit.calls == ["CreateSIPParticipant", "DeleteRoom"]  # dialled, declined, side room closed; no move
    assert livekit.moves == [] and livekit.deleted == ["call-warm-no-human-agent"]
    label = state["call"].ctx.handoff.after.result.case.label
    case = await _case(pg_pool, state["org"], label)
    assert case.status == "callback" and case.handoff == "callback" and case.handoff_status == "warm_declined"
    assert any("I'm on another call" in n["text"] for n in case.notes)
    said = _said_by_agent(state["session"])
    assert said[-1] == ("I'm sorry, our colleague couldn't take your call just now, so I've made this a callback "
                        "instead: a member of our support team will call you back during service hours, 9:00 to 18:00 UTC.")
    assert said[-1].count(". ") == 0, "one sentence"
    assert state["quiet"] == []
    # the support agent is back and answers the caller: asking again gets the case, not a second transfer
    assert isinstance(state["session"].current_agent, SupportAgent)
    await state["session"].run(user_input="can I talk to a human now")
    assert "I've already opened a case for you" in _said_by_agent(state["session"])[-1]
    assert len(livekit.dials) == 1
    _keep("declined", state, livekit)


async def test_a_spanish_caller_hears_the_declined_transfer_in_spanish(
        warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    state = await warm_call(["Hello, Dana speaking.", "sorry, I can't take it right now"], room="call-warm-es",
                            language="es")
    await state["session"].run(user_input="quiero hablar con una persona")
    await _handed_over(state)
    said = _said_by_agent(state["session"])
    assert said[0].startswith("Por supuesto. Le paso ahora con un miembro de nuestro equipo de soporte.")
    assert said[-1] == ("Lo siento, nuestro compañero no puede atender su llamada en este momento, así que lo he "
                        "convertido en una devolución de llamada: un miembro de nuestro equipo de soporte le llamará "
                        "en horario de servicio, 9:00 to 18:00 UTC.")
    label = state["call"].ctx.handoff.after.result.case.label
    assert (await _case(pg_pool, state["org"], label)).handoff_status == "warm_declined"


async def test_a_person_who_never_answers_is_a_callback_after_the_ringing_timeout(
        warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    livekit.dial_outcome = "no_answer"
    state = await warm_call(["yes"], room="call-warm-ring", ringing_timeout_s=1)
    started = time.monotonic()
    await state["session"].run(user_input="get me a human")
    await _handed_over(state)
    assert time.monotonic() - started >= 1.0, "it rang for the ringing timeout"

    [dial] = livekit.dials
    assert dial["outcome"] == "no_answer" and livekit.moves == []
    label = state["call"].ctx.handoff.after.result.case.label
    case = await _case(pg_pool, state["org"], label)
    assert case.status == "callback" and case.handoff_status == "warm_no_answer"
    assert any("SIP 408" in n["text"] for n in case.notes)
    assert _said_by_agent(state["session"])[-1].startswith("I'm sorry, no one could pick up in time, so I've made")
    assert state["sides"][0].closed, "the side room was closed"


async def test_a_busy_person_is_told_as_busy(warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    livekit.dial_outcome = "busy"
    state = await warm_call(["yes"], room="call-warm-busy")
    await state["session"].run(user_input="I want to talk to a person")
    await _handed_over(state)
    label = state["call"].ctx.handoff.after.result.case.label
    case = await _case(pg_pool, state["org"], label)
    assert case.handoff_status == "warm_busy" and case.status == "callback"
    assert "our colleague's line was busy" in _said_by_agent(state["session"])[-1]


async def test_voicemail_is_a_callback(warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    state = await warm_call(["Hi, you've reached Dana. Please leave a message after the tone."], room="call-warm-vm")
    await state["session"].run(user_input="I want to talk to a person")
    await _handed_over(state)
    label = state["call"].ctx.handoff.after.result.case.label
    case = await _case(pg_pool, state["org"], label)
    assert case.handoff_status == "warm_voicemail" and case.status == "callback" and livekit.moves == []


async def test_caller_hangs_up_while_the_person_is_dialled_closes_the_side_room_and_keeps_the_case(
        warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    livekit.dial_ring_s = 20.0
    state = await warm_call(["yes"], room="call-warm-gone", ringing_timeout_s=30)
    await state["creds"].set(state["org"], "slack", secrets={"bot_token": "xoxb-test"}, fields={"channel": "C0DUTY"})
    await state["session"].run(user_input="I want to talk to a person")
    for _ in range(200):
        if livekit.dials:
            break
        await asyncio.sleep(0.05)
    assert livekit.dials and livekit.dials[0]["outcome"] == "ringing"
    started = time.monotonic()
    await state["session"].aclose()  # the caller hangs up
    await _handed_over(state)
    for _ in range(100):
        if livekit.deleted:
            break
        await asyncio.sleep(0.05)
    assert time.monotonic() - started < 10, "nobody waited for the phone to stop ringing"
    assert livekit.deleted == ["call-warm-gone-human-agent"], "the side room was closed"
    assert livekit.dials[0]["outcome"] == "hung_up" and livekit.moves == []
    label = state["call"].ctx.handoff.after.result.case.label
    case = await _case(pg_pool, state["org"], label)
    assert case.status == "callback" and case.handoff_status == "caller_left"
    rows = await pg_pool.fetch("select role, text from turns where organization_id = $1 and session_id = $2 order by seq",
                               state["org"], state["call"].session_id)
    assert [r["role"] for r in rows] == ["user", "assistant"] and "transferring you" in rows[1]["text"]
    # the on-duty channel hears about the call, and that it is now a callback (through the outbox)
    keys = {r["idempotency_key"] for r in await list_items(pg_pool, state["org"], case_id=case.id)}
    assert keys == {f"{case.id}:notify", f"{case.id}:notify:callback"}


async def test_a_move_the_server_cannot_make_falls_back_to_the_cold_transfer(
        warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    livekit.move_unsupported = True  # MoveParticipant is LiveKit Cloud only
    state = await warm_call(["Hello, Dana speaking.", "yes, put them through"], room="call-warm-cold")
    await state["session"].run(user_input="I want to talk to a person")
    await _handed_over(state)

    assert livekit.calls[:2] == ["CreateSIPParticipant", "MoveParticipant"] and livekit.moves == []
    assert "TransferSIPParticipant" in livekit.calls, "the cold transfer was the fallback"
    [transfer] = [t for t in livekit.connected if t.room_name == "call-warm-cold"]
    assert transfer.participant_identity == CALLER and transfer.transfer_to == "tel:+15550001111"
    assert "call-warm-cold-human-agent" in livekit.deleted, "the side room was closed"
    label = state["call"].ctx.handoff.after.result.case.label
    case = await _case(pg_pool, state["org"], label)
    assert case.handoff_status == "transferred"
    assert any("warm transfer failed" in n["text"] and "falling back to a cold transfer" in n["text"]
               for n in case.notes)


async def test_an_org_that_chose_cold_transfer_gets_it_despite_the_deployments_warm_setting(
        warm_call, livekit, pg_pool) -> None:  # type: ignore[no-untyped-def]
    state = await warm_call(["yes"], room="call-org-cold")
    await pg_pool.execute("""update organizations set settings = settings || '{"transfer_mode": "cold"}'::jsonb
                             where id = $1""", state["org"])
    await state["session"].run(user_input="I want to talk to a person")
    await _handed_over(state)
    assert livekit.dials == [] and [t.room_name for t in livekit.connected][-1] == "call-org-cold"
    label = state["call"].ctx.handoff.after.result.case.label
    assert (await _case(pg_pool, state["org"], label)).handoff_status == "transferred"


def test_zz_write_the_transcript() -> None:
    """Writes the accepted and declined transcripts of this run where ``CALLWISE_WARM_TRANSCRIPT`` points."""
    target = os.environ.get("CALLWISE_WARM_TRANSCRIPT")
    if not target:
        pytest.skip("set CALLWISE_WARM_TRANSCRIPT=path to write the transcript")
    assert set(TRANSCRIPTS) == {"accepted", "declined"}, "run the whole module"
    out = ["# Warm transfer transcripts (generated)", "",
           f"Written by `tests/agent/test_warm_transfer.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: the caller is "
           "a text-mode `AgentSession` with the support agent; the on-duty person's side room is a text-mode session "
           "with a scripted person and the offline transfer desk (`agent/plugins/llm_transfer_desk.py`); the LiveKit "
           "server API is the Twirp stand-in (`tests/vendors/livekit_twirp.py`). Times are seconds from the start of "
           "the call. Reproduce: `CALLWISE_WARM_TRANSCRIPT=bench/results/issue23/warm-transfer-transcript.md "
           ".venv/bin/pytest -q -p no:cacheprovider tests/agent/test_warm_transfer.py`.", ""]
    for name in ("accepted", "declined"):
        out += [f"## {name.capitalize()}", "", "| time | side | who | words |", "| --- | --- | --- | --- |",
                *TRANSCRIPTS[name], ""]
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text("\n".join(out), encoding="utf-8")
