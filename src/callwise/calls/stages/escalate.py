"""Escalation stages: the rules and the learned detector on the customer's words (before retrieval,
so a security report never waits on a model), and the rules on the answer (router failure, low
confidence, repeated non-answers).

``escalate(ctx, esc)`` is the one way a turn escalates: the call's first escalation goes to the
escalator (``SupportDeps.handoff``: the handoff service's ``HandoffEscalator`` when wired, else the
built-in ``RulesEscalator``), which returns the sentence and the escalation; this stage writes them
into the turn and the call. A later trigger is noted on the turn and answered with what the first
one left (``CallHandoff.after.already``). Persistence stores the turn, then tells ``CallHandoff.after``.

Unsure is a question, not a case: a low-confidence answer to a first or second question, or an unsure
detector on a call that shows trouble, ends with ONE question ("would you like me to pass this to a
colleague?"); a yes on the next turn escalates with reason ``explicit_request``.
"""

from __future__ import annotations

import re
from typing import Any

from callwise.calls import languages
from callwise.calls.context import CallContext, TurnContext
from callwise.calls.meeting import is_question
from callwise.handoff.escalation import Escalation

OFFER = "I'm not sure I found the right answer — would you like me to pass this to a colleague?"
_YES = re.compile(r"^\W*(?:(?:oh |um |uh |well |okay |ok |yeah |yes )*(?:yes|yeah|yep|yup|sure|please|ok|okay|go ahead"
                  r"|do that|why not|that would be (?:great|good|helpful)|i would|i'd like that|absolutely|definitely"
                  r"|of course|pass (?:it|me|this) (?:on|over)?)\b)", re.IGNORECASE)
_NO = re.compile(r"\b(?:no|nope|not now|no thanks|no thank you|i'm fine|it's fine|that's okay|don't)\b", re.IGNORECASE)


_WH_QUESTION = re.compile(r"\b(?:how|what|when|where|which|who|whom|whose|why)\b", re.IGNORECASE)


def is_yes(text: str) -> bool:
    """The caller accepts the offer ("yes please", "yeah go ahead"), and does not also say no, nor go on to ask a
    question ("Okay, and how long does it take for the money to come back?" is a question, not a yes)."""
    found = _YES.search(text)
    if found is None or _NO.search(text.split(",")[0]):
        return False
    rest = text[found.end():]
    asks = _WH_QUESTION.search(rest) is not None and ("?" in rest or len(rest.split()) >= 5)
    return not asks


def contact_of(call: CallContext) -> dict[str, Any]:
    """Name, email, phone of the caller; the CRM's record (``callwise.calls.caller``) where the lookup found one."""
    customer = call.customer
    extra = getattr(customer, "extra", {}) or {}
    out: dict[str, Any] = {"name": getattr(customer, "name", None), "email": extra.get("email"),
                           "phone": extra.get("phone")}
    crm = getattr(call.caller, "customer", None)
    if crm is not None:
        out.update(name=out["name"] or crm.name, email=out["email"] or crm.email, phone=out["phone"] or crm.phone,
                   crm_provider=crm.provider, crm_id=crm.external_id)
    return {k: v for k, v in out.items() if v}


async def escalate(ctx: TurnContext, esc: Escalation, *, with_reason: bool = True) -> str:
    """Escalate the turn: write the escalation into the turn and the call; return the caller's words.
    A drafted turn waits here for its commit: a case is never opened for words the caller had not finished."""
    await ctx.commit_point()
    out, call = ctx.outcome, ctx.call
    handoff = call.handoff
    out.escalated = True
    if call.escalation is not None:  # one handoff per call; later triggers are noted on the turn
        out.escalation = {**call.escalation, "repeat_reason": esc.reason}
        return handoff.after.already() if handoff.after is not None else (
            "I've already passed your call to our support team.")
    call.state.escalated = True
    handoff.session_id, handoff.persist = call.session_id, call.persist
    handoff.contact = contact_of(call)
    handoff.recent = [t.text for t in call.memory.turns if t.role == "user"][-2:] + [ctx.text]
    done = await ctx.deps.handoff.escalate(handoff, esc, with_reason=with_reason)
    handoff.after = done.after
    call.escalation = done.escalation
    out.escalation = dict(done.escalation)
    return done.say


