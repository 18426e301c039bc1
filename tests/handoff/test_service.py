"""What the caller hears matches what happened: the handoff service against real vendor wire formats
(Slack Web API, Zendesk, LiveKit Twirp) and a real Postgres, on each path and with the vendor down."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from callwise.calls.store import ConversationStore, TurnRecord
from callwise.handoff.cases import CaseDesk, JoinLinks
from callwise.handoff.escalation import Escalation, EscalationPolicy, EscalationRules
from callwise.handoff.service import CallContext, HandoffConfig, HandoffService
from callwise.integrations.actions import VendorConfig, build_handlers
from callwise.integrations.credentials import CredentialStore
from callwise.integrations.outbox import Backoff, Dispatcher, list_items
from tests.vendors.livekit_twirp import API_KEY, API_SECRET, LiveKitTwirpServer
from tests.vendors.slack import SlackApiServer
from tests.vendors.zendesk import ZendeskServer

ASK_HUMAN = Escalation("explicit_request", "asked for a human", ["talk to a human"])


class ClockRules(EscalationRules):
    """The real service-hours rule (09:00-18:00 UTC) read at a fixed moment."""

    def __init__(self, hour: int) -> None:
        super().__init__(EscalationPolicy())
        self.at = datetime(2026, 11, 23, hour, 0, tzinfo=UTC)

    def handoff(self, now=None):  # type: ignore[no-untyped-def]
        return super().handoff(self.at)


@pytest.fixture(scope="module")
def vendors():
    slack, zendesk, livekit = SlackApiServer().start(), ZendeskServer().start(), LiveKitTwirpServer().start()
    yield slack, zendesk, livekit
    for s in (slack, zendesk, livekit):
        s.stop()


@pytest.fixture
def env(pg_pool, org_id, vendors):
    slack, zendesk, livekit = vendors
    slack.down = slack.revoked = zendesk.down = False
    livekit.reset()
    creds = CredentialStore(pg_pool, Fernet(Fernet.generate_key()))
    links = JoinLinks(url=livekit.url, api_key=API_KEY, api_secret=API_SECRET)
    cfg = VendorConfig(zendesk_base_url=zendesk.url, slack_base_url=slack.url, livekit_url=livekit.url,
                       livekit_api_key=API_KEY, livekit_api_secret=API_SECRET, public_url="https://cw.example.com")
    dispatch = Dispatcher(pg_pool, build_handlers(pg_pool, creds, cfg), organization_id=org_id,
                          backoff=Backoff(base_s=0.05, max_s=0.2, jitter=0))

    def service(hour: int = 12, transfer_to: str | None = None, **kw) -> HandoffService:  # type: ignore[no-untyped-def]
        return HandoffService(pg_pool, ClockRules(hour), channels=creds.configured, deliver_now=dispatch.deliver_now,
                              config=HandoffConfig(transfer_to=transfer_to, livekit_configured=True, **kw),
                              desk_factory=lambda org: CaseDesk(pg_pool, org, links=links))

    return {"creds": creds, "dispatch": dispatch, "service": service, "slack": slack, "zendesk": zendesk,
            "livekit": livekit, "org": org_id, "pool": pg_pool}


async def _call(pool, org: str, *, room: str = "call-1", caller: str = "app", customer=None) -> CallContext:  # type: ignore[no-untyped-def]
    store = ConversationStore(pool, org)
    session = await store.start_session(room=room, kind="support")
    await store.add_turn(session, TurnRecord(speaker="customer", role="user", text="my export keeps failing"))
    await store.add_turn(session, TurnRecord(speaker="customer", role="user", text="I want to talk to a human"))
    return CallContext(organization_id=org, session_id=session, room=room, caller=caller,  # type: ignore[arg-type]
                       participant_identity="sip_+15557654321" if caller == "sip" else "web-user",
                       customer=customer or {"name": "Dana", "email": "dana@example.com"},
                       recent=["my export keeps failing", "I want to talk to a human"])


async def _slack(env) -> None:  # type: ignore[no-untyped-def]
    await env["creds"].set(env["org"], "slack", secrets={"bot_token": SlackApiServer.TOKEN}, fields={"channel": "C0DUTY"})


async def _zendesk(env) -> None:  # type: ignore[no-untyped-def]
    z = env["zendesk"]
    await env["creds"].set(env["org"], "zendesk", secrets={"access_token": z.access_token, "refresh_token": z.refresh_token,
                                                           "client_secret": z.CLIENT_SECRET},
                           fields={"subdomain": "acme", "client_id": z.CLIENT_ID})


async def test_nothing_configured_is_an_honest_callback_with_the_local_case_number(env):
    res = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res.handoff == "callback" and res.case.status == "callback"
    assert res.case.label == "CW-1001" and "case number C W 1 0 0 1" in res.say
    assert "connecting" not in res.say.lower() and "join" not in res.say.lower()
    assert "9:00 to 18:00 UTC" in res.say and "email you" in res.say  # the contact we have is an email
    assert await list_items(env["pool"], env["org"]) == []


async def test_outside_service_hours_says_the_team_is_offline(env):
    await _slack(env)
    res = await env["service"](hour=22).escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res.handoff == "callback" and "offline right now" in res.say
    # the on-duty channel still hears about the callback, through the outbox
    [row] = await list_items(env["pool"], env["org"])
    assert row["action"] == "slack.notify"


async def test_app_caller_hears_connecting_only_after_the_notice_is_out(env):
    await _slack(env)
    before = len(env["slack"].posted)
    res = await env["service"]().escalate(await _call(env["pool"], env["org"], room="call-77"), ASK_HUMAN)
    assert res.handoff == "live" and res.handoff_status == "notified" and res.wait is not None
    assert "asked a colleague" in res.say and "stay on the line" in res.say
    [msg] = env["slack"].posted[before:]
    assert msg["channel"] == "C0DUTY" and res.case.label in msg["text"]
    text = msg["blocks"][0]["text"]["text"]
    assert '"talk to a human"' in text and "Dana" in text and "my export keeps failing" in text
    # a link to the case, never a room token in chat: the join link is minted for the agent who claims it
    assert f"https://cw.example.com/cases?case={res.case.label}" in text and "token=" not in json.dumps(msg)
    row = await env["pool"].fetchrow("select details from audit_log where organization_id = $1 and action = 'slack.notify'",
                                     env["org"])
    assert SlackApiServer.TOKEN not in row["details"] and "token=" not in row["details"]


async def test_slack_down_at_the_moment_means_callback_and_the_caller_is_told(env):
    await _slack(env)
    env["slack"].down = True
    res = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res.handoff == "callback" and res.handoff_status == "notify_failed"
    assert "couldn't reach our on-duty team" in res.say and "callback" in res.say and "join" not in res.say
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.status == "callback" and case.handoff == "callback"


async def test_zendesk_ticket_number_is_spoken_once_the_ticket_exists(env):
    await _zendesk(env)
    z = env["zendesk"]
    res = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    ticket = next(t for t in z.tickets.values() if t["external_id"] == res.case.id)
    assert res.reference == str(ticket["id"]) and f"ticket number {ticket['id']}" in res.say
    assert "my export keeps failing" in ticket["description"] and "talk to a human" in ticket["description"]
    assert ticket["requester"]["email"] == "dana@example.com" and "callwise_explicit_request" in ticket["tags"]
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.ticket_id == str(ticket["id"])


async def test_zendesk_down_caller_hears_the_case_number_and_the_ticket_follows_once(env):
    await _zendesk(env)
    z = env["zendesk"]
    z.down = True
    res = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res.reference == res.case.label and "ticket" not in res.say
    z.down = False
    await env["dispatch"].drain(timeout_s=10)
    made = [t for t in z.tickets.values() if t["external_id"] == res.case.id]
    assert len(made) == 1
    assert (await CaseDesk(env["pool"], env["org"]).get(res.case.id)).ticket_id == str(made[0]["id"])


async def test_zendesk_refresh_rotates_the_stored_pair(env):
    await _zendesk(env)
    z = env["zendesk"]
    z.expire_access()
    old_refresh = z.refresh_token
    res = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res.case.ticket_id is not None
    cred = await env["creds"].get(env["org"], "zendesk")
    assert cred.secrets["access_token"] == z.access_token and cred.secrets["refresh_token"] == z.refresh_token
    assert cred.secrets["refresh_token"] != old_refresh and cred.secrets["client_secret"] == z.CLIENT_SECRET
    # the stored (rotated) pair works for the next refresh too
    z.expire_access()
    res2 = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res2.case.ticket_id is not None


async def test_revoked_zendesk_marks_the_integration_and_the_call_goes_on(env):
    await _zendesk(env)
    z = env["zendesk"]
    z.expire_access()
    z.refresh_token = "rotated-elsewhere"  # our refresh token is dead
    res = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res.reference == res.case.label and res.case.status == "callback"
    [row] = [r for r in await list_items(env["pool"], env["org"]) if r["action"] == "zendesk.ticket"]
    assert row["status"] == "dead" and "refused" in row["last_error"]
    [info] = [i for i in await env["creds"].list(env["org"]) if i.provider == "zendesk"]
    assert info.status == "needs_reauth"


async def test_zendesk_rejects_the_ticket_the_case_stays_with_the_error(env):
    await _zendesk(env)
    res = await env["service"]().escalate(
        await _call(env["pool"], env["org"], customer={"name": "X", "email": "not-an-email"}), ASK_HUMAN)
    assert res.reference == res.case.label
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    [row] = case.outbox
    assert row["status"] == "dead" and "RecordInvalid" in row["last_error"] and "not properly formatted" in row["last_error"]


async def test_sip_caller_is_transferred_after_hearing_so(env):
    svc = env["service"](transfer_to="tel:+15550001111")
    res = await svc.escalate(await _call(env["pool"], env["org"], room="sip-room", caller="sip"), ASK_HUMAN)
    assert res.handoff == "live" and "transferring you" in res.say and res.follow_up is not None
    n = len(env["livekit"].transfers)
    assert await res.follow_up() is None
    req = env["livekit"].transfers[n]
    assert req.room_name == "sip-room" and req.transfer_to == "tel:+15550001111"
    assert req.participant_identity == "sip_+15557654321"
    assert (await CaseDesk(env["pool"], env["org"]).get(res.case.id)).handoff_status == "transferred"


async def test_refused_transfer_falls_back_to_a_callback_and_says_so(env):
    env["livekit"].refuse = {"status": 412, "code": "failed_precondition", "msg": "transfer failed",
                             "meta": {"sip_status_code": "486", "sip_status": "Busy Here"}}
    svc = env["service"](transfer_to="sip:oncall@pbx.example.com")
    res = await svc.escalate(await _call(env["pool"], env["org"], caller="sip",
                                         customer={"phone": "+15557654321"}), ASK_HUMAN)
    fallback = await res.follow_up()
    assert fallback and "transfer didn't go through" in fallback and "call you back" in fallback
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.status == "callback" and case.handoff_status == "transfer_failed"
    assert "486" in case.outbox[0]["last_error"]


async def test_human_never_joins_callback_after_the_timeout_and_the_caller_is_told(env):
    await _slack(env)
    before = len(env["slack"].posted)
    res = await env["service"](timeout_s=0.5, keepalive_s=0.15).escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    heard: list[str] = []

    async def say(text: str) -> None:
        heard.append(text)

    assert await res.wait.run(say) == "timed_out"
    assert heard[:-1] and all("still finding a colleague" in h for h in heard[:-1])
    assert "no one from the team could join in time" in heard[-1] and "service hours" in heard[-1]
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.status == "callback" and case.handoff_status == "timed_out"
    # the on-duty channel is told the caller is no longer waiting
    await env["dispatch"].drain(timeout_s=10)
    notices = [m for m in env["slack"].posted[before:] if res.case.label in m["text"]]
    assert [n["text"].split(":")[0] for n in notices] == ["Caller waiting", "Callback needed"]


async def test_human_joins_is_introduced_and_the_case_says_so(env):
    await _slack(env)
    res = await env["service"](timeout_s=5, keepalive_s=1).escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    heard: list[str] = []

    async def say(text: str) -> None:
        heard.append(text)

    res.wait.human_joined("agent-alice")
    assert await res.wait.run(say) == "human_joined"
    assert heard == ["alice from our support team has joined and has the details of your call. "
                     "I'll hand over to them now."]
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.handoff_status == "human_joined" and case.status == "waiting"


async def test_cases_and_outbox_rows_commit_together(env, monkeypatch):
    await _zendesk(env)
    svc = env["service"]()
    call = await _call(env["pool"], env["org"])

    async def broken_enqueue(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr("callwise.integrations.outbox.enqueue", broken_enqueue)
    with pytest.raises(RuntimeError):
        await svc.escalate(call, ASK_HUMAN)
    n = await env["pool"].fetchval("select count(*) from escalations where organization_id = $1 and session_id = $2",
                                   env["org"], call.session_id)
    assert n == 0  # no case without its actions


def test_payloads_carry_no_secret():
    from callwise.integrations.slack import on_duty_notice

    head, blocks = on_duty_notice({"case": "CW-1", "reason": "outage", "handoff": "callback", "matched": ["down"]}, None)
    assert "CW-1" in head and "Join" not in json.dumps(blocks)
    assert uuid.UUID(str(uuid.uuid4()))


async def test_escalator_in_a_call_waits_for_the_human_then_goes_quiet(env):
    from callwise.calls import SupportCall, SupportDeps
    from callwise.handoff.service import CallLine, HandoffEscalator

    await _slack(env)
    svc = env["service"](timeout_s=5, keepalive_s=2)
    esc = HandoffEscalator(svc)
    deps = SupportDeps(retriever=None, router=None, pool=env["pool"], rules=svc.rules, escalator=esc)  # type: ignore[arg-type]
    call = await SupportCall.start(deps, organization_id=env["org"], room="room-q")
    heard: list[str] = []
    quiet: list[bool] = []

    async def speak(text: str) -> None:
        heard.append(text)

    call.ctx.handoff.line = CallLine(room="room-q", caller="app", participant_identity="web-1", speak=speak,
                                     quiet=lambda: quiet.append(True))
    out = await call.run_turn("can I speak to a person")
    assert out.escalation["handoff_status"] == "notified" and "asked a colleague" in out.answer
    assert call.ctx.handoff.human_joined("agent-bob", "Bob")
    await esc.drain()
    assert heard == ["Bob from our support team has joined and has the details of your call. I'll hand over to them now."]
    assert quiet == [True]


async def test_escalator_transfers_a_sip_caller_after_the_sentence_and_says_when_it_failed(env):
    from callwise.calls import SupportCall, SupportDeps
    from callwise.handoff.service import CallLine, HandoffEscalator

    env["livekit"].outcome = "no_answer"
    svc = env["service"](transfer_to="tel:+15550001111", ringing_timeout_s=1, hold_line_s=5)
    esc = HandoffEscalator(svc)
    deps = SupportDeps(retriever=None, router=None, pool=env["pool"], rules=svc.rules, escalator=esc)  # type: ignore[arg-type]
    call = await SupportCall.start(deps, organization_id=env["org"], room="sip-q")
    order: list[str] = []

    async def speak(text: str) -> None:
        order.append("said: " + text)

    async def settle() -> None:
        order.append("settled")

    call.ctx.handoff.line = CallLine(room="sip-q", caller="sip", participant_identity="sip_+1555", speak=speak,
                                     settle=settle)
    out = await call.run_turn("get me a human")
    assert "transferring you" in out.answer
    await esc.drain()
    assert order[0] == "settled" and "transfer didn't go through: no one could pick up in time" in order[1]
    case = await CaseDesk(env["pool"], env["org"]).get(out.escalation["case"])
    assert case.status == "callback" and case.handoff_status == "transfer_failed"


async def test_revoked_slack_token_marks_needs_reauth_and_the_caller_gets_a_callback(env):
    await _slack(env)
    env["slack"].revoked = True
    res = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res.handoff == "callback" and "couldn't reach our on-duty team" in res.say
    [info] = [i for i in await env["creds"].list(env["org"]) if i.provider == "slack"]
    assert info.status == "needs_reauth" and "token_revoked" in info.last_error


async def test_on_duty_notice_through_an_incoming_webhook(env):
    from tests.vendors.slack import SlackWebhookServer

    with SlackWebhookServer() as hook:
        await env["creds"].set(env["org"], "slack", secrets={"webhook_url": hook.url})
        res = await env["service"]().escalate(await _call(env["pool"], env["org"], room="call-w"), ASK_HUMAN)
        assert res.handoff_status == "notified" and len(hook.messages) == 1
        assert res.case.label in hook.messages[0]["text"] and "token=" not in json.dumps(hook.messages[0]["blocks"])


async def test_zendesk_429_retry_after_schedules_the_next_attempt(env):
    from tests.vendors._http import Reply

    await _zendesk(env)
    z = env["zendesk"]
    z.enqueue(Reply(429, {"error": "TooManyRequests"}, headers={"Retry-After": "45"}))
    res = await env["service"]().escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)
    assert res.reference == res.case.label  # no ticket yet: the local case number is what the caller got
    wait = await env["pool"].fetchval("select extract(epoch from next_attempt_at - now()) from outbox "
                                      "where organization_id = $1 and action = 'zendesk.ticket'", env["org"])
    assert 40 < float(wait) <= 45


async def test_the_dispatcher_that_serve_and_the_worker_run_delivers_from_settings(env, tmp_path):
    import asyncio

    from callwise.wiring.integrations import credential_store, running_dispatcher
    from callwise.wiring.settings import Settings

    key = Fernet.generate_key().decode()
    settings = Settings(_env_file=None, data_dir=tmp_path, encryption_key=key, slack_base_url=env["slack"].url,
                        outbox_poll_s=0.1)
    await credential_store(settings, env["pool"]).set(env["org"], "slack", secrets={"bot_token": SlackApiServer.TOKEN},
                                                      fields={"channel": "C0BG"})
    svc = HandoffService(env["pool"], ClockRules(22), channels=credential_store(settings, env["pool"]).configured)
    res = await svc.escalate(await _call(env["pool"], env["org"]), ASK_HUMAN)  # callback: the notice goes in the background
    async with running_dispatcher(settings, env["pool"]) as d:
        assert d is not None
        for _ in range(100):
            rows = await list_items(env["pool"], env["org"])
            if rows and rows[0]["status"] == "delivered":
                break
            await asyncio.sleep(0.1)
    assert rows[0]["status"] == "delivered"
    assert any(m["channel"] == "C0BG" and res.case.label in m["text"] for m in env["slack"].posted)


def test_whoever_opens_the_shared_on_duty_link_is_introduced_as_a_colleague():
    from callwise.handoff.service import LiveWait, human_joined_message

    wait = LiveWait.__new__(LiveWait)
    wait.joined, wait.human = __import__("asyncio").Event(), None
    wait.human_joined("agent-on-duty", "on-duty")
    assert wait.human is None
    assert human_joined_message(wait.human or "A colleague").startswith("A colleague from our support team has joined")


# ------------------------------------------------------------------------------------------------ issue 23
async def _running_dispatcher(env):  # type: ignore[no-untyped-def]
    """The background dispatcher every worker job runs (``running_dispatcher``), polling fast."""
    import asyncio

    stop = asyncio.Event()
    bg = Dispatcher(env["pool"], env["dispatch"].handlers, organization_id=env["org"], worker_id="background")
    task = asyncio.create_task(bg.run(stop, poll_s=0.02))
    return stop, task


async def test_a_running_dispatcher_does_not_take_the_transfer_while_the_agent_speaks(env, tmp_path):
    """The worker's own wiring: ``handoff_service`` and the ``running_dispatcher`` every job runs."""
    import asyncio

    from callwise.wiring.integrations import handoff_service, running_dispatcher
    from callwise.wiring.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path, encryption_key=Fernet.generate_key().decode(),
                        livekit_url=env["livekit"].url, livekit_api_key=API_KEY, livekit_api_secret=API_SECRET,
                        handoff_transfer_to="tel:+15550001111", outbox_poll_s=0.02)
    svc = handoff_service(settings, env["pool"], rules=ClockRules(12))
    async with running_dispatcher(settings, env["pool"]) as background:
        assert background is not None
        res = await svc.escalate(await _call(env["pool"], env["org"], room="race-room", caller="sip"), ASK_HUMAN)
        await asyncio.sleep(0.3)  # "I'm transferring you ..." is being spoken; the dispatcher polls 15 times
        assert all(t.room_name != "race-room" for t in env["livekit"].transfers)
        assert await res.follow_up() is None  # the handoff's own delivery connected the caller
    assert [t.room_name for t in env["livekit"].transfers].count("race-room") == 1
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.handoff_status == "transferred" and case.status == "waiting"
    [row] = case.outbox
    assert row["status"] == "delivered"


