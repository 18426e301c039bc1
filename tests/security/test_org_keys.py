"""Organizations as a security boundary on the HTTP API: per-org keys with roles, the operator's token,
join links for the claiming agent only, /cases of the key's org only, audit rows for key changes."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callwise.api.app import ApiServices, create_app
from callwise.api.auth import KeyStore
from callwise.calls.store import ConversationStore, TurnRecord
from callwise.handoff.cases import CaseDesk, JoinLinks

OPERATOR = "operator-token-" + "z" * 16


async def _org_with_case(pool, room: str) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    slug = "keys-" + uuid.uuid4().hex[:8]
    org = str(await pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug))
    store = ConversationStore(pool, org)
    session = await store.start_session(room=room, kind="support")
    await store.add_turn(session, TurnRecord(speaker="customer", role="user", text=f"help me {slug}"))
    async with pool.acquire() as conn, conn.transaction():
        case = await CaseDesk(pool, org).open(conn, session_id=session, reason="explicit_request", handoff="live",
                                              details={"rule": "asked for a human", "transcript": f"help me {slug}"},
                                              room=room)
    return org, slug, case.label


@pytest.fixture
async def two_orgs(pg_pool):
    a, a_slug, a_case = await _org_with_case(pg_pool, "room-a")
    b, b_slug, b_case = await _org_with_case(pg_pool, "room-b")
    app = create_app(ApiServices(pg_pool, None, None, None, OPERATOR,
                                 join_links=JoinLinks(url="ws://127.0.0.1:7880", api_key="devkey", api_secret="k" * 32)))
    client = TestClient(TestServer(app))
    await client.start_server()
    keys = KeyStore(pg_pool)
    made = {}
    for role, name in (("viewer", ""), ("agent", "alice"), ("admin", "")):
        made[role], _ = await keys.create(a, role, name=name, actor="test")
    try:
        yield {"client": client, "a": (a, a_slug, a_case), "b": (b, b_slug, b_case), "keys": made, "store": keys,
               "pool": pg_pool}
    finally:
        await client.close()


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_opens_its_own_org_only(two_orgs):
    c, (_, a, _), (_, b, b_case) = two_orgs["client"], two_orgs["a"], two_orgs["b"]
    viewer = two_orgs["keys"]["viewer"]
    res = await c.get(f"/v1/orgs/{a}/escalations", headers=_h(viewer))
    assert res.status == 200 and len((await res.json())["cases"]) == 1
    for path in (f"/v1/orgs/{b}/escalations", f"/v1/orgs/{b}/escalations/{b_case}", f"/v1/orgs/{b}/costs"):
        res = await c.get(path, headers=_h(viewer))
        assert res.status == 404, path  # as if B did not exist
    admin = two_orgs["keys"]["admin"]
    assert (await c.get(f"/v1/orgs/{b}/escalations", headers=_h(admin))).status == 404
    # the operator's token opens every org
    assert (await c.get(f"/v1/orgs/{b}/escalations", headers=_h(OPERATOR))).status == 200
    # a made-up key, a key with a right prefix and a wrong secret: 401
    assert (await c.get(f"/v1/orgs/{a}/escalations", headers=_h("cw_0000000000_nope"))).status == 401
    assert (await c.get(f"/v1/orgs/{a}/escalations", headers=_h(viewer[:-3] + "xyz"))).status == 401


async def test_roles_viewer_reads_agent_claims_as_itself(two_orgs):
    c, (_, a, case) = two_orgs["client"], two_orgs["a"]
    viewer, agent = two_orgs["keys"]["viewer"], two_orgs["keys"]["agent"]
    res = await c.post(f"/v1/orgs/{a}/escalations/{case}/claim", json={"agent": "alice"}, headers=_h(viewer))
    assert res.status == 403 and "agent role" in (await res.json())["error"]
    res = await c.post(f"/v1/orgs/{a}/escalations/{case}/claim", json={"agent": "mallory"}, headers=_h(agent))
    assert res.status == 403 and "acts as 'alice'" in (await res.json())["error"]
    res = await c.post(f"/v1/orgs/{a}/escalations/{case}/claim", json={}, headers=_h(agent))
    body = await res.json()
    assert res.status == 200 and body["assigned_to"] == "alice" and "token=" in body["join_link"]
    # the join link is for the claimer: a viewer naming alice gets none, the operator naming bob gets none
    res = await c.get(f"/v1/orgs/{a}/escalations/{case}?agent=alice", headers=_h(viewer))
    assert "join_link" not in await res.json()
    res = await c.get(f"/v1/orgs/{a}/escalations/{case}?agent=bob", headers=_h(OPERATOR))
    assert "join_link" not in await res.json()
    res = await c.get(f"/v1/orgs/{a}/escalations/{case}", headers=_h(agent))
    assert "token=" in (await res.json())["join_link"]


async def test_cases_page_shows_the_keys_org_only(two_orgs):
    c, (_, a, _), (_, b, _) = two_orgs["client"], two_orgs["a"], two_orgs["b"]
    page = await (await c.get("/cases", headers=_h(two_orgs["keys"]["viewer"]))).text()
    assert f"help me {a}" in page and b not in page
    everything = await (await c.get("/cases", headers=_h(OPERATOR))).text()
    assert a in everything and b in everything
    # the operator's pages without an org are not for an org key
    assert (await c.get("/", headers=_h(two_orgs["keys"]["admin"]))).status == 403


async def test_keys_are_stored_hashed_revoked_at_once_and_audited(two_orgs):
    pool, store = two_orgs["pool"], two_orgs["store"]
    org, slug, _ = two_orgs["a"]
    viewer = two_orgs["keys"]["viewer"]
    rows = await pool.fetch("select prefix, key_hash from api_keys where organization_id = $1", org)
    assert len(rows) == 3 and all(viewer not in (r["key_hash"], r["prefix"]) for r in rows)
    assert hashlib.sha256(viewer.encode()).hexdigest() in {r["key_hash"] for r in rows}
    prefix = viewer.split("_")[1]
    await store.revoke(org, prefix, actor="cli:ops")
    assert (await two_orgs["client"].get(f"/v1/orgs/{slug}/escalations", headers=_h(viewer))).status == 401
    audit = await pool.fetch("select actor, action, details from audit_log where organization_id = $1 "
                             "and target_type = 'api_key' order by id", org)
    assert [r["action"] for r in audit] == ["api_key.create"] * 3 + ["api_key.revoke"]
    assert audit[-1]["actor"] == "cli:ops" and viewer not in "".join(str(r["details"]) for r in audit)
