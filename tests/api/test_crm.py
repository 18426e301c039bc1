"""The CRM routes of `callwise serve` over real parts: HubSpot's signed contact webhook and the OAuth
connect callback (code exchanged with a local HubSpot, tokens stored encrypted)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callwise.api.app import create_app
from callwise.calls.caller import upsert_end_user
from callwise.integrations.crm.oauth import sign_state
from callwise.integrations.crm.types import Customer
from callwise.wiring.api import api_services
from callwise.wiring.crm import state_key
from callwise.wiring.integrations import credential_store
from callwise.wiring.settings import Settings
from tests.vendors.hubspot import FakeHubSpot

PUBLIC = "https://callwise.example"


@pytest.fixture
async def env(pg_pool, tmp_path):
    with FakeHubSpot() as hs:
        settings = Settings(_env_file=None, data_dir=tmp_path, api_token="tok", public_url=PUBLIC,
                            hubspot_base_url=hs.url, hubspot_client_id="cid", hubspot_client_secret=hs.client_secret)
        slug = "crm-" + uuid.uuid4().hex[:8]
        org = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug))
        creds = credential_store(settings, pg_pool)
        await creds.set(org, "hubspot", secrets={"access_token": "at", "client_secret": "app-secret"},
                        fields={"portal_id": "62515"})
        app = create_app(api_services(settings, pg_pool))
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield client, settings, org, hs
        finally:
            await client.close()


def _signed(body: bytes, secret: str = "app-secret", ts: float | None = None) -> dict[str, str]:
    stamp = str(int((ts or time.time()) * 1000))
    msg = b"POST" + f"{PUBLIC}/v1/webhooks/hubspot".encode() + body + stamp.encode()
    return {"X-HubSpot-Signature-v3": base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode(),
            "X-HubSpot-Request-Timestamp": stamp, "Content-Type": "application/json"}


async def test_signed_webhook_updates_a_known_caller_once(env, pg_pool):
    client, _, org, _ = env
    await upsert_end_user(pg_pool, org, Customer("hubspot", "501", email="old@example.com"), session_id=None)
    body = json.dumps([{"eventId": 77, "portalId": 62515, "subscriptionType": "contact.propertyChange",
                        "objectId": 501, "propertyName": "email", "propertyValue": "new@example.com"}]).encode()
    res = await client.post("/v1/webhooks/hubspot", data=body, headers=_signed(body))
    assert res.status == 200 and (await res.json())["updated"] == 1
    assert await pg_pool.fetchval("select email from end_users where organization_id = $1 and external_id = '501'",
                                  org) == "new@example.com"
    replay = await client.post("/v1/webhooks/hubspot", data=body, headers=_signed(body))
    assert (await replay.json())["ignored"] == 1


@pytest.mark.parametrize("case", ["forged", "stale", "unknown portal", "not json", "not a list"])
async def test_bad_webhooks_are_refused_and_store_nothing(env, pg_pool, case):
    client, _, org, _ = env
    await upsert_end_user(pg_pool, org, Customer("hubspot", "601", email="keep@example.com"), session_id=None)
    events = [{"eventId": 1, "portalId": 62515, "subscriptionType": "contact.deletion", "objectId": 601}]
    body = json.dumps(events).encode()
    headers = _signed(body)
    if case == "forged":
        headers = _signed(body, secret="guess")
    elif case == "stale":
        headers = _signed(body, ts=time.time() - 600)
    elif case == "unknown portal":
        body = json.dumps([{**events[0], "portalId": 1}]).encode()
        headers = _signed(body)
    elif case == "not json":
        body = b"{not json"
    elif case == "not a list":
        body = b'{"eventId": 1}'
    res = await client.post("/v1/webhooks/hubspot", data=body, headers=headers)
    assert res.status in (400, 403)
    assert await pg_pool.fetchval("select unlinked_at from end_users where organization_id = $1 and external_id = '601'",
                                  org) is None


async def test_oauth_callback_stores_tokens_once(env, pg_pool):
    client, settings, org, hs = env
    state = sign_state(state_key(settings), organization_id=org, provider="hubspot")
    res = await client.get("/v1/oauth/hubspot/callback", params={"code": "good-code", "state": state})
    assert res.status == 200, await res.text()
    cred = await credential_store(settings, pg_pool).get(org, "hubspot")
    assert cred.secrets["access_token"] == hs.access_token and cred.secrets["refresh_token"] == hs.refresh_token
    assert cred.expires_at is not None
    again = await client.get("/v1/oauth/hubspot/callback", params={"code": "good-code", "state": state})
    assert again.status == 403 and "already used" in (await again.json())["error"]
    tampered = await client.get("/v1/oauth/hubspot/callback", params={"code": "good-code", "state": state + "x"})
    assert tampered.status == 403


async def test_oauth_callback_with_a_refused_code(env):
    client, settings, org, _ = env
    state = sign_state(state_key(settings), organization_id=org, provider="hubspot")
    res = await client.get("/v1/oauth/hubspot/callback", params={"code": "bad-code", "state": state})
    assert res.status == 502 and "refused the code" in (await res.json())["error"]


async def test_a_webhook_that_fails_to_apply_leaves_its_events_for_hubspots_retry(env, pg_pool):
    """The replay keys commit with what the events change: a batch that cannot be stored (a NUL byte Postgres
    refuses) records no key, so HubSpot's retry of the good event is applied, not dropped as a replay."""
    client, settings, org, _ = env
    portal = 70000 + uuid.uuid4().int % 10000  # this test's own portal: the session's other orgs share 62515
    await credential_store(settings, pg_pool).set(org, "hubspot", secrets={"access_token": "at", "client_secret": "app-secret"},
                                                  fields={"portal_id": str(portal)})
    await upsert_end_user(pg_pool, org, Customer("hubspot", "701", email="old@example.com"), session_id=None)
    good = {"eventId": 9101, "portalId": portal, "subscriptionType": "contact.propertyChange", "objectId": 701,
            "propertyName": "email", "propertyValue": "new@example.com"}
    bad = {**good, "eventId": 9102, "propertyName": "phone", "propertyValue": "555\u00000100"}
    body = json.dumps([good, bad]).encode()
    res = await client.post("/v1/webhooks/hubspot", data=body, headers=_signed(body))
    assert res.status == 500
    assert await pg_pool.fetchval("select count(*) from webhook_events where provider = 'hubspot' "
                                  "and event_key in ('9101', '9102')") == 0
    retry = json.dumps([good]).encode()
    res = await client.post("/v1/webhooks/hubspot", data=retry, headers=_signed(retry))
    assert res.status == 200 and (await res.json())["updated"] == 1
    assert await pg_pool.fetchval("select email from end_users where organization_id = $1 and external_id = '701'",
                                  org) == "new@example.com"