async def test_a_running_dispatcher_does_not_take_the_live_slack_notice(env):
    import asyncio

    await _slack(env)
    before = len(env["slack"].posted)
    stop, task = await _running_dispatcher(env)
    deliver_now = env["dispatch"].deliver_now

    async def busy_loop_then_deliver(ids, timeout_s):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.3)  # the worker's event loop is busy with audio for a moment
        return await deliver_now(ids, timeout_s)

    try:
        svc = env["service"]()
        svc._deliver_now = busy_loop_then_deliver
        res = await svc.escalate(await _call(env["pool"], env["org"], room="race-slack"), ASK_HUMAN)
    finally:
        stop.set()
        await task
    assert res.handoff_status == "notified" and "asked a colleague" in res.say
    assert sum(res.case.label in m["text"] for m in env["slack"].posted[before:]) == 1


async def test_a_transfer_that_rings_past_the_immediate_budget_connects_and_the_caller_is_held(env):
    env["livekit"].ring_s = 1.5  # longer than the 0.5 s immediate budget; shorter than the ringing timeout
    svc = env["service"](transfer_to="tel:+15550001111", immediate_timeout_s=0.5, ringing_timeout_s=5, hold_line_s=0.4)
    res = await svc.escalate(await _call(env["pool"], env["org"], room="ring-room", caller="sip"), ASK_HUMAN)
    heard: list[str] = []

    async def say(text: str) -> None:
        heard.append(text)

    assert await res.follow_up(say) is None
    assert heard and all(h == "It's still ringing; please stay on the line." for h in heard)
    assert [t.room_name for t in env["livekit"].connected].count("ring-room") == 1
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.handoff_status == "transferred" and case.status == "waiting"


