"""SalesforceCRM against a local server in the REST API's wire format."""

from datetime import UTC, datetime

import pytest

from callwise.integrations.crm.salesforce import SalesforceCRM, SalesforceTokens
from callwise.integrations.crm.types import CallLog, CaseRequest, CRMError, Customer
from tests.vendors.salesforce import FakeSalesforce


@pytest.fixture
def sf():
    with FakeSalesforce() as fake:
        yield fake


def _client(fake, **kw):
    saved = []

    async def save(tokens):
        saved.append(tokens)

    client = SalesforceCRM(SalesforceTokens(access_token=fake.access_token, instance_url=fake.url,
                                            refresh_token=fake.refresh_token),
                           login_url=fake.url, client_id="cid", client_secret="cs", on_refresh=save, **kw)
    return client, saved


async def test_finds_a_caller_by_phone_with_account_fields_and_open_cases(sf):
    sf.add_contact(Name="Ada Lovelace", Email="ada@example.com", Phone="(555) 010-0100",  # as a person typed it
                   Account={"Name": "Analytical Engines", "Type": "Enterprise"},
                   Cases={"totalSize": 2, "done": True, "records": [{"Id": "5001"}, {"Id": "5002"}]})
    client, _ = _client(sf)
    customer = await client.find_customer(phone="+15550100100")  # as the SIP trunk gives it
    assert customer is not None
    assert (customer.name, customer.company, customer.plan, customer.open_tickets) == \
        ("Ada Lovelace", "Analytical Engines", "Enterprise", 2)
    assert customer.account_age_days and customer.account_age_days > 300
    search = [r for r in sf.requests if r.path.endswith("/search")][-1]
    assert search.query["q"][0].startswith("FIND {5550100100} IN PHONE FIELDS")


async def test_phone_formats_people_type_find_the_contact_and_other_countries_do_not(sf):
    sf.add_contact(Name="Mobile", MobilePhone="555.010.0177")
    sf.add_contact(Name="Londoner", Phone="+44 20 7946 0958")
    client, _ = _client(sf)
    for typed in ("+15550100177", "(555) 010-0177", "1-555-010-0177"):
        found = await client.find_customer(phone=typed)
        assert found and found.name == "Mobile", typed
    assert await client.find_customer(phone="+1 207 946 0958") is None  # same national digits, another country
    assert await client.find_customer(phone="12") is None


async def test_two_contacts_with_one_number_the_most_recently_modified_wins(sf, caplog):
    sf.add_contact(Name="Old Record", Phone="+1 555 010 0100", LastModifiedDate="2025-01-01T00:00:00.000+0000")
    sf.add_contact(Name="New Record", Phone="555-010-0100", LastModifiedDate="2026-06-01T00:00:00.000+0000")
    client, _ = _client(sf)
    customer = await client.find_customer(phone="+15550100100")
    assert customer and customer.name == "New Record"
    assert "several Salesforce contacts match" in caplog.text


async def test_unknown_caller_is_none(sf):
    client, _ = _client(sf)
    assert await client.find_customer(email="nobody@example.com") is None


async def test_expired_session_refreshes_and_stores_the_rotated_token_first(sf):
    sf.add_contact(Name="Grace", Email="grace@example.com")
    client, saved = _client(sf)
    sf.access_token = "server-side-expired"  # the stored token no longer works
    customer = await client.find_customer(email="grace@example.com")
    assert customer and customer.name == "Grace"
    assert len(saved) == 1 and saved[0].refresh_token == sf.refresh_token != "rt-1"
    assert client.tokens.access_token == sf.access_token


async def test_revoked_refresh_token_is_an_auth_error(sf):
    client, _ = _client(sf)
    sf.access_token, sf.refresh_token = "gone", "also-gone"
    with pytest.raises(CRMError) as err:
        await client.find_customer(email="x@example.com")
    assert err.value.auth and not err.value.retryable


async def test_query_follows_next_records_url(sf):
    sf.page_size = 2
    for i in range(5):
        sf.add_contact(Name=f"C{i}", SystemModstamp=f"2026-02-0{i + 1}T00:00:00.000+0000")
    client, _ = _client(sf)
    sf.contacts[2]["IsDeleted"] = True
    changed, deleted, cursor = await client.changed_since("2026-01-15T00:00:00Z")
    assert [c.name for c in changed] == ["C0", "C1", "C3", "C4"] and deleted == [sf.contacts[2]["Id"]]
    assert cursor == "2026-02-05T00:00:00.000+0000"
    assert (await client.changed_since(cursor))[:2] == ([], [])


async def test_a_bad_sync_cursor_is_refused_not_spliced(sf):
    client, _ = _client(sf)
    with pytest.raises(CRMError, match="bad cursor"):
        await client.changed_since("2026-01-01 OR Name != ''")


async def test_upsert_by_external_id_201_then_200_then_300(sf):
    client, _ = _client(sf)
    first = await client.upsert_contact(Customer("salesforce", "cw-1", name="Ada Lovelace", email="ada@example.com"))
    again = await client.upsert_contact(Customer("salesforce", "cw-1", name="Ada King", email="ada@example.com"))
    assert first == again and sf.contacts[0]["LastName"] == "King"
    sf.add_contact(Callwise_Id__c="cw-dup")
    sf.add_contact(Callwise_Id__c="cw-dup")
    with pytest.raises(CRMError, match="several contacts") as err:
        await client.upsert_contact(Customer("salesforce", "cw-dup", name="X"))
    assert not err.value.retryable


async def test_task_and_case_are_created_once_even_when_retried(sf):
    client, _ = _client(sf)
    call = CallLog(call_id="sess-42", started_at=datetime(2026, 11, 1, tzinfo=UTC), duration_s=95.4,
                   title="Support call", body="x" * 40_000)
    t1 = await client.log_call("003000000000000000", call)
    t2 = await client.log_call("003000000000000000", call)
    assert t1 == t2 and len(sf.tasks) == 1
    task = sf.tasks[0]
    assert (task["WhoId"], task["CallType"], task["CallDurationInSeconds"], task["CallObject"]) == \
        ("003000000000000000", "Inbound", 95, "sess-42")
    assert len(task["Description"]) == 32_000
    c1 = await client.open_case(None, CaseRequest(case_id="CW-1042", subject="Refund dispute", description="d"))
    c2 = await client.open_case(None, CaseRequest(case_id="CW-1042", subject="Refund dispute", description="d"))
    assert c1 == c2 and len(sf.cases) == 1 and sf.cases[0]["Subject"] == "[CW-1042] Refund dispute"


async def test_request_limit_exceeded_pauses_the_org(sf):
    client, _ = _client(sf)
    sf.enqueue(sf._err(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
    with pytest.raises(CRMError, match="API limit"):
        await client.find_customer(email="a@example.com")
    calls = len(sf.requests)
    with pytest.raises(CRMError, match="not calling"):
        await client.find_customer(email="a@example.com")
    assert len(sf.requests) == calls  # no request while paused


async def test_error_array_message_reaches_the_error(sf):
    client, _ = _client(sf)
    with pytest.raises(CRMError, match="REQUIRED_FIELD_MISSING"):
        await client._request("POST", "sobjects/Case", json={})


async def test_sforce_limit_info_is_read(sf):
    client, _ = _client(sf)
    await client.find_customer(email="a@example.com")
    assert client.api_usage and client.api_usage[1] == 15000
