"""Escalation: when a support call goes to a human, and why.

Two layers, both explainable. The word rules (``callwise.handoff.patterns``) stay for what is certain:
an explicit "I want a human", a legal threat, a security report in the words people use, a disputed
amount over the threshold (``callwise.handoff.amounts`` reads amounts said as words). The learned detector
(``callwise.handoff.detector``) reads what the rules cannot list: calibrated probabilities per reason
over the customer's turn *and* the call so far (earlier turns, a restated need, unsure answers), each
reason with its own threshold. Every decision carries its reason, the rule or the probability that
decided, and the nearest labelled training turns.

==================  ===========================================================================
reason              fires when
==================  ===========================================================================
security_privacy    account compromise or takeover (also told as a story), phishing, a breach or
                    exposure, a personal-data deletion/access request
legal_refund        legal threats, a formal complaint, a chargeback (also "I'll have my card
                    issuer reverse it"), the customer asking for their money back
explicit_request    the customer asks for a person, in any words ("can somebody ring me")
outage              the service is down for more than this caller ("my colleagues see it too")
billing_dispute     a disputed charge above ``billing_dispute_threshold`` (USD)
frustration         frustration over the call: rule points reach ``frustration_indicators`` (3),
                    or the detector reads it from the turn and the call
repeated_failure    two customer turns without resolution (said, or a restated need after an
                    answer), or the detector reads it over the call
low_confidence      the router asked for a human, or the answer's probability of being right is
                    under ``low_confidence_floor`` (the call stage asks first on a first or second
                    question: ``callwise.calls.stages.escalate``)
router_failure      every provider failed
==================  ===========================================================================

Service hours decide the handoff: ``live`` (a human joins now) inside them, ``callback``
(a human calls back) outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from callwise.handoff.amounts import amounts
from callwise.handoff.cases import spoken_case_number
from callwise.handoff.detector import Conversation, Detection, EmbedFn, LearnedDetector, shipped_detector
from callwise.handoff.patterns import (
    BILLING_CUE,
    EXPLICIT,
    LEGAL_REFUND,
    MAX_RULE_CHARS,
    NOT_RESOLVED,
    OUTAGE,
    SECURITY,
    frustration_indicators,
    frustration_points,
    is_not_resolved,
    matches,
    rule_text,
    sounds_resolved,
)

__all__ = ["MAX_RULE_CHARS", "CallState", "Escalation", "EscalationPolicy", "EscalationRules", "amounts",
           "frustration_indicators", "frustration_points", "is_not_resolved", "reason_sentence", "rule_text"]

Reason = Literal[
    "explicit_request", "frustration", "billing_dispute", "security_privacy", "legal_refund",
    "outage", "repeated_failure", "low_confidence", "router_failure",
]
Handoff = Literal["live", "callback"]


def _fitted_floor() -> float:
    from callwise.routing.calibration import load_calibration

    return load_calibration().escalate_below(0.3)


@dataclass(frozen=True)
class EscalationPolicy:
    """The tunable parts of the rules (from ``Settings``)."""

    billing_threshold: float = 100.0
    frustration_indicators: int = 3
    unresolved_attempts: int = 2
    #: under this estimated probability that the answer is right, hand over instead of answering
    #: (the router's own threshold, higher, only adds a disclaimer): the ``escalate_below`` fitted in
    #: ``routing/data/calibration.json`` (0.3 when nothing is fitted). For a method without a fitted
    #: calibration (``Confidence.calibrated`` false) the value compared is the raw score.
    low_confidence_floor: float = field(default_factory=lambda: _fitted_floor())
    service_start: time = time(9, 0)
    service_end: time = time(18, 0)
    service_tz: str = "UTC"

    @classmethod
    def from_settings(cls, settings: object) -> EscalationPolicy:
        def hhmm(s: str) -> time:
            h, m = s.split(":")
            return time(int(h), int(m))

        return cls(
            billing_threshold=float(getattr(settings, "billing_dispute_threshold", 100.0)),
            service_start=hhmm(getattr(settings, "service_hours_start", "09:00")),
            service_end=hhmm(getattr(settings, "service_hours_end", "18:00")),
            service_tz=str(getattr(settings, "service_timezone", "UTC")),
        )


@dataclass
class CallState:
    """What escalation remembers across the turns of one call (it lives on the call's context)."""

    frustration_indicators: int = 0
    unresolved_attempts: int = 0
    escalated: bool = False
    #: the detector's memory of the call: earlier turns' vectors, how the answers went
    conversation: Conversation = field(default_factory=Conversation)
    #: the detector's view of the last customer turn (read by the stage that may offer a colleague)
    last_detection: Detection | None = None
    #: the caller was asked once whether to pass them to a colleague; ``offer_pending`` until they reply
    offered: bool = False
    offer_pending: bool = False
    questions_answered: int = 0


@dataclass(frozen=True)
class Escalation:
    reason: Reason
    rule: str
    matched: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)

    probability: float | None = None
    nearest: list[str] = field(default_factory=list)

    @property
    def details(self) -> dict[str, object]:
        out: dict[str, object] = {"rule": self.rule, "matched": self.matched, "also_matched": self.also}
        if self.probability is not None:
            out["probability"] = round(self.probability, 3)
        if self.nearest:
            out["nearest"] = self.nearest
        return out


