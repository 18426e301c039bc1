"""The caller known before the first answer (CRM lookup within a budget, cached, end_users linked) and
the call written back through the outbox, on the real turn stages, Postgres and a local HubSpot."""

from __future__ import annotations

import json

import pytest

from callwise.calls import SupportCall
from callwise.calls.caller import CallerId, CallerService, CustomerCache
from callwise.integrations.credentials import CredentialStore, load_cipher
from callwise.integrations.crm.actions import build_crm_handlers
from callwise.integrations.crm.connect import CRMConfig
from callwise.integrations.crm.hubspot import HubSpotCRM, HubSpotTokens
from callwise.integrations.outbox import Dispatcher
from callwise.routing.providers.openai import OpenAIProvider
from callwise.routing.router import CascadingRouter, Tier
from tests.vendors._http import Reply
from tests.vendors.hubspot import FakeHubSpot
from tests.vendors.openai import FakeOpenAI


@pytest.mark.parametrize(("raw", "expected"), [
    ("+1 (555) 010-0100", CallerId(phone="+15550100100")),
    ("Ada@Example.com", CallerId(email="ada@example.com")),
    ("0031-crm-id", CallerId(external_id="0031-crm-id")),
])
def test_caller_parses_phone_email_or_id(raw, expected):
    assert CallerId.parse(raw) == expected


def test_sip_number_wins_over_app_metadata():
    assert CallerId.from_participant({"sip.phoneNumber": "+15550100"}, '{"email": "a@b.co"}') == CallerId(phone="+15550100")
    assert CallerId.from_participant({}, '{"email": "A@B.co"}') == CallerId(email="a@b.co")
    assert CallerId.from_participant({}, "not json") is None
    assert CallerId.from_participant(None, '["a list"]') is None


@pytest.fixture
def hubspot():
    with FakeHubSpot() as fake:
        fake.add("contacts", {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com",
                              "phone": "+15550100", "company": "Analytical Engines", "total_revenue": "12500",
                              "createdate": "2024-01-15T10:00:00.000Z"})
        yield fake


def _service(pool, fake, *, budget_s=2.0, cache=None):
    async def factory(org):
        return HubSpotCRM(HubSpotTokens(access_token=fake.access_token), base_url=fake.url, timeout_s=3)
    return CallerService(pool, factory, budget_s=budget_s, timeout_s=3, cache=cache or CustomerCache())


async def test_known_caller_is_upserted_linked_and_cached(pg_pool, org_id, hubspot):
    sid = await pg_pool.fetchval("insert into sessions (organization_id, room, kind) values ($1, 'r', 'support') "
                                 "returning id", org_id)
    service = _service(pg_pool, hubspot)
    lookup = service.start(org_id, str(sid), CallerId.parse("+15550100"))
    customer = await lookup.within_budget()
    await lookup.task
    assert customer and customer.name == "Ada Lovelace" and customer.lifetime_value == 12500
    row = await pg_pool.fetchrow("select e.provider, e.external_id, e.full_name, e.company from sessions s "
                                 "join end_users e on e.id = s.end_user_id where s.id = $1", sid)
    assert tuple(row) == ("hubspot", customer.external_id, "Ada Lovelace", "Analytical Engines")
    searches = len(hubspot.requests)
    again = service.start(org_id, None, CallerId.parse("+15550100"))
    await again.task
    assert again.cache_hit and again.customer == customer and len(hubspot.requests) == searches


async def test_slow_crm_misses_the_budget_and_lands_for_the_next_turn(pg_pool, org_id, hubspot):
    hubspot.enqueue(lambda req: Reply(200, hubspot.handle(req).body, delay_s=0.6))
    lookup = _service(pg_pool, hubspot, budget_s=0.1).start(org_id, None, CallerId.parse("ada@example.com"))
    assert await lookup.within_budget() is None  # the first answer does not wait past the budget
    await lookup.task
    assert (await lookup.within_budget()).name == "Ada Lovelace"