class EscalateOnWords:
    """Stage: the word rules and the learned detector (explicit request, frustration, security, legal,
    outage, billing, repeated failure), and the caller's reply to an offer of a colleague."""

    name = "escalate_on_words"

    async def run(self, ctx: TurnContext) -> None:
        state = ctx.call.state
        if state.offer_pending:
            state.offer_pending = False
            if is_yes(ctx.text) or languages.is_yes(ctx.text, ctx.call.language):  # "sí, por favor" (issue 25)
                accepted = Escalation("explicit_request", "accepted the offer of a colleague", [ctx.text])
                await ctx.say(await escalate(ctx, accepted))
                ctx.finish("escalation")
                return
        hit = ctx.deps.rules.check_user_turn(ctx.text, state)
        det = state.last_detection
        if hit is None and ctx.deps.judge is not None and det is not None and det.unsure:
            memory = ctx.call.memory.turns
            verdict = await ctx.deps.judge.judge([t.text for t in memory if t.role == "user"] + [ctx.text],
                                                 [t.text for t in memory if t.role == "assistant"], det.candidate)
            if verdict is not None:
                hit = ctx.deps.rules.judged(ctx.text, det, verdict.reason,
                                            f"generative judge {verdict.model} ({verdict.latency_ms:.0f} ms)")
        if hit is None:
            return
        if ctx.call.escalation is not None and hit.reason not in _ASK_AGAIN and is_question(ctx.text):
            # the case is open already: note the trigger on the turn and answer the question ("and how long does
            # it take for the money to come back?" after a refund case is a question the knowledge base answers)
            ctx.outcome.escalation = {**ctx.call.escalation, "repeat_reason": hit.reason}
            return
        await ctx.say(await escalate(ctx, hit))
        ctx.finish("escalation")


#: after a case is open, these reasons still get the case number again rather than an answer: the caller wants
#: a person, or is upset, and an article would not help
_ASK_AGAIN = frozenset({"explicit_request", "frustration"})


class EscalateOnAnswer:
    """Stage: the rules on the router's result. Runs only when the router ran. A low-confidence answer
    to a first or second question is not a case: the caller is asked once instead."""

    name = "escalate_on_answer"

    async def run(self, ctx: TurnContext) -> None:
        if not ctx.router_ran:
            return
        out, answer, state = ctx.outcome, ctx.answer, ctx.call.state
        failed = answer is None or (answer.tier is None and answer.error not in (None, "empty_query"))
        rules = ctx.deps.rules
        hit = rules.check_answer(
            failed=failed, escalate=bool(answer and answer.escalate), confidence=out.confidence,
            has_sources=bool(ctx.sources), state=state, error=out.error)
        unsure = hit is not None and hit.reason == "low_confidence"
        if unsure and state.offered:  # asked once already: the caller's reply stands (repeated failure still counts)
            hit = None
        if hit is not None and not (unsure and state.questions_answered <= 2):
            message = await escalate(ctx, hit, with_reason=hit.reason != "router_failure")
            await ctx.say(" " + message)
            return
        if rules.wants_offer(state, answer_unsure=unsure):
            state.offered = state.offer_pending = True
            out.offered_colleague = True
            out.offer = {"after": hit.rule if hit else "unsure detector on a troubled call",
                         "detector": _detector_view(state)}
            await ctx.say(" " + OFFER)


def _detector_view(state: Any) -> dict[str, Any] | None:
    det = state.last_detection
    if det is None:
        return None
    best = det.reason or det.candidate
    return {"candidate": best, "probability": round(det.probability, 3), "nearest": [n.describe() for n in det.nearest]}
