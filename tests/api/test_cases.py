"""The case desk on the HTTP API: token-protected, list with transcript, claim with a join link, resolve."""

from __future__ import annotations

import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callwise.api.app import ApiServices, create_app
from callwise.calls.store import ConversationStore, TurnRecord
from callwise.handoff.cases import CaseDesk, JoinLinks

AUTH = {"Authorization": "Bearer case-token"}


@pytest.fixture
async def desk_api(pg_pool):
    slug = "cases-" + uuid.uuid4().hex[:8]
    org = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug))
    app = create_app(ApiServices(pg_pool, None, None, None, "case-token",
                                 join_links=JoinLinks(url="ws://127.0.0.1:7880", api_key="devkey", api_secret="k" * 32)))
    client = TestClient(TestServer(app))
    await client.start_server()
    store = ConversationStore(pg_pool, org)
    session = await store.start_session(room="call-7", kind="support")
    await store.add_turn(session, TurnRecord(speaker="customer", role="user", text="I need to speak to a manager"))
    async with pg_pool.acquire() as conn, conn.transaction():
        case = await CaseDesk(pg_pool, org).open(conn, session_id=session, reason="explicit_request", handoff="live",
                                                 details={"rule": "asked for a human", "matched": ["speak to a manager"]},
                                                 room="call-7")
    try:
        yield client, slug, case
    finally:
        await client.close()


async def test_cases_need_the_token(desk_api):
    client, slug, _ = desk_api
    assert (await client.get(f"/v1/orgs/{slug}/escalations")).status == 401
    assert (await client.post(f"/v1/orgs/{slug}/escalations/CW-1001/claim", json={"agent": "x"})).status == 401


async def test_list_claim_resolve_over_http(desk_api):
    client, slug, case = desk_api
    res = await client.get(f"/v1/orgs/{slug}/escalations?status=open", headers=AUTH)
    body = await res.json()
    assert res.status == 200 and [c["case"] for c in body["cases"]] == [case.label]
    assert body["cases"][0]["transcript"][0]["text"] == "I need to speak to a manager"
    res = await client.post(f"/v1/orgs/{slug}/escalations/{case.label}/claim", json={"agent": "alice"}, headers=AUTH)
    claimed = await res.json()
    assert res.status == 200 and claimed["status"] == "claimed" and "token=" in claimed["join_link"]
    res = await client.post(f"/v1/orgs/{slug}/escalations/{case.label}/claim", json={"agent": "bob"}, headers=AUTH)
    assert res.status == 409 and "alice" in (await res.json())["error"]
    res = await client.post(f"/v1/orgs/{slug}/escalations/{case.number}/resolve", json={"agent": "alice"}, headers=AUTH)
    assert res.status == 400 and "notes" in (await res.json())["error"]
    res = await client.post(f"/v1/orgs/{slug}/escalations/{case.id}/resolve",
                            json={"agent": "alice", "notes": "called back, fixed"}, headers=AUTH)
    assert res.status == 200 and (await res.json())["status"] == "resolved"
    res = await client.get(f"/v1/orgs/{slug}/escalations/CW-999999", headers=AUTH)
    assert res.status == 404
    assert (await client.get(f"/v1/orgs/{slug}/escalations?limit=abc", headers=AUTH)).status == 400
    assert (await client.get("/v1/orgs/no-such-org/escalations", headers=AUTH)).status == 404
    res = await client.post(f"/v1/orgs/{slug}/escalations/{case.label}/claim", data="{nope", headers=AUTH)
    assert res.status == 400
    page = await client.get("/cases", headers=AUTH)
    assert page.status == 200 and "Cases" in await page.text()
