"""What each vendor really ends up with when it performs the action and then fails the response.

The stand-ins apply the request (the ticket, SMS, email or post exists) and answer 500
(``FakeServer.act_then_fail``); the real outbox handlers and a real dispatcher then retry. Each test counts
what the stand-in really holds: one record where the handler looks before it creates, two where the vendor
gives no way to look (Slack incoming webhooks: at-least-once, as the README's guarantee table says).
"""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet

from callwise.calls.store import ConversationStore, TurnRecord
from callwise.handoff.cases import CaseDesk
from callwise.integrations.actions import VendorConfig, build_handlers
from callwise.integrations.credentials import CredentialStore
from callwise.integrations.outbox import Backoff, Dispatcher, enqueue, list_items, retry
from tests.vendors import twilio as tw
from tests.vendors.sendgrid import API_KEY, SendGridServer
from tests.vendors.slack import SlackApiServer, SlackWebhookServer
from tests.vendors.twilio import TwilioServer
from tests.vendors.zendesk import ZendeskServer

FAST = Backoff(base_s=0.05, max_s=0.1, jitter=0.0)
CALLER = "+15557654321"


@pytest.fixture
async def world(pg_pool, org_id):
    servers = {"zendesk": ZendeskServer().start(), "twilio": TwilioServer().start(), "sendgrid": SendGridServer().start(),
               "slack": SlackApiServer().start(), "hook": SlackWebhookServer().start()}
    creds = CredentialStore(pg_pool, Fernet(Fernet.generate_key()))
    cfg = VendorConfig(zendesk_base_url=servers["zendesk"].url, slack_base_url=servers["slack"].url,
                       twilio_base_url=servers["twilio"].url, sendgrid_base_url=servers["sendgrid"].url)
    dispatch = Dispatcher(pg_pool, build_handlers(pg_pool, creds, cfg), organization_id=org_id, backoff=FAST)
    try:
        yield {"pool": pg_pool, "org": org_id, "creds": creds, "dispatch": dispatch, **servers}
    finally:
        for s in servers.values():
            s.stop()


async def _row(w, action: str, payload: dict, *, case_id: str | None = None, max_attempts: int = 8) -> str:  # type: ignore[no-untyped-def, type-arg]
    async with w["pool"].acquire() as conn:
        return await enqueue(conn, organization_id=w["org"], action=action, payload=payload,  # type: ignore[return-value]
                             idempotency_key=f"{action}:{uuid.uuid4().hex}", case_id=case_id, max_attempts=max_attempts)


async def _delivered_after_two(w, row_id: str) -> None:  # type: ignore[no-untyped-def]
    await w["dispatch"].drain(timeout_s=10)
    [row] = [r for r in await list_items(w["pool"], w["org"]) if str(r["id"]) == row_id]
    assert row["status"] == "delivered" and row["attempts"] == 2


async def _case(w) -> tuple[str, dict]:  # type: ignore[no-untyped-def, type-arg]
    store = ConversationStore(w["pool"], w["org"])
    session = await store.start_session(room="r", kind="support")
    await store.add_turn(session, TurnRecord(speaker="customer", role="user", text="my export keeps failing"))
    async with w["pool"].acquire() as conn, conn.transaction():
        case = await CaseDesk(w["pool"], w["org"]).open(conn, session_id=session, reason="explicit_request",
                                                        handoff="callback", details={}, status="callback")
    return case.id, {"case_id": case.id, "case": case.label, "reason": "explicit_request", "rule": "asked",
                     "matched": ["human"], "recent": ["my export keeps failing"], "handoff": "callback",
                     "customer": {"name": "Dana", "email": "dana@example.com"}, "service_hours": "9 to 18"}


async def test_zendesk_ticket_created_then_500_is_found_by_external_id_not_made_twice(world):
    w, z = world, world["zendesk"]
    await w["creds"].set(w["org"], "zendesk", secrets={"access_token": z.access_token, "refresh_token": z.refresh_token,
                                                       "client_secret": z.CLIENT_SECRET},
                         fields={"subdomain": "acme", "client_id": z.CLIENT_ID})
    case_id, payload = await _case(w)
    z.act_then_fail("POST", "/api/v2/tickets.json")
    row = await _row(w, "zendesk.ticket", payload, case_id=case_id)
    await _delivered_after_two(w, row)
    assert z.lost_responses == 1
    assert [t["external_id"] for t in z.tickets.values()].count(case_id) == 1


