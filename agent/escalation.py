"""Escalation rules: when a support call goes to a human, and how.

Pure and explainable: every rule is a named pattern list or a counter, every decision carries
the rule that fired and the words that matched, so a support lead can read why a call was handed
over. The rules run on the customer's words *before* retrieval (so a security report never waits
on a model) and on the router's result *after* it (``low_confidence``, failure).

Triggers (the seed's list, checked in this order; the first that fires wins, all that fired are
kept in ``details``):

==================  ===========================================================================
reason              fires when
==================  ===========================================================================
security_privacy    account compromise, unauthorised access, data privacy / deletion requests
legal_refund        legal advice or action, a formal complaint, a request to authorise a refund
explicit_request    the customer asks for a human (agent, person, representative, manager...)
outage              the customer reports a service outage ("is down", "outage", "for everyone")
billing_dispute     a disputed charge above ``billing_dispute_threshold`` (USD)
frustration         three or more frustration indicators in the call so far (strong words,
                    ALL-CAPS words, runs of exclamation marks)
repeated_failure    two customer turns without resolution (the customer says the answer did
                    not help, or there were no sources to answer from)
low_confidence      the router asked for a human, or its confidence is under ``low_confidence_floor``
router_failure      every provider failed
==================  ===========================================================================

Service hours decide the handoff: ``live`` (a human joins now) inside them, ``callback``
(a human calls back) outside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from typing import Literal
from zoneinfo import ZoneInfo

Reason = Literal[
    "explicit_request", "frustration", "billing_dispute", "security_privacy", "legal_refund",
    "outage", "repeated_failure", "low_confidence", "router_failure",
]
Handoff = Literal["live", "callback"]


def _rx(*patterns: str) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


_SECURITY = _rx(
    r"\b(?:been |was |got |is )?hack(?:ed|ing)\b",
    r"\bcompromised\b",
    r"\bunauthori[sz]ed (?:access|login|log-?in|sign-?in|user)",
    r"\bsomeone (?:else )?(?:has )?(?:logged|signed|got|broke) (?:in|into)",
    r"\b(?:stolen|leaked) (?:password|credentials|account|data)",
    r"\b(?:password|credentials) (?:was|were|has been|have been) (?:stolen|leaked)",
    r"\bphishing\b",
    r"\bidentity theft\b",
    r"\bdata (?:breach|leak)\b",
    r"\bbreach\b",
    r"\bgdpr\b|\bccpa\b",
    r"\b(?:delete|erase|remove|export) (?:all )?(?:of )?my (?:personal )?(?:data|information|info)\b",
    r"\bright to be forgotten\b",
    r"\bprivacy (?:concern|issue|complaint|violation)",
    r"\b(?:my )?personal (?:data|information) (?:was|is|has been) (?:shared|sold|exposed)",
)
_LEGAL_REFUND = _rx(
    r"\b(?:lawyer|attorney|solicitor|lawsuit|litigation)\b",
    r"\b(?:sue|suing)\b",
    r"\blegal (?:action|advice|team|department|counsel)\b",
    r"\b(?:take|taking) (?:you|this) to court\b",
    r"\bsmall claims\b",
    r"\bformal(?:ly)? complain",
    r"\b(?:file|lodge|make|submit|raise) an? (?:official |formal )?complaint\b",
    r"\bombudsman\b|\bconsumer protection\b",
    r"\b(?:authori[sz]e|approve|issue|process) (?:a |my |the )?refund",
    r"\b(?:i want|i need|i demand|i'd like|i would like|give me) (?:a |my |the )?(?:full )?refund\b",
    r"\brefund me\b",
    r"\b(?:want|need|demand) my money back\b|\bgive me my money back\b",
    r"\bcharge ?back\b",
)
_EXPLICIT = _rx(
    r"\b(?:speak|talk|chat) (?:to|with) (?:a |an |the |your |some )?(?:real |live |actual )?"
    r"(?:human|person|agent|representative|rep|someone|somebody|manager|supervisor|operator)\b",
    r"\b(?:real|live|actual) (?:human|person|agent)\b",
    r"\b(?:get|connect|transfer|put) me (?:to|through to|with) (?:a |an |the |your )?"
    r"(?:human|person|agent|representative|manager|supervisor|operator|someone)\b",
    r"\b(?:i want|i need|i'd like|let me have|give me) (?:a |an |the |your )?"
    r"(?:human|person|agent|representative|manager|supervisor|operator)\b",
    r"\bescalate (?:this|me|my)\b",
    r"\bhuman,? please\b|\bagent,? please\b|\brepresentative,? please\b",
)
_OUTAGE = _rx(
    r"\boutage\b",
    r"\b(?:service|site|website|app|platform|system|server|servers|api|dashboard|everything|it) "
    r"(?:is|are|seems|seem to be|went|has gone|keeps going) (?:completely |totally )?down\b",
    r"\b(?:is|are) (?:you|your (?:service|servers|systems)) down\b",
    r"\bnot (?:working|loading) for (?:anyone|everyone|all of us|our whole|the whole)",
    r"\b(?:is|are|went|has gone|seems to be) (?:completely |totally )?down (?:for|across) "
    r"(?:everyone|everybody|all of us|us all|our whole|the whole|our entire|the entire|our (?:team|company|org))",
    r"\b(?:nobody|no one|none of us) (?:on my team |in my team |at my company )?can (?:log ?in|access|connect|reach)",
    r"\bservice (?:is )?unavailable\b|\b50[234] errors?\b",
)
_BILLING_CUE = _rx(
    r"\bdisput(?:e|es|ed|ing)\b", r"\bover-?charg",
    r"\b(?:charged|billed)\b[^.?!]{0,40}?\b(?:twice|double|two times|three times)\b",
    r"\bdouble[- ](?:charged|billed)\b", r"\bwrong(?:ly)? (?:charge|charged|amount|bill|billed|invoice)",
    r"\bincorrect (?:charge|amount|bill|invoice)", r"\bunauthori[sz]ed (?:charge|payment|transaction)",
    r"\b(?:didn't|did not|never) (?:authori[sz]e|approve|agree to|sign up for)",
    r"\bshould(?:n't| not) have been (?:charged|billed)\b", r"\bcharged (?:me )?for\b",
    r"\b(?:charge|charged|billed|bill|invoice|payment)\b.*\b(?:not right|mistake|error|wrong)\b",
    r"\brefund\b",
)
_AMOUNT = re.compile(
    r"(?:\$|usd ?|€|£)\s*(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s*(?:dollars|bucks|usd|euros?|pounds)\b",
    re.IGNORECASE,
)
_FRUSTRATION_WORDS = _rx(
    r"\bterrible\b", r"\bawful\b", r"\bworst\b", r"\bhorrible\b", r"\buseless\b", r"\bridiculous\b",
    r"\bunacceptable\b", r"\bfurious\b", r"\bpathetic\b", r"\bdisgusting\b", r"\bincompetent\b",
    r"\bfed up\b", r"\bsick (?:and tired )?of\b", r"\bhate\b", r"\bangry\b", r"\bannoyed\b",
    r"\bfrustrat(?:ed|ing)\b", r"\bjoke\b", r"\bwaste of (?:time|money)\b", r"\bnonsense\b",
)
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_CAPS_ALLOWED = {"API", "SSO", "URL", "CSV", "PDF", "SMS", "USD", "EUR", "GBP", "FAQ", "VPN", "DNS", "HTTP",
                 "HTTPS", "SAML", "GDPR", "CCPA", "CRM", "IOS", "MFA", "OTP", "PIN", "SLA", "SDK", "CEO",
                 "IBAN", "PII", "EMAIL", "PHONE", "CARD", "SSN"}
_EXCLAIM_RUN = re.compile(r"!{2,}")
_NOT_RESOLVED = _rx(
    r"\b(?:that|this|it) (?:didn't|did not|doesn't|does not|won't|will not) (?:help|work|fix|solve|answer)",
    r"\bstill (?:not|doesn't|does not|isn't|can't|cannot|won't|broken|failing|the same|getting|having|no)",
    r"\bnot what i (?:asked|meant|need|wanted)\b",
    r"\b(?:already|i've) tried (?:that|this|it)\b",
    r"\byou(?:'re| are) not (?:listening|understanding|helping)\b",
    r"\bthat'?s not (?:it|right|helpful|the problem)\b",
    r"\bno,? (?:that'?s|it'?s) (?:wrong|not)",
)

_WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SPELLED_AMOUNT = re.compile(
    r"\b((?:(?:" + "|".join(_WORD_NUMBERS) + r"|hundred|thousand|and|a)[\s-]+)+)(?:dollars|bucks|euros?|pounds)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class EscalationPolicy:
    """The tunable parts of the rules (from ``Settings``)."""

    billing_threshold: float = 100.0
    frustration_indicators: int = 3
    unresolved_attempts: int = 2
    #: below this router confidence the answer is likely wrong: hand over instead (the router's own
    #: threshold only adds a disclaimer; the offline extractive answerer's confidence is a cosine
    #: similarity, typically 0.4-0.7 for a good passage, so the floor sits well under that)
    low_confidence_floor: float = 0.3
    service_start: time = time(9, 0)
    service_end: time = time(18, 0)
    service_tz: str = "UTC"

    @classmethod
    def from_settings(cls, settings: object) -> "EscalationPolicy":
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
    """What the rules remember across the turns of one call."""

    frustration_indicators: int = 0
    unresolved_attempts: int = 0
    escalated: bool = False


@dataclass(frozen=True)
class Escalation:
    reason: Reason
    rule: str
    matched: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)

    @property
    def details(self) -> dict[str, object]:
        return {"rule": self.rule, "matched": self.matched, "also_matched": self.also}


def _matches(patterns: list[re.Pattern[str]], text: str) -> list[str]:
    return [m.group(0) for p in patterns for m in [p.search(text)] if m]


def _spelled_number(words: str) -> float | None:
    total, current = 0, 0
    seen = False
    for w in re.split(r"[\s-]+", words.lower().strip()):
        if w in _WORD_NUMBERS:
            current += _WORD_NUMBERS[w]
            seen = True
        elif w == "hundred":
            current = max(current, 1) * 100
            seen = True
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
            seen = True
    return float(total + current) if seen else None


def amounts(text: str) -> list[float]:
    """Money amounts in ``text``: ``$250``, ``250 dollars``, ``two hundred fifty dollars``."""
    out: list[float] = []
    for m in _AMOUNT.finditer(text):
        raw = (m.group(1) or m.group(2) or "").replace(",", "")
        try:
            out.append(float(raw))
        except ValueError:
            continue
    for m in _SPELLED_AMOUNT.finditer(text):
        value = _spelled_number(m.group(1))
        if value:
            out.append(value)
    return out


def frustration_indicators(text: str) -> list[str]:
    """Each strong word, ALL-CAPS word (not an acronym) and ``!!`` run counts as one indicator."""
    found = [m.group(0).lower() for p in _FRUSTRATION_WORDS for m in p.finditer(text)]
    found += [w for w in _CAPS_WORD.findall(text) if w not in _CAPS_ALLOWED]
    found += _EXCLAIM_RUN.findall(text)
    return found


def is_not_resolved(text: str) -> bool:
    """The customer says the previous answer did not solve the problem."""
    return bool(_matches(_NOT_RESOLVED, text))


class EscalationRules:
    def __init__(self, policy: EscalationPolicy | None = None) -> None:
        self.policy = policy or EscalationPolicy()

    def check_user_turn(self, text: str, state: CallState) -> Escalation | None:
        """Run the word rules on one customer turn; updates ``state``'s counters."""
        hits: list[tuple[Reason, str, list[str]]] = []
        if m := _matches(_SECURITY, text):
            hits.append(("security_privacy", "account security or data privacy", m))
        if m := _matches(_LEGAL_REFUND, text):
            hits.append(("legal_refund", "legal, formal complaint or refund authorisation", m))
        if m := _matches(_EXPLICIT, text):
            hits.append(("explicit_request", "asked for a human", m))
        if m := _matches(_OUTAGE, text):
            hits.append(("outage", "reported outage", m))
        cues = _matches(_BILLING_CUE, text)
        over = [a for a in amounts(text) if a > self.policy.billing_threshold]
        if cues and over:
            hits.append(("billing_dispute",
                         f"billing dispute over {self.policy.billing_threshold:g} USD",
                         cues + [f"{max(over):g}"]))
        indicators = frustration_indicators(text)
        state.frustration_indicators += len(indicators)
        if state.frustration_indicators >= self.policy.frustration_indicators:
            hits.append(("frustration",
                         f"{state.frustration_indicators} frustration indicators (>= "
                         f"{self.policy.frustration_indicators})", indicators))
        if is_not_resolved(text):
            state.unresolved_attempts += 1
            if state.unresolved_attempts >= self.policy.unresolved_attempts:
                hits.append(("repeated_failure",
                             f"{state.unresolved_attempts} attempts without resolution",
                             _matches(_NOT_RESOLVED, text)))
        if not hits:
            return None
        reason, rule, matched = hits[0]
        return Escalation(reason=reason, rule=rule, matched=matched, also=[h[0] for h in hits[1:]])

    def check_answer(self, *, failed: bool, escalate: bool, confidence: float | None, has_sources: bool,
                     state: CallState, error: str | None = None) -> Escalation | None:
        """Rules on the router's result: failure, the router's escalate flag or a confidence under the
        floor, and repeated non-answers (no sources counts as an attempt without resolution)."""
        if failed:
            return Escalation("router_failure", "every answer provider failed", [error or "error"])
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
        now = now or datetime.now(timezone.utc)
        local = now.astimezone(ZoneInfo(self.policy.service_tz)).time()
        start, end = self.policy.service_start, self.policy.service_end
        inside = start <= local < end if start <= end else (local >= start or local < end)
        return "live" if inside else "callback"


