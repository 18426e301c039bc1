"""HubSpotCRM through the official hubspot-api-client against a local server in HubSpot's wire format."""

import time
from datetime import UTC, datetime

import pytest

from callwise.integrations.crm.hubspot import HubSpotCRM, HubSpotTokens
from callwise.integrations.crm.types import CallLog, CaseRequest, CRMError, Customer
from tests.vendors._http import Reply
from tests.vendors.hubspot import FakeHubSpot


@pytest.fixture
def hs():
    with FakeHubSpot() as fake:
        yield fake


def _client(fake, tokens=None, **kw):
    saved = []

    async def save(t):
        saved.append(t)

    client = HubSpotCRM(tokens or HubSpotTokens(access_token=fake.access_token), base_url=fake.url,
                        client_id="cid", client_secret=fake.client_secret, on_refresh=save, **kw)
    return client, saved


async def test_finds_a_caller_by_phone_with_mapped_fields(hs):
    hs.add("contacts", {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com",
                        "phone": "(555) 010-0100", "company": "Analytical Engines", "total_revenue": "12500.5",
                        "createdate": "2024-01-15T10:00:00.000Z"})  # as a person typed it
    client, _ = _client(hs)
    customer = await client.find_customer(phone="+15550100100")  # as the SIP trunk gives it
    assert customer is not None
    assert (customer.name, customer.company, customer.lifetime_value) == ("Ada Lovelace", "Analytical Engines", 12500.5)
    assert customer.account_age_days and customer.account_age_days > 300
    search = hs.requests[-1].json
    assert search["filterGroups"][0]["filters"][0] == {
        "propertyName": "hs_searchable_calculated_phone_number", "operator": "EQ", "value": "5550100100"}


async def test_phone_formats_people_type_all_find_the_contact_and_other_countries_do_not(hs):
    hs.add("contacts", {"firstname": "Mobile", "mobilephone": "555.010.0177"})
    hs.add("contacts", {"firstname": "Londoner", "phone": "+44 20 7946 0958"})
    client, _ = _client(hs)
    for typed in ("+15550100177", "(555) 010-0177", "1-555-010-0177"):
        found = await client.find_customer(phone=typed)
        assert found and found.name == "Mobile", typed
    assert (await client.find_customer(phone="+44 20 7946 0958")).name == "Londoner"
    assert await client.find_customer(phone="+1 207 946 0958") is None  # same national digits, another country
    assert await client.find_customer(phone="not a number") is None


async def test_two_contacts_with_one_number_the_most_recent_wins(hs, caplog):
    hs.add("contacts", {"firstname": "Old", "phone": "+1 555 010 0100"}, updated="2025-01-01T00:00:00.000Z")
    hs.add("contacts", {"firstname": "New", "phone": "555-010-0100"}, updated="2026-06-01T00:00:00.000Z")
    client, _ = _client(hs)
    customer = await client.find_customer(phone="+15550100100")
    assert customer and customer.name == "New"
    assert "several HubSpot contacts match" in caplog.text


async def test_batch_upsert_by_email_and_partial_failure(hs):
    client, _ = _client(hs)
    cid = await client.upsert_contact(Customer("hubspot", "x", name="Ada Lovelace", email="ada@example.com"))
    assert await client.upsert_contact(Customer("hubspot", "x", name="Ada King", email="ada@example.com")) == cid
    assert hs.objects["contacts"][0]["properties"]["lastname"] == "King"
    hs.enqueue(Reply(207, {"status": "COMPLETE", "results": [], "numErrors": 1, "startedAt": "2026-11-01T00:00:00Z",
                           "completedAt": "2026-11-01T00:00:00Z",
                           "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "bad email",
                                       "context": {}}]}))
    with pytest.raises(CRMError, match="bad email"):
        await client.upsert_contact(Customer("hubspot", "x", name="B", email="b@example.com"))


async def test_call_engagement_associated_to_the_contact_once(hs):
    client, _ = _client(hs)
    call = CallLog(call_id="sess-42", started_at=datetime(2026, 11, 1, 9, 30, tzinfo=UTC), duration_s=95.4,
                   title="Support call", body="summary")
    first = await client.log_call("1001", call)
    assert await client.log_call("1001", call) == first
    assert len(hs.objects["calls"]) == 1
    obj = hs.objects["calls"][0]
    assert obj["properties"]["hs_call_duration"] == "95400"
    assert obj["properties"]["hs_timestamp"] == "2026-11-01T09:30:00Z"
    assert obj["associations"][0]["to"]["id"] == "1001"
    assert obj["associations"][0]["types"][0]["associationTypeId"] == 194


async def test_ticket_for_an_escalation(hs):
    client, _ = _client(hs)
    tid = await client.open_case("1001", CaseRequest(case_id="CW-1042", subject="Refund", description="d",
                                                     priority="HIGH"))
    assert await client.open_case("1001", CaseRequest(case_id="CW-1042", subject="Refund", description="d")) == tid
    ticket = hs.objects["tickets"][0]
    assert ticket["properties"]["hs_ticket_priority"] == "HIGH"
    assert ticket["associations"][0]["types"][0]["associationTypeId"] == 16


async def test_secondly_429_is_retryable_with_the_interval_daily_pauses(hs):
    client, _ = _client(hs)
    hs.enqueue(Reply(429, {"status": "error", "message": "You have reached your secondly limit.",
                           "errorType": "RATE_LIMIT", "correlationId": "c", "policyName": "SECONDLY"},
                     {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}))
    with pytest.raises(CRMError) as err:
        await client.find_customer(email="a@example.com")
    assert err.value.retryable and err.value.retry_after == 10.0
    hs.enqueue(Reply(429, {"status": "error", "message": "daily", "errorType": "RATE_LIMIT", "policyName": "DAILY"}))
    with pytest.raises(CRMError, match="daily"):
        await client.find_customer(email="a@example.com")
    before = len(hs.requests)
    with pytest.raises(CRMError, match="not calling"):
        await client.find_customer(email="a@example.com")
    assert len(hs.requests) == before


async def test_token_refreshed_ahead_of_expiry_and_rotation_saved(hs):
    client, saved = _client(hs, HubSpotTokens(access_token="old", refresh_token=hs.refresh_token,
                                              expires_at=time.time() + 60))
    assert await client.find_customer(email="nobody@example.com") is None
    assert len(saved) == 1 and saved[0].access_token == hs.access_token
    assert saved[0].expires_at and saved[0].expires_at > time.time() + 1000
    assert hs.requests[0].path == "/oauth/v1/token"


async def test_revoked_token_is_an_auth_error(hs):
    client, _ = _client(hs, HubSpotTokens(access_token="revoked", refresh_token="revoked-too"))
    with pytest.raises(CRMError) as err:
        await client.find_customer(email="a@example.com")
    assert err.value.auth


async def test_server_down_is_a_retryable_error():
    client = HubSpotCRM(HubSpotTokens(access_token="t"), base_url="http://127.0.0.1:9", timeout_s=3)
    with pytest.raises(CRMError) as err:
        await client.find_customer(email="a@example.com")
    assert err.value.retryable
