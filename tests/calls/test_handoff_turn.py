"""The escalate stage of the real turn pipeline with the handoff service plugged in: one case per call,
its number in what the caller hears, the agent's turn linked to it, nothing promised without a case."""

from __future__ import annotations

from datetime import UTC, datetime

from callwise.calls import SupportCall, SupportDeps
from callwise.handoff.cases import CaseDesk
from callwise.handoff.escalation import EscalationPolicy, EscalationRules
from callwise.handoff.service import HandoffEscalator, HandoffService


class Evening(EscalationRules):
    def handoff(self, now=None):  # type: ignore[no-untyped-def]
        return super().handoff(datetime(2026, 11, 23, 21, 0, tzinfo=UTC))


def _deps(pool) -> SupportDeps:  # type: ignore[no-untyped-def]
    rules = Evening(EscalationPolicy())
    return SupportDeps(retriever=None, router=None, pool=pool, rules=rules,  # type: ignore[arg-type]
                       escalator=HandoffEscalator(HandoffService(pool, rules)))


async def test_the_case_exists_before_its_number_is_spoken_and_only_once(pg_pool, org_id):
    deps = _deps(pg_pool)
    call = await SupportCall.start(deps, organization_id=org_id, room="turn-room")
    out = await call.run_turn("I want to talk to a real person please")
    assert out.kind == "escalation" and out.escalated
    esc = out.escalation
    assert esc["case"] == "CW-1001" and esc["handoff"] == "callback" and esc["handoff_status"] == "callback"
    assert "C W 1 0 0 1" in out.answer and "offline right now" in out.answer
    again = await call.run_turn("this is ridiculous, get me a manager")
    assert "already opened a case" in again.answer and "C W 1 0 0 1" in again.answer
    await call.end()
    rows = await pg_pool.fetch("select id, turn_id, status from escalations where organization_id = $1", org_id)
    assert len(rows) == 1 and rows[0]["status"] == "callback"
    case = await CaseDesk(pg_pool, org_id).get("CW-1001")
    assert case.turn_id == out.turn_id  # the agent's reply that carried the case
    assert [t["text"] for t in case.transcript][:1] == ["I want to talk to a real person please"]


async def test_nightly_turns_open_no_case(pg_pool, org_id):
    deps = _deps(pg_pool)
    call = SupportCall(deps, organization_id=org_id, session_id=None, persist=False)
    out = await call.run_turn("I want to talk to a human")
    assert out.escalated and "case" not in out.answer.lower()
    assert await pg_pool.fetchval("select count(*) from escalations where organization_id = $1", org_id) == 0


async def test_a_question_after_the_case_is_opened_is_answered_not_met_with_the_case_number_again(
        support_deps, kb_org, pg_pool):
    """A refund case is open; the caller then asks how long the money takes to come back. The refund words fire
    the rules again, but the case is open: the turn notes the trigger and goes on to retrieval and the answer.
    A renewed request for a person still gets the case number (the sample call refund.wav asked "how long does
    it take for the money to come back to my card?" and heard the case number again)."""
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="repeat-room")
    first = await call.run_turn("I want a full refund for the upgrade")
    assert first.escalated and first.escalation["reason"] == "legal_refund"
    asked = await call.run_turn("If I do a chargeback with my bank instead, how long does that take?")
    assert not asked.escalated and asked.kind == "answer" and asked.answer
    assert asked.escalation["repeat_reason"] == "legal_refund" and "already opened a case" not in asked.answer
    person = await call.run_turn("can I just talk to a person about it?")
    spoken_case = " ".join(first.escalation["case"].replace("-", ""))  # "CW-1009" is said "C W 1 0 0 9"
    assert person.escalated and "already" in person.answer and spoken_case in person.answer
    await call.end()
    rows = await pg_pool.fetch("select id from escalations where organization_id = $1 and session_id = $2",
                               kb_org, call.session_id)
    assert len(rows) == 1
