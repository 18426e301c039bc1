"""Sessions, turns, escalations, surveys, insights and unresolved questions land in the real Postgres."""

from __future__ import annotations

import json

from callwise.calls.store import ConversationStore, InsightRecord, TurnRecord, question_hash


async def test_session_turns_escalation_survey(pg_pool, org_id: str) -> None:
    store = ConversationStore(pg_pool, org_id)
    sid = await store.start_session(room="room-1", kind="support", modality="voice", metadata={"caller": "c1"})
    await store.add_turn(sid, TurnRecord(speaker="caller", role="user", text="How do I reset my password?",
                                         latencies={"stt_ms": 612.345}))
    tid = await store.add_turn(sid, TurnRecord(
        speaker="agent", role="assistant", text="Open Settings > Security [1].",
        sources=[{"document": "examples/kb/accounts/reset-password.md", "title": "Reset"}],
        tier="tier1", confidence=0.91, latencies={"retrieval_ms": 21.5, "ttft_ms": 130.0}, cost_usd=0.0001))
    esc = await store.add_escalation(sid, reason="explicit_request", handoff="callback",
                                     details={"matched": ["speak to a human"]}, turn_id=tid)
    await store.add_survey(sid, rating=2, feedback_text="pretty bad", channel_used="voice", requires_followup=True)
    await store.end_session(sid, status="escalated", resolved_by_ai=False)

    turns = await store.turns(sid)
    assert [t["seq"] for t in turns] == [0, 1]
    assert turns[1]["tier"] == "tier1" and abs(turns[1]["confidence"] - 0.91) < 1e-6
    assert json.loads(turns[1]["sources"])[0]["document"].endswith("reset-password.md")
    assert json.loads(turns[0]["latencies"]) == {"stt_ms": 612.35}
    row = await pg_pool.fetchrow("select * from escalations where organization_id = $1 and id = $2", org_id, esc)
    assert row["reason"] == "explicit_request" and row["handoff"] == "callback" and str(row["turn_id"]) == tid
    survey = await pg_pool.fetchrow("select * from survey_responses where organization_id = $1", org_id)
    assert survey["rating"] == 2 and survey["requires_followup"] and survey["channel_used"] == "voice"
    session = await pg_pool.fetchrow("select * from sessions where organization_id = $1 and id = $2", org_id, sid)
    assert session["status"] == "escalated" and session["ended_at"] is not None and session["resolved_by_ai"] is False


async def test_turn_links_cost_events(pg_pool, org_id: str) -> None:
    store = ConversationStore(pg_pool, org_id)
    sid = await store.start_session(room="r", kind="support")
    await pg_pool.execute(
        "insert into cost_events (organization_id, interaction_id, tier, provider, model) "
        "values ($1, 'ix-1', 'tier1', 'extractive', 'extractive')", org_id)
    tid = await store.add_turn(sid, TurnRecord(speaker="agent", role="assistant", text="x"), interaction_id="ix-1")
    row = await pg_pool.fetchrow("select turn_id, session_id from cost_events where organization_id = $1", org_id)
    assert str(row["turn_id"]) == tid and str(row["session_id"]) == sid


async def test_unresolved_questions_are_counted(pg_pool, org_id: str) -> None:
    store = ConversationStore(pg_pool, org_id)
    await store.record_unresolved("Do you support carrier pigeons?", reason="no_sources")
    await store.record_unresolved("do you support carrier pigeons", reason="escalated")
    row = await pg_pool.fetchrow("select * from unresolved_problems where organization_id = $1 and normalized_hash = $2",
                                 org_id, question_hash("Do you support carrier pigeons?"))
    assert row["occurrence_count"] == 2 and row["escalated_count"] == 1 and row["last_reason"] == "escalated"


async def test_insights_upsert_and_tenant_isolation(pg_pool, org_id: str) -> None:
    store = ConversationStore(pg_pool, org_id)
    sid = await store.start_session(room="m", kind="meeting")
    await store.save_insights(sid, InsightRecord(transcript=[{"speaker": "a", "text": "hi"}], summary="first"))
    await store.save_insights(sid, InsightRecord(transcript=[], summary="second", topics=["pricing"],
                                                 sentiment_scores={"a": 0.5}, action_items=["send quote"]))
    row = await pg_pool.fetchrow("select * from conversation_insights where organization_id = $1", org_id)
    assert row["summary"] == "second" and json.loads(row["action_items"]) == ["send quote"]

    other = await pg_pool.fetchval("insert into organizations (slug, name) values ('other-' || substr(md5(random()::text), 1, 8), 'o') returning id")
    foreign = ConversationStore(pg_pool, str(other))
    assert await foreign.turns(sid) == []
    await foreign.end_session(sid, status="failed")
    status = await pg_pool.fetchval("select status from sessions where id = $1", sid)
    assert status == "active", "another organization's store cannot touch this session"
