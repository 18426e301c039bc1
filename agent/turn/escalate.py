"""Escalation stages: the rules on the customer's words (before retrieval, so a security report
never waits on a model) and on the answer (router failure, low confidence, repeated non-answers).

Both hand the decision to an ``Escalator``: it picks the handoff and says what the customer hears.
``RulesEscalator`` is the built-in one (live inside service hours, callback outside, one handoff
per call); a case desk / live transfer implements the same protocol and is given as
``SupportDeps.escalator``. Persistence stores the escalation row after the turn, then calls
``Escalator.recorded`` with its id.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.escalation import Escalation, EscalationRules, already_escalated_message, customer_message
from agent.turn.context import TurnContext


class Escalator(Protocol):
    async def escalate(self, ctx: TurnContext, esc: Escalation, *, with_reason: bool = True) -> str:
        """Decide the handoff for ``esc``; set ``ctx.outcome.escalation``; return the caller's words."""
        ...

    async def recorded(self, ctx: TurnContext, escalation_id: str) -> None:
        """The escalation row exists (``escalations.id``); start what follows (case, transfer, ticket)."""
        ...


class RulesEscalator:
    """One handoff per call: ``live`` inside service hours, ``callback`` outside."""

    def __init__(self, rules: EscalationRules) -> None:
        self.rules = rules

    async def escalate(self, ctx: TurnContext, esc: Escalation, *, with_reason: bool = True) -> str:
        out, call = ctx.outcome, ctx.call
        out.escalated = True
        if call.escalation is not None:  # later triggers are noted on the turn
            out.escalation = {**call.escalation, "repeat_reason": esc.reason}
            return already_escalated_message(call.escalation["handoff"])
        handoff = self.rules.handoff()
        call.state.escalated = True
        call.escalation = {"reason": esc.reason, "handoff": handoff, **esc.details}
        out.escalation = dict(call.escalation)
        return customer_message(esc.reason, handoff, with_reason=with_reason)

    async def recorded(self, ctx: TurnContext, escalation_id: str) -> None:
        return None


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