class EscalationRules:
    """The rules as a floor, the learned detector (when an embedder is given) over the call."""

    def __init__(self, policy: EscalationPolicy | None = None, *, detector: LearnedDetector | None = None) -> None:
        self.policy = policy or EscalationPolicy()
        self.detector = detector

    @classmethod
    def with_embedder(cls, policy: EscalationPolicy | None, embed_fn: EmbedFn | None) -> EscalationRules:
        """Rules plus the shipped detector for ``embed_fn`` (loaded once per embedder, not per call)."""
        return cls(policy, detector=shipped_detector(embed_fn) if embed_fn is not None else None)

    def _rule_hits(self, text: str) -> tuple[list[tuple[Reason, str, list[str]]], list[float]]:
        hits: list[tuple[Reason, str, list[str]]] = []
        if m := matches(SECURITY, text):
            hits.append(("security_privacy", "account security or data privacy", m))
        if m := matches(LEGAL_REFUND, text):
            hits.append(("legal_refund", "legal, formal complaint or refund request", m))
        if m := matches(EXPLICIT, text):
            hits.append(("explicit_request", "asked for a human", m))
        if m := matches(OUTAGE, text):
            hits.append(("outage", "reported outage", m))
        found = amounts(text)
        over = [a for a in found if a > self.policy.billing_threshold]
        if over and (cues := matches(BILLING_CUE, text)):
            hits.append(("billing_dispute", f"billing dispute over {self.policy.billing_threshold:g} USD",
                         cues + [f"{max(over):g}"]))
        return hits, found

    def check_user_turn(self, text: str, state: CallState) -> Escalation | None:
        """The word rules on one customer turn (at most ``MAX_RULE_CHARS`` of it), then the learned
        detector over the call; updates ``state``. The rules decide first; the detector decides a
        turn no rule spoke about, and its probability and nearest examples go with every decision."""
        text = rule_text(text)
        hits, found = self._rule_hits(text)
        det = None
        if self.detector is not None and text.strip():
            det = self.detector.detect(text, state.conversation)
        state.last_detection = det
        points, indicators = frustration_points(text)
        unresolved = matches(NOT_RESOLVED, text)
        if det is not None and det.reason is not None and not hits and not (
                det.reason in ("repeated_failure", "frustration") and sounds_resolved(text)):
            learned = self._learned_hit(det, found)
            if learned is not None:
                hits.append(learned)
        state.frustration_indicators += points
        if points and state.frustration_indicators >= self.policy.frustration_indicators:
            hits.append(("frustration",
                         f"{state.frustration_indicators} frustration points in the call (>= "
                         f"{self.policy.frustration_indicators})", indicators))
        if unresolved:
            state.unresolved_attempts += 1
            if state.unresolved_attempts >= self.policy.unresolved_attempts:
                hits.append(("repeated_failure",
                             f"{state.unresolved_attempts} attempts without resolution", unresolved))
        if not hits:
            return None
        reason, rule, matched = hits[0]
        prob = det.probabilities.get(reason) if det is not None else None
        return Escalation(reason=reason, rule=rule, matched=matched, also=[h[0] for h in hits[1:]],
                          probability=prob, nearest=[n.describe() for n in det.nearest] if det else [])

    def _learned_hit(self, det: Detection, found: list[float]) -> tuple[Reason, str, list[str]] | None:
        """The detector's reason as a hit. A billing dispute needs its amount over the threshold when
        an amount was said (one under it is a question for the help centre, not a case)."""
        reason = det.reason
        assert reason is not None
        if reason == "billing_dispute" and found and max(found) <= self.policy.billing_threshold:
            return None
        return (reason, f"learned detector: {reason} p={det.probability:.2f}",  # type: ignore[return-value]
                [n.describe() for n in det.nearest])

    def judged(self, text: str, det: Detection, reason: str | None, rule: str) -> Escalation | None:
        """A generative judge's reason for a turn the detector was unsure about, as an escalation
        (the same amount gate as the detector's own billing disputes)."""
        if reason is None:
            return None
        hit = self._learned_hit(Detection(det.probabilities, reason, det.probabilities.get(reason, 0.0), False, None,
                                          det.nearest), amounts(rule_text(text)))
        if hit is None:
            return None
        return Escalation(reason=hit[0], rule=rule, matched=hit[2], probability=det.probabilities.get(reason),
                          nearest=[n.describe() for n in det.nearest])

    def observe_answer(self, state: CallState, *, unsure: bool) -> None:
        """The agent answered: the detector's call memory notes whether it was unsure."""
        state.conversation.answered(unsure=unsure)
        state.questions_answered += 1

    def wants_offer(self, state: CallState, *, answer_unsure: bool) -> bool:
        """Whether to ask, once per call, "would you like me to pass this to a colleague?": after an
        unsure answer to a first or second question, or when the detector was unsure about the
        caller's turn and the call shows trouble (two unsure answers, frustration, an unresolved try)."""
        if state.offered or state.escalated:
            return False
        if answer_unsure and state.questions_answered <= 2:
            return True
        det = state.last_detection
        trouble = (state.conversation.unsure_answers >= 2 or state.frustration_indicators > 0
                   or state.unresolved_attempts > 0)
        return bool(det is not None and det.unsure and trouble)

    def unsure_answer(self, *, escalate: bool, confidence: float | None, has_sources: bool) -> bool:
        """An answer the caller is offered a colleague for: no source, the router's escalate flag, or a confidence
        under the floor. Records nothing (:meth:`check_answer` does the bookkeeping)."""
        return (not has_sources or escalate
                or (confidence is not None and confidence < self.policy.low_confidence_floor))

    def check_answer(self, *, failed: bool, escalate: bool, confidence: float | None, has_sources: bool,
                     state: CallState, error: str | None = None) -> Escalation | None:
        """Rules on the router's result: failure, the router's escalate flag or a confidence under the
        floor, and repeated non-answers (no sources counts as an attempt without resolution)."""
        if failed:
            return Escalation("router_failure", "every answer provider failed", [error or "error"])
        self.observe_answer(state, unsure=self.unsure_answer(escalate=escalate, confidence=confidence,
                                                            has_sources=has_sources))
        if not has_sources:
            state.unresolved_attempts += 1
        if escalate:
            return Escalation("low_confidence", "the router asked for a human", [])
        if confidence is not None and confidence < self.policy.low_confidence_floor:
            return Escalation("low_confidence",
                              f"confidence {confidence:.2f} below {self.policy.low_confidence_floor:g}", [])
        if state.unresolved_attempts >= self.policy.unresolved_attempts:
            return Escalation("repeated_failure",
                              f"{state.unresolved_attempts} attempts without resolution", [])
        return None

    def handoff(self, now: datetime | None = None) -> Handoff:
        """``live`` inside service hours, ``callback`` outside (windows may wrap midnight)."""
        now = now or datetime.now(UTC)
        local = now.astimezone(ZoneInfo(self.policy.service_tz)).time()
        start, end = self.policy.service_start, self.policy.service_end
        inside = start <= local < end if start <= end else (local >= start or local < end)
        return "live" if inside else "callback"


