"""The caller's reply to an offer of a colleague: a yes escalates; a leading "Okay," before a question does not."""

from __future__ import annotations

import pytest

from callwise.calls import SupportCall
from callwise.calls.stages.escalate import is_yes

QUESTION_AFTER_OKAY = "Okay, and how long does it take for the money to come back to my card?"


@pytest.mark.parametrize("text", ["yes please", "yeah go ahead", "Yes, that would be great", "sure, why not", "ok"])
def test_acceptances_are_yes(text: str) -> None:
    assert is_yes(text)


@pytest.mark.parametrize("text", [QUESTION_AFTER_OKAY, "No thanks", "okay, and where do I find the receipt?",
                                  "Yes, and what happens to my data after that"])
def test_a_question_or_a_no_is_not_yes(text: str) -> None:
    assert not is_yes(text)


async def test_question_after_an_offer_is_answered_not_escalated(support_deps, kb_org) -> None:
    call = await SupportCall.start(support_deps, organization_id=kb_org, room="offer-then-question")
    call.state.offered = call.state.offer_pending = True  # the previous answer offered a colleague
    out = await call.run_turn(QUESTION_AFTER_OKAY)
    await call.end()
    assert not out.escalated and call.escalation is None
    assert out.kind == "answer" and "business days" in out.answer