_REASON_TEXT: dict[str, str] = {
    "explicit_request": "Of course, I'll get you to a person.",
    "frustration": "I'm sorry this has been so frustrating. Let me bring in a colleague.",
    "billing_dispute": "A billing specialist needs to look at that charge.",
    "security_privacy": "Account security and privacy matters go straight to our specialist team.",
    "legal_refund": "That needs a member of our team to review and authorise.",
    "outage": "Thanks for reporting this; I'm flagging it to our on-call team.",
    "repeated_failure": "I haven't been able to solve this for you, so I'm bringing in a colleague.",
    "low_confidence": "I'm not certain enough to answer that correctly, so I'm bringing in a colleague.",
    "router_failure": "I'm sorry, I'm having technical trouble answering right now.",
}


def customer_message(reason: str, handoff: Handoff, *, with_reason: bool = True) -> str:
    """What the customer hears: why (unless already said, e.g. by the router's apology), and what
    happens next."""
    first = _REASON_TEXT.get(reason, "Let me bring in a colleague.") + " " if with_reason else ""
    if handoff == "live":
        return f"{first}I'm connecting you with a member of our support team now; please stay on the line."
    return (f"{first}Our team is offline right now, so I've opened a case and a member of our support "
            "team will call you back during service hours.")


def already_escalated_message(handoff: Handoff) -> str:
    if handoff == "live":
        return "A member of our support team has been asked to join this call and will be with you shortly."
    return "I've already opened a case for you; a member of our support team will call you back during service hours."