#: why a person is needed, in one spoken sentence. It promises nothing: what happens next (a case, a
#: transfer, a colleague asked to join) is said by whoever did it, and only once it is done
_REASON_TEXT: dict[str, str] = {
    "explicit_request": "Of course.",
    "frustration": "I'm sorry this has been so frustrating.",
    "billing_dispute": "A billing specialist needs to look at that charge.",
    "security_privacy": "Account security and privacy matters need our specialist team.",
    "legal_refund": "That needs a member of our team to review and authorise.",
    "outage": "Thanks for reporting this.",
    "repeated_failure": "I'm sorry I haven't been able to solve this for you.",
    "low_confidence": "I'm not certain enough to answer that correctly.",
    "router_failure": "I'm sorry, I'm having technical trouble answering right now.",
}


def reason_sentence(reason: str) -> str:
    """Why a person is needed, in one spoken sentence (shared with ``callwise.handoff.service``); never a promise."""
    return _REASON_TEXT.get(reason, "This needs a member of our support team.")


def recorded_message(reason: str, case_label: str | None, *, with_reason: bool = True) -> str:
    """What the built-in escalator (no handoff service wired) says: only what it did. With a case on
    the desk, that it was recorded and its number; without one (nothing stored, or storing failed),
    that it could not pass the call on."""
    first = reason_sentence(reason) + " " if with_reason else ""
    if case_label:
        return (f"{first}I've recorded your request for our support team as case number "
                f"{spoken_case_number(case_label)}.")
    return f"{first}I'm sorry, I can't pass this to our support team from here; please contact them directly."


def already_recorded_message(case_label: str | None) -> str:
    if case_label:
        return f"Your request is already recorded for our support team as case number {spoken_case_number(case_label)}."
    return "I've already noted that, but I can't pass it to our support team from here."
