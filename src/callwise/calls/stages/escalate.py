"""Escalation stages: the rules on the customer's words (before retrieval, so a security report
never waits on a model) and on the answer (router failure, low confidence, repeated non-answers).

Both hand the decision to an ``Escalator``: it picks the handoff and says what the customer hears.
The live wiring gives ``callwise.handoff.service.HandoffEscalator`` (case desk, transfer, on-duty notice) as
``SupportDeps.escalator``; ``RulesEscalator`` is the built-in fallback when none is wired (tests, the
nightly run). Persistence stores the escalation row after the turn (unless the escalator opened the
case already: ``case_id``), then calls ``Escalator.recorded`` with its id.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from callwise.calls.context import TurnContext
from callwise.handoff.cases import CaseDesk
from callwise.handoff.escalation import Escalation, EscalationRules, already_recorded_message, recorded_message

log = logging.getLogger("callwise.turn")


class Escalator(Protocol):
    async def escalate(self, ctx: TurnContext, esc: Escalation, *, with_reason: bool = True) -> str:
        """Decide the handoff for ``esc``; set ``ctx.outcome.escalation``; return the caller's words."""
        ...

    async def recorded(self, ctx: TurnContext, escalation_id: str) -> None:
        """The escalation row exists (``escalations.id``); start what follows (case, transfer, ticket)."""
        ...


class RulesEscalator:
    """One escalation per call, recorded and nothing more: it opens a case on the desk (status
    ``waiting``, ``handoff_status`` ``recorded``: nothing was sent to anyone) and tells the caller
    exactly that, with the case number. It transfers no one and notifies no one, so it never says it
    does; without a stored call (the nightly run) or when the case cannot be stored, it says it
    could not pass the call on."""

    def __init__(self, rules: EscalationRules) -> None:
        self.rules = rules

    async def escalate(self, ctx: TurnContext, esc: Escalation, *, with_reason: bool = True) -> str:
        out, call = ctx.outcome, ctx.call
        out.escalated = True
        if call.escalation is not None:  # later triggers are noted on the turn
            out.escalation = {**call.escalation, "repeat_reason": esc.reason}
            return already_recorded_message(call.escalation.get("case"))
        call.state.escalated = True
        case = None
        if call.persist and call.session_id is not None:
            try:
                async with ctx.deps.pool.acquire() as conn:
                    case = await CaseDesk(ctx.deps.pool, call.organization_id).open(
                        conn, session_id=call.session_id, reason=esc.reason, handoff="callback",
                        details={**esc.details, "transcript": ctx.text}, status="waiting",
                        handoff_status="recorded")
            except Exception:  # noqa: BLE001 - nothing stored: the caller is told so, not promised a case
                log.exception("could not record the escalation")
        call.escalation = {"reason": esc.reason, "handoff": "callback" if case else "none", **esc.details}
        if case is not None:
            call.escalation.update(case_id=case.id, case=case.label, handoff_status="recorded")
        else:
            call.escalation["handoff_status"] = "not_recorded"
        out.escalation = dict(call.escalation)
        return recorded_message(esc.reason, case.label if case else None, with_reason=with_reason)

    async def recorded(self, ctx: TurnContext, escalation_id: str) -> None:
        """Link the case to the agent's turn, now that the turn is stored."""
        if ctx.outcome.turn_id is None:
            return
        await ctx.deps.pool.execute(
            "update escalations set turn_id = $3 where organization_id = $1 and id = $2 and turn_id is null",
            ctx.call.organization_id, escalation_id, ctx.outcome.turn_id)


def escalator_of(ctx: TurnContext) -> Any:
    return ctx.deps.escalator or RulesEscalator(ctx.deps.rules)


class EscalateOnWords:
    """Stage: the word rules (explicit request, frustration, security, legal, outage, billing...)."""

    name = "escalate_on_words"

    async def run(self, ctx: TurnContext) -> None:
        hit = ctx.deps.rules.check_user_turn(ctx.text, ctx.call.state)
        if hit is None:
            return
        await ctx.say(await escalator_of(ctx).escalate(ctx, hit))
        ctx.finish("escalation")


class EscalateOnAnswer:
    """Stage: the rules on the router's result. Runs only when the router ran."""

    name = "escalate_on_answer"

    async def run(self, ctx: TurnContext) -> None:
        if not ctx.router_ran:
            return
        out, answer = ctx.outcome, ctx.answer
        failed = answer is None or (answer.tier is None and answer.error not in (None, "empty_query"))
        hit = ctx.deps.rules.check_answer(
            failed=failed, escalate=bool(answer and answer.escalate), confidence=out.confidence,
            has_sources=bool(ctx.sources), state=ctx.call.state, error=out.error)
        if hit is None:
            return
        message = await escalator_of(ctx).escalate(ctx, hit, with_reason=hit.reason != "router_failure")
        await ctx.say(" " + message)
