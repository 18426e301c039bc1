"""Persistence, the last stage: it runs for every turn, also when a provider failed or the customer
barged in (the spoken part is stored, marked ``interrupted``). Stores the answer turn (text,
sources, the passages the model saw, tier, confidence and its detail (method and signals, so QA
can see why an answer was disclaimed), latencies, cost linked by interaction id),
the escalation row and its room event, the unresolved question; then updates the call's memory."""

from __future__ import annotations

import logging
from typing import Literal

from callwise.calls.context import TurnContext, TurnOutcome
from callwise.calls.store import ConversationStore, TurnRecord

log = logging.getLogger("callwise.turn")

#: escalations that are about the call, not a knowledge question (not fed to gap clustering)
_NOT_QUESTIONS = {"explicit_request", "frustration"}


def unresolved_reason(out: TurnOutcome) -> Literal["escalated", "low_confidence", "no_sources"] | None:
    if out.kind in ("survey", "closing", "acknowledgement"):
        return None
    if out.escalated:
        esc = out.escalation or {}
        reason = esc.get("repeat_reason") or esc.get("reason")
        return None if reason in _NOT_QUESTIONS else "escalated"
    if out.kind != "answer":
        return None
    if out.low_confidence:
        return "low_confidence"
    if not out.sources:
        return "no_sources"
    return None


class Persist:
    name = "persist"

    async def run(self, ctx: TurnContext) -> None:
        self.remember(ctx)
        call, out = ctx.call, ctx.outcome
        if not call.persist or call.session_id is None:
            return
        store = ConversationStore(ctx.deps.pool, call.organization_id)
        try:
            turn_id = await store.add_turn(call.session_id, TurnRecord(
                speaker="agent", role="assistant", text=out.answer or "", sources=out.sources, tier=out.tier,
                confidence=out.confidence, low_confidence=out.low_confidence, escalated=out.escalated,
                latencies=out.latencies, cost_usd=out.cost_usd, error=out.error,
                passages=ctx.passages if ctx.router_ran else [],
                confidence_detail=getattr(ctx.answer, "confidence_detail", None) if ctx.router_ran else None),
                interaction_id=ctx.interaction_id if ctx.answer is not None else None)
            out.turn_id = turn_id
            esc = out.escalation
            # "none": nothing was or could be recorded, and the caller was told so
            if esc is not None and "repeat_reason" not in esc and esc.get("handoff") in ("live", "callback"):
                details = {k: v for k, v in esc.items() if k not in ("reason", "handoff")}
                if esc.get("case_id"):  # the escalator opened the case before speaking (callwise.handoff.service)
                    escalation_id = str(esc["case_id"])
                else:
                    escalation_id = await store.add_escalation(
                        call.session_id, reason=esc["reason"], handoff=esc["handoff"],
                        details={**details, "transcript": out.transcript}, turn_id=turn_id)
                await self._publish(ctx, {"type": "escalation", "reason": esc["reason"], "handoff": esc["handoff"],
                                          "session_id": call.session_id, "turn_id": turn_id,
                                          "transcript": out.transcript, "rule": esc.get("rule"),
                                          "case": esc.get("case"), "handoff_status": esc.get("handoff_status")})
                if call.handoff.after is not None:  # what the escalator left: link the turn, then what follows
                    await call.handoff.after.stored(escalation_id, turn_id)
            reason = unresolved_reason(out)
            if reason:
                await store.record_unresolved(out.transcript, reason=reason, session_id=call.session_id)
        except Exception:  # noqa: BLE001 - a storage hiccup must not end the call
            log.exception("could not store the turn")

    @staticmethod
    def remember(ctx: TurnContext) -> None:
        """The call's memory: both sides of the turn; the question, when it was answered."""
        memory, out = ctx.call.memory, ctx.outcome
        memory.add("user", ctx.guarded or ctx.text, out.kind)
        if out.answer:
            memory.add("assistant", out.answer, out.kind)
        if out.kind == "answer" and ctx.router_ran and ctx.sources:
            memory.last_question = ctx.query or ctx.guarded

    @staticmethod
    async def _publish(ctx: TurnContext, event: dict) -> None:  # type: ignore[type-arg]
        sink = ctx.call.on_event
        if sink is None:
            return
        try:
            await sink(event)
        except Exception:  # noqa: BLE001
            log.exception("could not publish %s", event.get("type"))