async def test_a_transfer_nobody_answers_becomes_a_callback_after_the_ringing_timeout(env):
    import time

    env["livekit"].outcome = "no_answer"
    svc = env["service"](transfer_to="tel:+15550001111", immediate_timeout_s=0.5, ringing_timeout_s=1)
    res = await svc.escalate(await _call(env["pool"], env["org"], caller="sip", customer={"phone": "+15557654321"}),
                             ASK_HUMAN)
    t0 = time.monotonic()
    said = await res.follow_up()
    assert time.monotonic() - t0 >= 1.0  # it waited out the ringing, not the 0.5 s budget
    assert said and "no one could pick up in time" in said and "call you back" in said
    assert [t.room_name for t in env["livekit"].connected].count("call-1") == 0
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.status == "callback" and case.handoff_status == "transfer_failed"
    assert "STR_RINGING_TIMEOUT" in case.outbox[0]["last_error"]


async def test_a_busy_destination_is_told_as_busy(env):
    env["livekit"].outcome, env["livekit"].ring_s = "refuse", 0.2
    svc = env["service"](transfer_to="tel:+15550001111")
    res = await svc.escalate(await _call(env["pool"], env["org"], caller="sip"), ASK_HUMAN)
    said = await res.follow_up()
    assert said and "our colleague's line was busy" in said
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.handoff_status == "transfer_failed" and "486" in case.outbox[0]["last_error"]


