"""What the caller heard of an interrupted answer, and why a call ended, as stored (migration 0018)."""

from __future__ import annotations

import asyncio

import pytest

from callwise.calls.context import TurnOutcome
from callwise.calls.ending import record_end_reason, store_abandoned
from callwise.calls.heard import answered_turn, store_heard
from callwise.calls.store import ConversationStore, TurnRecord


def test_the_interrupted_answer_is_found_by_the_question_it_answered() -> None:
    a, b, c = TurnOutcome("How do I reset my password?"), TurnOutcome("Can I get a refund?"), TurnOutcome("Thanks")
    assert answered_turn([a, b, c], "Can I  get a refund? ") is b
    assert answered_turn([a, b, c], "Something else") is None  # cut in before any turn answered it
    assert answered_turn([], "Can I get a refund?") is None


async def test_the_heard_text_lands_once_the_answer_is_stored(pg_pool, org_id) -> None:
    store = ConversationStore(pg_pool, org_id)
    session = await store.start_session(room="r", kind="support")
    out = TurnOutcome("Can I get a refund?")

    async def persist_later() -> None:  # persistence after a barge-in runs in the background
        await asyncio.sleep(0.2)
        out.turn_id = await store.add_turn(session, TurnRecord(speaker="agent", role="assistant",
                                                               text="Every paid plan is covered for 30 days."))

    writer = asyncio.create_task(persist_later())
    assert await store_heard(pg_pool, org_id, out, " Every paid plan ") == out.turn_id
    await writer
    row = await pg_pool.fetchrow("select text, heard, error from turns where id = $1", out.turn_id)
    assert tuple(row) == ("Every paid plan is covered for 30 days.", "Every paid plan", "interrupted")
    assert await store_heard(pg_pool, org_id, TurnOutcome("never stored"), "x", wait_s=0.1) is None


async def test_the_first_end_reason_wins_and_a_bad_one_is_refused(pg_pool, org_id) -> None:
    store = ConversationStore(pg_pool, org_id)
    session = await store.start_session(room="r", kind="support")
    await record_end_reason(pg_pool, org_id, session, "caller_silent")
    await record_end_reason(pg_pool, org_id, session, "caller_hung_up")  # the line dropped after the goodbye
    assert await pg_pool.fetchval("select end_reason from sessions where id = $1", session) == "caller_silent"
    with pytest.raises(ValueError, match="end reason"):
        await record_end_reason(pg_pool, org_id, session, "bored")  # type: ignore[arg-type]
    assert await store_abandoned(pg_pool, org_id, session, "   ") is None
    turn = await store_abandoned(pg_pool, org_id, session, "Hi, I upgraded our", speaker="caller-1")
    row = await pg_pool.fetchrow("select speaker, role, text, error from turns where id = $1", turn)
    assert tuple(row) == ("caller-1", "user", "Hi, I upgraded our", "abandoned")
