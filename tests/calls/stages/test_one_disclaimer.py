"""A low-confidence spoken answer says one disclaimer: where the colleague offer follows, not the router's as well."""

from __future__ import annotations

import dataclasses

from callwise.calls import SupportCall, SupportDeps
from callwise.calls.stages.escalate import OFFER
from callwise.handoff.escalation import EscalationRules
from callwise.routing.router import DISCLAIMER

# the KB subset answers this with confidence 0.30: under the router's disclaimer bar, and under the offer
# floor set below (the fitted floor is lower, so the same answer alone gets the router's disclaimer)
UNSURE = "What is the uptime credit if you are down for an hour?"


def _deps(support_deps: SupportDeps, floor: float) -> SupportDeps:
    policy = dataclasses.replace(support_deps.rules.policy, low_confidence_floor=floor)
    return dataclasses.replace(support_deps, rules=EscalationRules(policy))


async def test_the_colleague_offer_replaces_the_routers_disclaimer(support_deps, kb_org) -> None:
    call = await SupportCall.start(_deps(support_deps, 0.5), organization_id=kb_org, room="one-disclaimer")
    out = await call.run_turn(UNSURE)
    await call.end()
    assert out.low_confidence and out.offered_colleague, out
    assert OFFER in out.answer and DISCLAIMER not in out.answer, out.answer
    assert out.answer.count("not sure") + out.answer.count("not completely sure") == 1, out.answer
    assert "uptime" in out.answer.lower(), "the answer itself is still said"


async def test_without_an_offer_the_routers_disclaimer_is_said(support_deps, kb_org) -> None:
    call = await SupportCall.start(_deps(support_deps, 0.05), organization_id=kb_org, room="disclaimer-alone")
    out = await call.run_turn(UNSURE)
    await call.end()
    assert out.low_confidence and not out.offered_colleague, out
    assert out.answer.rstrip().endswith(DISCLAIMER) and OFFER not in out.answer, out.answer