async def test_twilio_sms_sent_then_500_is_found_in_the_message_list(world):
    w, t = world, world["twilio"]
    await w["creds"].set(w["org"], "twilio", secrets={"auth_token": tw.AUTH_TOKEN},
                         fields={"account_sid": tw.ACCOUNT_SID, "from_number": "+15550009999"})
    t.act_then_fail("POST", f"/2010-04-01/Accounts/{tw.ACCOUNT_SID}/Messages.json")
    row = await _row(w, "twilio.sms", {"organization_id": w["org"], "to": CALLER, "body": "Rate us 1-5. Ref K7Q2MX",
                                       "kind": "survey"})
    await _delivered_after_two(w, row)
    assert t.lost_responses == 1 and sum("K7Q2MX" in m["body"] for m in t.messages) == 1


async def test_sendgrid_email_accepted_then_500_is_found_by_our_key(world):
    w, s = world, world["sendgrid"]
    await w["creds"].set(w["org"], "sendgrid", secrets={"api_key": API_KEY}, fields={"from_email": "support@x.example"})
    s.act_then_fail("POST", "/v3/mail/send")
    row = await _row(w, "sendgrid.email", {"organization_id": w["org"], "to": "dana@example.com", "subject": "How did we do?",
                                           "body": "Rate us", "reference": "K7Q2MX"})
    await _delivered_after_two(w, row)
    assert s.lost_responses == 1 and len(s.mails) == 1


async def test_slack_bot_post_then_500_is_found_in_the_channel_history(world):
    w, slack = world, world["slack"]
    await w["creds"].set(w["org"], "slack", secrets={"bot_token": SlackApiServer.TOKEN}, fields={"channel": "C0DUTY"})
    _, payload = await _case(w)
    slack.act_then_fail("POST", "/api/chat.postMessage")
    row = await _row(w, "slack.notify", payload)
    await _delivered_after_two(w, row)
    assert slack.lost_responses == 1 and sum(payload["case"] in m["text"] for m in slack.posted) == 1


async def test_slack_incoming_webhook_is_at_least_once(world):
    """An incoming webhook can only post: after a lost response the retry posts again (documented, not hidden)."""
    w, hook = world, world["hook"]
    await w["creds"].set(w["org"], "slack", secrets={"webhook_url": hook.url})
    _, payload = await _case(w)
    hook.act_then_fail("POST", SlackWebhookServer.PATH)
    row = await _row(w, "slack.notify", payload)
    await _delivered_after_two(w, row)
    assert hook.lost_responses == 1 and sum(payload["case"] in m["text"] for m in hook.messages) == 2


async def test_outbox_retry_keeps_the_look_before_create_step(world):
    """A row that went dead after the vendor acted, put back by `callwise outbox retry`, must look first."""
    w, t = world, world["twilio"]
    await w["creds"].set(w["org"], "twilio", secrets={"auth_token": tw.AUTH_TOKEN},
                         fields={"account_sid": tw.ACCOUNT_SID, "from_number": "+15550008888"})
    t.act_then_fail("POST", f"/2010-04-01/Accounts/{tw.ACCOUNT_SID}/Messages.json")
    row = await _row(w, "twilio.sms", {"organization_id": w["org"], "to": CALLER, "body": "Rate us. Ref RETRY1",
                                       "kind": "survey"}, max_attempts=1)
    await w["dispatch"].drain(timeout_s=5)
    [dead] = [r for r in await list_items(w["pool"], w["org"]) if str(r["id"]) == row]
    assert dead["status"] == "dead"
    assert await retry(w["pool"], w["org"], item_id=row) == 1
    await w["dispatch"].drain(timeout_s=5)
    [done] = [r for r in await list_items(w["pool"], w["org"]) if str(r["id"]) == row]
    assert done["status"] == "delivered" and done["attempts"] == 2
    assert sum("RETRY1" in m["body"] for m in t.messages) == 1
