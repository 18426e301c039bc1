"""The case desk with nothing configured: numbers per org, transcript, claim/resolve rules, isolation."""

from __future__ import annotations

import pytest

from callwise.calls.store import ConversationStore, TurnRecord
from callwise.handoff.cases import CaseDesk, CaseError, JoinLinks


async def _call_with_case(pool, org_id: str, desk: CaseDesk, *, room: str = "room-1", handoff: str = "callback",
                          status: str = "callback", words: str = "I want to talk to a human") -> tuple[str, str]:
    store = ConversationStore(pool, org_id)
    session = await store.start_session(room=room, kind="support")
    await store.add_turn(session, TurnRecord(speaker="customer", role="user", text="my invoice looks wrong"))
    await store.add_turn(session, TurnRecord(speaker="agent", role="assistant", text="Let me check that."))
    await store.add_turn(session, TurnRecord(speaker="customer", role="user", text=words))
    async with pool.acquire() as conn, conn.transaction():
        case = await desk.open(conn, session_id=session, reason="explicit_request", handoff=handoff,
                               details={"rule": "asked for a human", "matched": ["talk to a human"], "transcript": words},
                               status=status, handoff_status="callback" if status == "callback" else "pending",
                               room=room)
    await store.add_turn(session, TurnRecord(speaker="agent", role="assistant", text="(after the case)"))
    return session, case.id


async def test_case_numbers_are_per_organization_and_sequential(pg_pool, org_id):
    other = str(await pg_pool.fetchval("insert into organizations (slug, name) values ('cases-other', 'x') "
                                       "on conflict (slug) do update set name = 'x' returning id"))
    desk, desk2 = CaseDesk(pg_pool, org_id), CaseDesk(pg_pool, other)
    await _call_with_case(pg_pool, org_id, desk)
    _, second = await _call_with_case(pg_pool, org_id, desk)
    first_before = [c.label for c in await desk2.list()]
    await _call_with_case(pg_pool, other, desk2)
    assert [c.label for c in await desk.list()] == ["CW-1002", "CW-1001"]
    assert len([c.label for c in await desk2.list()]) == len(first_before) + 1
    # another org cannot see or touch these cases, by id or by claim
    with pytest.raises(CaseError, match="no case"):
        await desk2.get(second)
    with pytest.raises(CaseError, match="no case"):
        await desk2.claim(second, "mallory")


async def test_show_has_the_transcript_that_led_to_it(pg_pool, org_id):
    desk = CaseDesk(pg_pool, org_id)
    _, case_id = await _call_with_case(pg_pool, org_id, desk, words="get me a real person please")
    case = await desk.get(case_id)
    texts = [t["text"] for t in case.transcript]
    assert texts == ["my invoice looks wrong", "Let me check that.", "get me a real person please"]
    d = case.as_dict()
    assert d["case"].startswith("CW-") and d["status"] == "callback" and d["matched"] == ["talk to a human"]
    assert (await desk.get(d["case"])).id == case_id and (await desk.get(str(case.number))).id == case_id


async def test_claim_then_resolve_and_the_rules_around_them(pg_pool, org_id):
    desk = CaseDesk(pg_pool, org_id)
    _, case_id = await _call_with_case(pg_pool, org_id, desk, status="waiting", handoff="live")
    claimed = await desk.claim(case_id, "alice")
    assert claimed.status == "claimed" and claimed.assigned_to == "alice" and claimed.claimed_at is not None
    assert (await desk.claim(case_id, "alice")).status == "claimed"  # idempotent for the same person
    with pytest.raises(CaseError, match="already claimed by alice"):
        await desk.claim(case_id, "bob")
    with pytest.raises(CaseError, match="resolution notes"):
        await desk.resolve(case_id, "alice", "  ")
    done = await desk.resolve(case_id, "alice", "refunded the duplicate charge")
    assert done.status == "resolved" and done.resolved_at >= done.claimed_at
    assert done.resolution_notes == "refunded the duplicate charge"
    with pytest.raises(CaseError, match="already resolved"):
        await desk.resolve(case_id, "alice", "again")
    with pytest.raises(CaseError, match="is resolved"):
        await desk.claim(case_id, "bob")
    audit = await pg_pool.fetch("select actor, action from audit_log where organization_id = $1 and target_id = $2 "
                                "order by id", org_id, case_id)
    assert [(a["actor"], a["action"]) for a in audit] == [("alice", "case.claim"), ("alice", "case.resolve")]
    for bad in ("", "a b", "-x", "x" * 65):
        with pytest.raises(CaseError):
            await desk.claim(case_id, bad)
    with pytest.raises(CaseError, match="not a case number"):
        await desk.get("DROP TABLE")


async def test_live_case_carries_a_join_token_for_its_room(pg_pool, org_id):
    from livekit import api

    links = JoinLinks(url="ws://127.0.0.1:7880", api_key="devkey", api_secret="s" * 32)
    desk = CaseDesk(pg_pool, org_id, links=links)
    _, case_id = await _call_with_case(pg_pool, org_id, desk, room="call-42", status="waiting", handoff="live")
    case = await desk.claim(case_id, "alice")
    assert case.join_link and "liveKitUrl=ws" in case.join_link
    token = case.join_link.split("token=")[1]
    claims = api.TokenVerifier("devkey", "s" * 32).verify(token)
    assert claims.identity == "agent-alice" and claims.video.room == "call-42" and claims.video.room_join
    import jwt

    raw = jwt.decode(token, options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] <= 600  # short-lived: ten minutes to open it
    # only the claiming agent gets a link: nobody else by name, and nobody without a name
    assert (await desk.get(case_id, agent="mallory")).join_link is None
    assert (await desk.get(case_id)).join_link is None
    assert (await desk.get(case_id, agent="alice")).join_link is not None
    # a callback case has no room to join
    _, cb = await _call_with_case(pg_pool, org_id, desk, room="call-43")
    assert (await desk.get(cb)).join_link is None
