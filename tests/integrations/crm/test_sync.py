"""CRM -> callwise on the real Postgres: HubSpot contact events and the Salesforce delta sync update the
callers callwise knows, unlink deleted ones (their calls stay) and follow merges; OAuth state is signed,
expiring and bound to its provider."""

import base64
import hashlib
import hmac
import time

import pytest

from callwise.calls.caller import upsert_end_user
from callwise.integrations.crm.oauth import OAuthError, sign_state, verify_state
from callwise.integrations.crm.salesforce import SalesforceCRM, SalesforceTokens
from callwise.integrations.crm.sync import apply_hubspot_events, salesforce_delta, valid_hubspot_signature
from callwise.integrations.crm.types import Customer
from tests.vendors.salesforce import FakeSalesforce


async def _caller(pool, org, provider, external_id, **kw):
    sid = await pool.fetchval("insert into sessions (organization_id, room, kind) values ($1, 'r', 'support') "
                              "returning id", org)
    await upsert_end_user(pool, org, Customer(provider, external_id, **kw), session_id=str(sid))
    return sid


async def test_hubspot_events_update_unlink_and_merge(pg_pool, org_id):
    s1 = await _caller(pg_pool, org_id, "hubspot", "101", name="Ada Lovelace", email="ada@old.example")
    s2 = await _caller(pg_pool, org_id, "hubspot", "102", name="Bob")
    s3 = await _caller(pg_pool, org_id, "hubspot", "103", name="Bobby (duplicate)")
    result = await apply_hubspot_events(pg_pool, org_id, [
        {"subscriptionType": "contact.propertyChange", "objectId": 101, "propertyName": "email",
         "propertyValue": "ada@new.example"},
        {"subscriptionType": "contact.propertyChange", "objectId": 101, "propertyName": "lastname",
         "propertyValue": "King"},
        {"subscriptionType": "contact.merge", "objectId": 102, "primaryObjectId": 102, "mergedObjectIds": [102, 103]},
        {"subscriptionType": "contact.deletion", "objectId": 102},
        {"subscriptionType": "contact.propertyChange", "objectId": 999, "propertyName": "email", "propertyValue": "x"},
        {"subscriptionType": "deal.creation", "objectId": 5},
    ])
    assert (result.updated, result.merged, result.unlinked) == (2, 1, 1)
    ada = await pg_pool.fetchrow("select email, full_name from end_users where organization_id = $1 and external_id = '101'",
                                 org_id)
    assert tuple(ada) == ("ada@new.example", "Ada King")
    # the merged duplicate's call moved to 102, then 102 was deleted: both calls stay, unlinked
    rows = await pg_pool.fetch("select id, end_user_id from sessions where id = any($1::uuid[])", [s2, s3])
    assert len(rows) == 2 and all(r["end_user_id"] is None for r in rows)
    assert await pg_pool.fetchval("select end_user_id from sessions where id = $1", s1) is not None


async def test_salesforce_delta_sync_resumes_from_its_cursor(pg_pool, org_id):
    with FakeSalesforce() as sf:
        known = sf.add_contact(Name="Grace Hopper", Email="grace@navy.example", SystemModstamp="2026-03-01T00:00:00.000+0000")
        gone = sf.add_contact(Name="Gone Soon", SystemModstamp="2026-03-02T00:00:00.000+0000")
        sf.add_contact(Name="Never Called", SystemModstamp="2026-03-03T00:00:00.000+0000")
        await _caller(pg_pool, org_id, "salesforce", known["Id"], name="Grace", email="old@example")
        sid = await _caller(pg_pool, org_id, "salesforce", gone["Id"], name="Gone Soon")
        crm = SalesforceCRM(SalesforceTokens(sf.access_token, sf.url), login_url=sf.url)
        first = await salesforce_delta(pg_pool, org_id, crm)
        assert (first.updated, first.ignored, first.unlinked) == (2, 1, 0)
        assert await pg_pool.fetchval("select email from end_users where organization_id = $1 and external_id = $2",
                                      org_id, known["Id"]) == "grace@navy.example"
        gone.update(IsDeleted=True, SystemModstamp="2026-03-05T00:00:00.000+0000")
        second = await salesforce_delta(pg_pool, org_id, crm)
        assert (second.updated, second.unlinked) == (0, 1)
        assert await pg_pool.fetchval("select end_user_id from sessions where id = $1", sid) is None
        assert "SystemModstamp > 2026-03-03T00:00:00.000Z" in sf.queries[-2]
        await crm.aclose()


def _sign(secret, method, uri, body, ts):
    return base64.b64encode(hmac.new(secret.encode(), method.encode() + uri.encode() + body + ts.encode(),
                                      hashlib.sha256).digest()).decode()


def test_hubspot_signature_valid_forged_and_stale():
    now = time.time() * 1000
    ts = str(int(now))
    body = b'[{"eventId":1}]'
    sig = _sign("secret", "POST", "https://cw.example/v1/webhooks/hubspot", body, ts)
    ok = dict(client_secret="secret", method="POST", uri="https://cw.example/v1/webhooks/hubspot", body=body,
              timestamp=ts, signature=sig, now_ms=now)
    assert valid_hubspot_signature(**ok)
    assert not valid_hubspot_signature(**{**ok, "body": b'[{"eventId":2}]'})
    assert not valid_hubspot_signature(**{**ok, "client_secret": "other"})
    assert not valid_hubspot_signature(**{**ok, "now_ms": now + 301_000})
    assert not valid_hubspot_signature(**{**ok, "timestamp": "yesterday"})


def test_oauth_state_is_signed_bound_and_expiring():
    key = b"k" * 32
    state = sign_state(key, organization_id="org-1", provider="hubspot", now=1000.0)
    assert verify_state(key, state, "hubspot", now=1001.0)["org"] == "org-1"
    with pytest.raises(OAuthError, match="not salesforce"):
        verify_state(key, state, "salesforce", now=1001.0)
    with pytest.raises(OAuthError, match="expired"):
        verify_state(key, state, "hubspot", now=1000.0 + 601)
    forged = sign_state(b"x" * 32, organization_id="org-2", provider="hubspot")  # another server's key
    with pytest.raises(OAuthError, match="not signed"):
        verify_state(key, forged, "hubspot")
    tampered = state[:-6] + ("A" if state[-6] != "A" else "B") + state[-5:]
    with pytest.raises(OAuthError, match="not signed"):
        verify_state(key, tampered, "hubspot", now=1001.0)
    with pytest.raises(OAuthError, match="malformed"):
        verify_state(key, "garbage", "hubspot")
