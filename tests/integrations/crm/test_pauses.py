"""A rate-limit pause learned by one call holds for the next: clients are built per call (``crm_for``), so
the pause lives in Postgres (``vendor_pauses``), not on the client object."""

from __future__ import annotations

from cryptography.fernet import Fernet

from callwise.integrations.credentials import CredentialStore
from callwise.integrations.crm.connect import CRMConfig, crm_for
from callwise.integrations.crm.types import CRMError
from callwise.integrations.pauses import VendorPauses
from tests.vendors._http import Reply
from tests.vendors.hubspot import FakeHubSpot
from tests.vendors.salesforce import FakeSalesforce


async def _expect_paused(crm, **find):  # type: ignore[no-untyped-def]
    try:
        await crm.find_customer(**find)
    except CRMError as exc:
        return exc
    raise AssertionError("the call went through")


async def test_hubspot_daily_limit_pauses_the_org_for_the_next_call(pg_pool, org_id):
    creds = CredentialStore(pg_pool, Fernet(Fernet.generate_key()))
    with FakeHubSpot() as hs:
        await creds.set(org_id, "hubspot", secrets={"access_token": hs.access_token})
        cfg = CRMConfig(hubspot_base_url=hs.url)
        hs.enqueue(Reply(429, {"status": "error", "message": "daily", "errorType": "RATE_LIMIT", "policyName": "DAILY"}))
        first = await crm_for(creds, org_id, cfg)
        err = await _expect_paused(first, email="ada@example.com")
        assert err.status == 429
        seen = len(hs.requests)
        second = await crm_for(creds, org_id, cfg)  # the next call: a new client, maybe another process
        err = await _expect_paused(second, email="ada@example.com")
        assert len(hs.requests) == seen  # it did not call HubSpot
        assert err.retry_after and 3500 < err.retry_after <= 3600
    left = await VendorPauses(pg_pool).left(org_id, "hubspot")
    assert left and 3500 < left <= 3600


async def test_salesforce_request_limit_pauses_the_org_for_the_next_call(pg_pool, org_id):
    creds = CredentialStore(pg_pool, Fernet(Fernet.generate_key()))
    with FakeSalesforce() as sf:
        await creds.set(org_id, "salesforce", secrets={"access_token": sf.access_token, "refresh_token": sf.refresh_token},
                        fields={"instance_url": sf.url})
        cfg = CRMConfig(salesforce_login_url=sf.url)
        sf.enqueue(sf._err(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
        await _expect_paused(await crm_for(creds, org_id, cfg), email="ada@example.com")
        seen = len(sf.requests)
        err = await _expect_paused(await crm_for(creds, org_id, cfg), email="ada@example.com")
        assert len(sf.requests) == seen and err.retry_after and err.retry_after > 800
    # the pause is a row every process reads
    assert await VendorPauses(pg_pool).left(org_id, "salesforce")


async def test_the_caller_cache_is_shared_by_processes_and_expires(pg_pool, org_id):
    """Each call is its own process: a caller looked up by one call is not looked up again by the next."""
    from callwise.calls.caller import CallerId, CallerService, PgCustomerCache
    from callwise.integrations.crm.hubspot import HubSpotCRM, HubSpotTokens

    with FakeHubSpot() as hs:
        hs.add("contacts", {"firstname": "Ada", "lastname": "Lovelace", "phone": "(555) 010-0100"})

        async def factory(org):  # type: ignore[no-untyped-def]
            return HubSpotCRM(HubSpotTokens(access_token=hs.access_token), base_url=hs.url, timeout_s=3)

        def a_call(ttl_s: float = 600.0) -> CallerService:  # a new service and cache object per call/process
            return CallerService(pg_pool, factory, budget_s=2, timeout_s=3, cache=PgCustomerCache(pg_pool, ttl_s))

        first = a_call().start(org_id, None, CallerId.parse("+15550100100"))
        assert (await first.task).name == "Ada Lovelace" and not first.cache_hit
        stored = await pg_pool.fetchval("select phone from end_users where organization_id = $1", org_id)
        assert stored == "+15550100100"  # the CRM's "(555) 010-0100", stored as E.164
        searches = len(hs.requests)
        second = a_call().start(org_id, None, CallerId.parse("(555) 010-0100"))  # typed differently, same caller
        assert (await second.task).name == "Ada Lovelace" and second.cache_hit and len(hs.requests) == searches
        unknown = a_call().start(org_id, None, CallerId.parse("+15550100199"))
        assert await unknown.task is None
        again = a_call().start(org_id, None, CallerId.parse("+15550100199"))
        assert await again.task is None and again.cache_hit  # a miss is cached too
        await pg_pool.execute("update crm_cache set fetched_at = now() - interval '11 minutes' where organization_id = $1",
                              org_id)
        stale = a_call().start(org_id, None, CallerId.parse("+15550100100"))
        assert (await stale.task).name == "Ada Lovelace" and not stale.cache_hit  # expired: looked up again