async def test_crm_down_or_unknown_is_an_unknown_caller(pg_pool, org_id, hubspot):
    lookup = _service(pg_pool, hubspot).start(org_id, None, CallerId.parse("nobody@example.com"))
    assert await lookup.task is None and lookup.error is None
    hubspot.stop()
    down = _service(pg_pool, hubspot).start(org_id, None, CallerId.parse("+15550100"))
    assert await down.task is None and down.error
    assert down.as_dict()["known"] is False


async def test_support_call_puts_the_customer_in_the_prompt_and_writes_the_call_back(
        pg_pool, kb_org, knowledge, support_deps, hubspot, tmp_path):
    with FakeOpenAI("You can change your plan under Settings, Billing.") as llm:
        router = CascadingRouter([Tier("tier1", OpenAIProvider("gpt-4o-mini", api_key="k", base_url=llm.base_url))])
        support_deps.router = router
        support_deps.callers = _service(pg_pool, hubspot)
        call = await SupportCall.start(support_deps, organization_id=kb_org, room="crm-room", modality="text",
                                       caller=CallerId.parse("+15550100"))
        out = await call.run_turn("how do I change my plan?")
        await call.end()
        await router.aclose()
    prompt = str(llm.requests[-1].json["messages"])
    assert "name: Ada Lovelace" in prompt and "lifetime_value: $12,500" in prompt and "company: Analytical Engines" in prompt
    assert out.answer
    item = await pg_pool.fetchrow("select id, action, payload from outbox where organization_id = $1 and session_id = $2",
                                  kb_org, call.session_id)
    assert item["action"] == "crm.log_call"

    # the dispatcher delivers it with the org's stored credentials: one engagement, associated to the contact
    creds = CredentialStore(pg_pool, load_cipher(None, tmp_path))
    await creds.set(kb_org, "hubspot", secrets={"access_token": hubspot.access_token})
    handlers = build_crm_handlers(creds, CRMConfig(hubspot_base_url=hubspot.url))
    dispatcher = Dispatcher(pg_pool, handlers, organization_id=kb_org)
    stats = await dispatcher.deliver_now([str(item["id"])])
    assert stats == {str(item["id"]): True}
    [engagement] = hubspot.objects["calls"]
    assert engagement["associations"][0]["to"]["id"] == hubspot.objects["contacts"][0]["id"]
    assert "how do I change my plan?" in engagement["properties"]["hs_call_body"]
    audit = await pg_pool.fetchval("select count(*) from audit_log where organization_id = $1 and action = 'crm.log_call'",
                                   kb_org)
    assert audit == 1


async def test_escalation_opens_a_ticket_in_the_crm_when_it_is_the_ticket_system(
        pg_pool, kb_org, support_deps, hubspot, tmp_path):
    from callwise.wiring.integrations import credential_store, handoff_escalator
    from callwise.wiring.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path, outbox_dispatcher=False)
    creds = credential_store(settings, pg_pool)
    await creds.set(kb_org, "hubspot", secrets={"access_token": hubspot.access_token})
    support_deps.escalator = handoff_escalator(settings, pg_pool)
    support_deps.callers = _service(pg_pool, hubspot)
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="crm-esc", modality="text",
                                   caller=CallerId.parse("ada@example.com"))
    await call.ctx.caller.task
    out = await call.run_turn("I want to talk to a real person right now")
    await call.end()
    assert out.escalated
    row = await pg_pool.fetchrow("select id, payload from outbox where organization_id = $1 and session_id = $2 "
                                 "and action = 'crm.open_case'", kb_org, call.session_id)
    payload = json.loads(row["payload"])
    assert payload["customer_id"] == hubspot.objects["contacts"][0]["id"]
    dispatcher = Dispatcher(pg_pool, build_crm_handlers(creds, CRMConfig(hubspot_base_url=hubspot.url)),
                            organization_id=kb_org)
    assert (await dispatcher.deliver_now([str(row["id"])])) == {str(row["id"]): True}
    [ticket] = hubspot.objects["tickets"]
    assert ticket["properties"]["subject"].startswith(f"[{payload['case']['case_id']}]")
    assert ticket["associations"][0]["to"]["id"] == payload["customer_id"]