async def test_ongoing_is_not_counted_as_a_connected_transfer(env):
    env["livekit"].outcome = "ongoing"
    svc = env["service"](transfer_to="tel:+15550001111")
    res = await svc.escalate(await _call(env["pool"], env["org"], caller="sip", customer={"phone": "+15557654321"}),
                             ASK_HUMAN)
    said = await res.follow_up()
    assert said and "couldn't confirm that the transfer went through" in said and "call you back" in said
    case = await CaseDesk(env["pool"], env["org"]).get(res.case.id)
    assert case.status == "callback" and case.handoff_status == "transfer_unconfirmed"


async def test_a_security_case_is_urgent_in_the_crm_ticket_as_in_zendesk(env):
    """One reason -> priority map: the CRM ticket's priority follows the real reason names (``security_privacy``),
    the same as the Zendesk ticket's."""
    from callwise.integrations.crm.actions import build_crm_handlers
    from callwise.integrations.crm.connect import CRMConfig
    from callwise.integrations.zendesk import ticket_for_case
    from tests.vendors.hubspot import FakeHubSpot

    with FakeHubSpot() as hs:
        await env["creds"].set(env["org"], "hubspot", secrets={"access_token": hs.access_token})
        esc = Escalation("security_privacy", "account security", ["hacked"])
        res = await env["service"](hour=22).escalate(await _call(env["pool"], env["org"]), esc)
        crm = Dispatcher(env["pool"], build_crm_handlers(env["creds"], CRMConfig(hubspot_base_url=hs.url)),
                         organization_id=env["org"], backoff=Backoff(base_s=0.05, max_s=0.1, jitter=0))
        await crm.drain(timeout_s=10)
        [ticket] = [t for t in hs.objects["tickets"] if res.case.label in t["properties"]["subject"]]
        assert ticket["properties"]["hs_ticket_priority"] == "URGENT"
    assert ticket_for_case({"reason": "security_privacy", "case_id": res.case.id}, [])["priority"] == "urgent"
