"""Survey follow-up over the official Twilio and SendGrid SDKs against local servers, and the signed
webhooks that bring the answers back (forged, replayed, malformed: refused, nothing stored)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from callwise.api.app import ApiServices, create_app
from callwise.calls.followup import request_survey
from callwise.calls.store import ConversationStore
from callwise.integrations.actions import VendorConfig, build_handlers
from callwise.integrations.credentials import CredentialStore
from callwise.integrations.outbox import Backoff, Dispatcher, list_items
from tests.vendors import twilio as tw
from tests.vendors.sendgrid import API_KEY, EventSigner, SendGridServer
from tests.vendors.twilio import TwilioServer

PUBLIC = "https://callwise.example.com"
CALLER = "+15557654321"
LINK_KEY = b"k" * 32


@pytest.fixture(scope="module")
def fakes():
    t, s = TwilioServer().start(), SendGridServer().start()
    yield t, s
    t.stop()
    s.stop()


@pytest.fixture
async def world(pg_pool, fakes):
    twilio, sendgrid = fakes
    twilio.down = sendgrid.down = False
    slug = "survey-" + uuid.uuid4().hex[:8]
    org = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, 'Orbitly') returning id", slug))
    creds = CredentialStore(pg_pool, Fernet(Fernet.generate_key()))
    number = "+1555" + str(uuid.uuid4().int)[:7]  # a number belongs to one org: webhooks find the org by it
    signer = EventSigner()
    await creds.set(org, "twilio", secrets={"auth_token": tw.AUTH_TOKEN},
                    fields={"account_sid": tw.ACCOUNT_SID, "from_number": number})
    await creds.set(org, "sendgrid", secrets={"api_key": API_KEY},
                    fields={"from_email": "support@orbitly.example", "event_public_key": signer.public_key})
    cfg = VendorConfig(twilio_base_url=twilio.url, sendgrid_base_url=sendgrid.url, public_url=PUBLIC)
    dispatch = Dispatcher(pg_pool, build_handlers(pg_pool, creds, cfg), organization_id=org,
                          backoff=Backoff(base_s=0.05, max_s=0.1, jitter=0))
    # webhooks need no token, only a signature
    app = create_app(ApiServices(pg_pool, None, None, None, "api-token", public_url=PUBLIC, credentials=creds,
                                 survey_key=LINK_KEY))
    client = TestClient(TestServer(app))
    await client.start_server()
    session = await ConversationStore(pg_pool, org).start_session(room="r", kind="support")
    try:
        yield {"org": org, "slug": slug, "pool": pg_pool, "dispatch": dispatch, "client": client, "twilio": twilio,
               "sendgrid": sendgrid, "signer": signer, "session": session, "number": number}
    finally:
        await client.close()


async def _inbound(w, body: str, *, sid: str | None = None, forge: bool = False, to: str | None = None):  # type: ignore[no-untyped-def]
    params = {"MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": tw.ACCOUNT_SID, "From": CALLER,
              "To": to or w["number"],
              "Body": body, "NumMedia": "0"}
    sig = tw.signature(PUBLIC + "/v1/webhooks/twilio/sms", params, "wrong-token" if forge else tw.AUTH_TOKEN)
    return await w["client"].post("/v1/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": sig}), params


async def _responses(w) -> list:  # type: ignore[no-untyped-def, type-arg]
    return await w["pool"].fetch("select rating, channel_used, requires_followup from survey_responses "
                                 "where organization_id = $1", w["org"])


async def test_sms_survey_goes_out_and_a_reply_is_a_rating(world):
    w = world
    req = await request_survey(w["pool"], w["org"], w["session"], channel="sms", contact=CALLER)
    assert await request_survey(w["pool"], w["org"], w["session"], channel="sms", contact=CALLER) is None  # once
    await w["dispatch"].drain(timeout_s=10)
    sent = [m for m in w["twilio"].messages if req.reference in m["body"]]
    assert len(sent) == 1 and sent[0]["to"] == CALLER and sent[0]["from"] == w["number"]
    assert sent[0]["status_callback"] == PUBLIC + "/v1/webhooks/twilio/status"
    status = await w["pool"].fetchval("select status from survey_requests where id = $1", req.id)
    assert status == "sent"
    res, _ = await _inbound(w, "I'd say 4 out of 5")
    assert res.status == 200 and "<Response>" in await res.text()
    assert [tuple(r) for r in await _responses(w)] == [(4, "sms", False)]


async def test_a_number_typed_with_punctuation_still_gets_the_reply(world):
    """The CRM's "(555) 765-4321" is sent to and stored as +15557654321, the form Twilio's reply comes from."""
    w = world
    req = await request_survey(w["pool"], w["org"], w["session"], channel="sms", contact="(555) 765-4321")
    assert req is not None and req.contact == CALLER
    await w["dispatch"].drain(timeout_s=10)
    assert [m["to"] for m in w["twilio"].messages if req.reference in m["body"]] == [CALLER]
    res, _ = await _inbound(w, "5")
    assert res.status == 200 and [tuple(r) for r in await _responses(w)] == [(5, "sms", False)]


async def test_banana_gets_one_clarifying_sms_then_no_rating(world):
    w = world
    await request_survey(w["pool"], w["org"], w["session"], channel="sms", contact=CALLER)
    await w["dispatch"].drain(timeout_s=10)
    n = len(w["twilio"].messages)
    assert (await _inbound(w, "banana"))[0].status == 200
    await w["dispatch"].drain(timeout_s=10)
    assert [m["body"] for m in w["twilio"].messages[n:]] == [
        "Sorry, we didn't catch that. Please reply with a number from 1 (poor) to 5 (excellent)."]
    assert (await _inbound(w, "banana again"))[0].status == 200
    await w["dispatch"].drain(timeout_s=10)
    assert len(w["twilio"].messages) == n + 1  # no second clarification
    assert await _responses(w) == []
    assert await w["pool"].fetchval("select status from survey_requests where organization_id = $1", w["org"]) == "unanswered"


async def test_low_rating_opens_a_case(world):
    w = world
    await request_survey(w["pool"], w["org"], w["session"], channel="sms", contact=CALLER)
    await _inbound(w, "1, terrible")
    assert [tuple(r) for r in await _responses(w)] == [(1, "sms", True)]
    case = await w["pool"].fetchrow("select case_number, status, details from escalations where organization_id = $1",
                                    w["org"])
    assert case["status"] == "callback" and json.loads(case["details"])["source"] == "survey"


async def test_forged_replayed_malformed_and_unknown_are_refused_and_store_nothing(world):
    w = world
    await request_survey(w["pool"], w["org"], w["session"], channel="sms", contact=CALLER)
    res, _ = await _inbound(w, "5", forge=True)
    assert res.status == 403 and await _responses(w) == []
    res, params = await _inbound(w, "5")
    assert res.status == 200 and len(await _responses(w)) == 1
    sig = tw.signature(PUBLIC + "/v1/webhooks/twilio/sms", params)
    replay = await w["client"].post("/v1/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": sig})
    assert replay.status == 403 and len(await _responses(w)) == 1
    res, _ = await _inbound(w, "5", to="+15550000000")
    assert res.status == 403
    bad = await w["client"].post("/v1/webhooks/twilio/sms", data=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert bad.status == 400
    big = await w["client"].post("/v1/webhooks/twilio/sms", data="Body=" + "x" * 70000,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status == 413
    assert len(await _responses(w)) == 1


async def test_sms_crash_between_send_and_mark_sends_once(world):
    w = world
    req = await request_survey(w["pool"], w["org"], w["session"], channel="sms", contact=CALLER)
    [item] = await w["dispatch"].claim()
    await w["dispatch"].handlers["twilio.sms"](item)  # sent; the process dies before marking it
    await w["pool"].execute("update outbox set locked_until = now() - interval '1 second' where id = $1", item.id)
    await w["dispatch"].drain(timeout_s=10)
    assert len([m for m in w["twilio"].messages if req.reference in m["body"]]) == 1
    [row] = [r for r in await list_items(w["pool"], w["org"]) if r["action"] == "twilio.sms"]
    assert row["status"] == "delivered" and row["attempts"] == 2


async def test_email_survey_and_signed_delivery_events(world):
    w = world
    from callwise.calls.followup import survey_token

    req = await request_survey(w["pool"], w["org"], w["session"], channel="email", contact="dana@example.com",
                               public_url=PUBLIC, link_key=LINK_KEY)
    await w["dispatch"].drain(timeout_s=10)
    [mail] = [m for m in w["sendgrid"].mails if m["custom_args"].get("survey_reference") == req.reference]
    assert mail["personalizations"][0]["to"][0]["email"] == "dana@example.com"
    token = survey_token(LINK_KEY, w["org"], req.reference)
    link = f"{PUBLIC}/survey?" + __import__("urllib.parse").parse.urlencode(
        {"org": w["org"], "ref": req.reference, "t": token, "rating": 5})
    assert link in mail["content"][0]["value"]
    msg_id = await w["pool"].fetchval("select vendor_message_id from survey_requests where id = $1", req.id)
    assert msg_id == mail["msg_id"]

    events = json.dumps([{"email": "dana@example.com", "event": "delivered", "sg_event_id": uuid.uuid4().hex,
                          "sg_message_id": msg_id + ".filter", "survey_reference": req.reference,
                          "timestamp": int(time.time())}])
    ts = str(int(time.time()))
    url = f"/v1/webhooks/sendgrid/events?org={w['slug']}"

    def headers(sig: str, stamp: str = ts) -> dict[str, str]:
        return {"X-Twilio-Email-Event-Webhook-Signature": sig, "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                "Content-Type": "application/json"}

    forged = await w["client"].post(url, data=events, headers=headers(EventSigner().sign(events, ts)))
    assert forged.status == 403
    old = str(int(time.time()) - 3600)
    assert (await w["client"].post(url, data=events, headers=headers(w["signer"].sign(events, old), old))).status == 403
    assert await w["pool"].fetchval("select delivery_status from survey_requests where id = $1", req.id) is None
    ok = await w["client"].post(url, data=events, headers=headers(w["signer"].sign(events, ts)))
    assert ok.status == 200 and (await ok.json())["stored"] == 1
    assert await w["pool"].fetchval("select delivery_status from survey_requests where id = $1", req.id) == "delivered"
    replay = await w["client"].post(url, data=events, headers=headers(w["signer"].sign(events, ts)))
    assert replay.status == 403

    # the reference alone, a forged token, another org's id: nothing opens, nothing is stored
    assert (await w["client"].get(f"/survey?ref={req.reference}")).status == 404
    assert (await w["client"].get(f"/survey?org={w['org']}&ref={req.reference}&t=AAAA")).status == 404
    other = str(uuid.uuid4())
    assert (await w["client"].get(f"/survey?org={other}&ref={req.reference}&t={token}")).status == 404
    forged = await w["client"].post("/survey", data={"org": w["org"], "ref": req.reference, "t": "x" * 24, "rating": "1"})
    assert forged.status == 404 and await _responses(w) == []
    page = await w["client"].get(f"/survey?org={w['org']}&ref={req.reference}&t={token}")
    assert page.status == 200 and "from 1 (poor) to 5" in await page.text()
    done = await w["client"].post("/survey", data={"org": w["org"], "ref": req.reference, "t": token, "rating": "5"})
    assert done.status == 200 and [tuple(r) for r in await _responses(w)] == [(5, "email", False)]
    assert (await w["client"].get("/survey?ref=NOPE99")).status == 404
    assert (await w["client"].get(f"/v1/orgs/{w['slug']}/escalations")).status == 401  # the rest keeps the token


async def test_a_call_that_ends_unrated_gets_the_survey(world, tmp_path):
    from callwise.agent.handoff_room import survey_if_unrated
    from callwise.calls import SupportCall, SupportDeps
    from callwise.integrations.credentials import CredentialStore
    from callwise.routing.types import CustomerContext
    from callwise.wiring.settings import Settings

    w = world
    key = Fernet.generate_key().decode()
    settings = Settings(_env_file=None, data_dir=tmp_path, encryption_key=key, survey_followup="auto")
    creds = CredentialStore(w["pool"], Fernet(key.encode()))
    await creds.set(w["org"], "twilio", secrets={"auth_token": tw.AUTH_TOKEN},
                    fields={"account_sid": tw.ACCOUNT_SID, "from_number": w["number"]})
    deps = SupportDeps(retriever=None, router=None, pool=w["pool"])  # type: ignore[arg-type]
    call = await SupportCall.start(deps, organization_id=w["org"], room="r2",
                                   customer=CustomerContext(name="Dana", extra={"phone": CALLER}))
    await call.end()
    await survey_if_unrated(settings, call)
    row = await w["pool"].fetchrow("select channel, contact from survey_requests where session_id = $1", call.session_id)
    assert tuple(row) == ("sms", CALLER)
    # an org that switched follow-ups off gets none
    await w["pool"].execute("update organizations set settings = '{\"survey_followup\": \"off\"}' where id = $1", w["org"])
    quiet = await SupportCall.start(deps, organization_id=w["org"], room="r3",
                                    customer=CustomerContext(name="Dana", extra={"phone": CALLER}))
    await quiet.end()
    await survey_if_unrated(settings, quiet)
    assert await w["pool"].fetchval("select count(*) from survey_requests where session_id = $1", quiet.session_id) == 0
    [item] = [r for r in await list_items(w["pool"], w["org"]) if r["action"] == "twilio.sms"]
    assert item["status"] == "pending"


async def test_twilio_status_callback_records_delivery(world):
    w = world
    req = await request_survey(w["pool"], w["org"], w["session"], channel="sms", contact=CALLER)
    await w["dispatch"].drain(timeout_s=10)
    sid = await w["pool"].fetchval("select vendor_message_id from survey_requests where id = $1", req.id)
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003", "AccountSid": tw.ACCOUNT_SID,
              "To": CALLER, "From": w["number"]}  # as Twilio sends it: To is the customer we texted
    sig = tw.signature(PUBLIC + "/v1/webhooks/twilio/status", params)
    res = await w["client"].post("/v1/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": sig})
    assert res.status == 200
    row = await w["pool"].fetchrow("select status, delivery_status from survey_requests where id = $1", req.id)
    assert tuple(row) == ("failed", "undelivered")
    again = await w["client"].post("/v1/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": sig})
    assert again.status == 403


async def test_an_unrated_call_reaches_the_caller_through_the_crm_contact(world, tmp_path):
    """The caller gave no number, but the CRM lookup found their contact: the survey goes to the CRM's phone."""
    from callwise.agent.handoff_room import survey_if_unrated
    from callwise.calls import SupportCall, SupportDeps
    from callwise.calls.caller import CallerId, CallerService, CustomerCache
    from callwise.integrations.credentials import CredentialStore
    from callwise.integrations.crm.hubspot import HubSpotCRM, HubSpotTokens
    from callwise.wiring.settings import Settings
    from tests.vendors.hubspot import FakeHubSpot

    w = world
    key = Fernet.generate_key().decode()
    settings = Settings(_env_file=None, data_dir=tmp_path, encryption_key=key, survey_followup="sms")
    creds = CredentialStore(w["pool"], Fernet(key.encode()))
    await creds.set(w["org"], "twilio", secrets={"auth_token": tw.AUTH_TOKEN},
                    fields={"account_sid": tw.ACCOUNT_SID, "from_number": w["number"]})
    with FakeHubSpot() as hs:
        hs.add("contacts", {"firstname": "Dana", "email": "dana@example.com", "phone": "(555) 765-4321"})

        async def crm(org):  # type: ignore[no-untyped-def]
            return HubSpotCRM(HubSpotTokens(access_token=hs.access_token), base_url=hs.url, timeout_s=3)

        deps = SupportDeps(retriever=None, router=None, pool=w["pool"],  # type: ignore[arg-type]
                           callers=CallerService(w["pool"], crm, budget_s=2, cache=CustomerCache()))
        call = await SupportCall.start(deps, organization_id=w["org"], room="r-crm",
                                       caller=CallerId.parse("dana@example.com"))
        await call.ctx.caller.task
        await call.end()
        await survey_if_unrated(settings, call)
    row = await w["pool"].fetchrow("select channel, contact from survey_requests where session_id = $1", call.session_id)
    assert row is not None and tuple(row) == ("sms", CALLER)
