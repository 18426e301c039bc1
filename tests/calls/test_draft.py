"""A drafted turn (the voice framework's preemptive generation) writes nothing until it is committed: discarded,
it leaves no turn, no case, no cost event and no change to the call; committed, it is stored exactly once."""

from __future__ import annotations

import asyncio

from callwise.calls import SupportCall
from callwise.calls.draft import Draft


async def _rows(pool, org: str, session_id: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    counts = {}
    for table in ("turns", "escalations", "cost_events", "unresolved_problems"):
        counts[table] = await pool.fetchval(
            f"select count(*) from {table} where organization_id = $1 and session_id = $2", org, session_id)
    counts["outbox"] = await pool.fetchval(
        "select count(*) from outbox where organization_id = $1 and session_id = $2", org, session_id)
    return counts


async def _read(stream) -> str:  # type: ignore[no-untyped-def]
    return "".join([piece async for piece in stream])


async def test_discarded_answer_draft_leaves_nothing(support_deps, kb_org, pg_pool) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="draft-discard")
    draft = Draft()
    said = await _read(await call.draft_turn("How long does a refund take to show up on my card?", draft))
    assert "business days" in said  # the whole answer was drafted ...
    draft.discard()  # ... and the caller went on
    await call.end()
    assert await _rows(pg_pool, kb_org, call.session_id) == {
        "turns": 0, "escalations": 0, "cost_events": 0, "unresolved_problems": 0, "outbox": 0}
    assert call.outcomes == [] and not call.ctx.memory.turns


async def test_discarded_escalation_draft_opens_no_case(support_deps, kb_org, pg_pool) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="draft-escalation")
    draft = Draft()
    reader = asyncio.ensure_future(_read(await call.draft_turn("I want to speak to a human please", draft)))
    await asyncio.sleep(0.5)
    assert not reader.done()  # the escalation waits for the commit
    draft.discard()
    assert await asyncio.wait_for(reader, 10) == ""
    await call.end()
    assert await _rows(pg_pool, kb_org, call.session_id) == {
        "turns": 0, "escalations": 0, "cost_events": 0, "unresolved_problems": 0, "outbox": 0}
    assert call.escalation is None and not call.state.escalated


async def test_committed_draft_is_stored_once_with_its_costs(support_deps, kb_org, pg_pool) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="draft-commit")
    draft = Draft()
    said = await _read(await call.draft_turn("How long does a refund take to show up on my card?", draft))
    assert await _rows(pg_pool, kb_org, call.session_id) == {
        "turns": 0, "escalations": 0, "cost_events": 0, "unresolved_problems": 0, "outbox": 0}
    draft.commit()
    await call.settled()
    rows = await pg_pool.fetch("select id, role, text from turns where organization_id = $1 and session_id = $2 "
                               "order by seq", kb_org, call.session_id)
    assert [r["role"] for r in rows] == ["user", "assistant"] and rows[1]["text"] == said.strip()
    linked = await pg_pool.fetchval("select count(*) from cost_events where organization_id = $1 and turn_id = $2",
                                    kb_org, rows[1]["id"])
    assert linked >= 1
    assert len(call.outcomes) == 1 and [t.role for t in list(call.ctx.memory.turns)] == ["user", "assistant"]
    await call.end()


async def test_committed_escalation_draft_opens_one_case(support_deps, kb_org, pg_pool) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="draft-commit-escalation")
    draft = Draft()
    reader = asyncio.ensure_future(_read(await call.draft_turn("I want to speak to a human please", draft)))
    await asyncio.sleep(0.3)
    draft.commit()
    said = await asyncio.wait_for(reader, 20)
    await call.settled()
    assert said and call.escalation is not None and call.escalation["reason"] == "explicit_request"
    counts = await _rows(pg_pool, kb_org, call.session_id)
    assert counts["turns"] == 2 and counts["escalations"] == 1
    await call.end()
