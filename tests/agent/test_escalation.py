"""Each escalation trigger fires on its own words, explains itself, and ordinary questions pass."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from agent.escalation import (CallState, EscalationPolicy, EscalationRules, amounts, customer_message,
                              frustration_indicators)

RULES = EscalationRules(EscalationPolicy(billing_threshold=100.0))


@pytest.mark.parametrize("text, reason", [
    ("Can I please speak to a human?", "explicit_request"),
    ("Transfer me to a manager right now", "explicit_request"),
    ("I want a real person", "explicit_request"),
    ("This is TERRIBLE!! the worst app ever", "frustration"),
    ("I was charged $250 for a plan I never signed up for, I want to dispute it", "billing_dispute"),
    ("You overcharged me three hundred dollars on my invoice", "billing_dispute"),
    ("I think my account was hacked, someone logged into it", "security_privacy"),
    ("Please delete all my personal data under GDPR", "security_privacy"),
    ("I'm going to talk to my lawyer about this", "legal_refund"),
    ("I want to file a formal complaint", "legal_refund"),
    ("I want a full refund for last month", "legal_refund"),
    ("Your service is down, nobody on my team can log in", "outage"),
    ("Is there an outage right now?", "outage"),
    ("I was charged $2,400 twice and I'm disputing it with my bank", "billing_dispute"),
    ("Orbitly is down for our whole company", "outage"),
])
def test_each_trigger_fires_with_its_reason(text: str, reason: str) -> None:
    esc = RULES.check_user_turn(text, CallState())
    assert esc is not None, text
    assert esc.reason == reason
    assert esc.matched, "every decision names the words that made it"
    assert esc.details["rule"]


@pytest.mark.parametrize("text", [
    "How do I reset my password?",
    "What is your refund policy for annual plans?",
    "Can I get a refund if I downgrade?",
    "How much does the Business plan cost, is it $12 per seat?",
    "We were charged $40 twice this month",          # under the threshold: the KB answers it
    "How do I set up SSO with Okta?",
    "What does error E-2001 mean?",
    "The download is down for maintenance?",
])
def test_ordinary_questions_do_not_escalate(text: str) -> None:
    assert RULES.check_user_turn(text, CallState()) is None


def test_frustration_accumulates_over_the_call() -> None:
    state = CallState()
    assert RULES.check_user_turn("this is ridiculous", state) is None
    assert RULES.check_user_turn("honestly this is awful", state) is None
    esc = RULES.check_user_turn("what a waste of time", state)
    assert esc is not None and esc.reason == "frustration"
    assert state.frustration_indicators == 3


def test_caps_acronyms_are_not_shouting() -> None:
    assert frustration_indicators("My SSO and API keys fail with HTTPS") == []
    assert frustration_indicators("WHY IS THIS BROKEN!!!") == ["WHY", "THIS", "BROKEN", "!!!"]


def test_two_unresolved_attempts_escalate() -> None:
    state = CallState()
    assert RULES.check_user_turn("That didn't help", state) is None
    esc = RULES.check_user_turn("It still doesn't work", state)
    assert esc is not None and esc.reason == "repeated_failure"


def test_router_results_escalate() -> None:
    def check(state: CallState | None = None, **kw):  # type: ignore[no-untyped-def]
        args = dict(failed=False, escalate=False, confidence=0.6, has_sources=True)
        return RULES.check_answer(state=state or CallState(), **{**args, **kw})

    failed = check(failed=True, error="timeout")
    assert failed is not None and failed.reason == "router_failure" and failed.matched == ["timeout"]
    flagged = check(escalate=True)
    assert flagged is not None and flagged.reason == "low_confidence"
    floor = check(confidence=0.1)
    assert floor is not None and floor.reason == "low_confidence" and "0.10" in floor.rule
    assert check(confidence=0.55) is None, "a disclaimer-level answer is still an answer"
    state = CallState()
    assert check(state, has_sources=False) is None
    again = check(state, has_sources=False)
    assert again is not None and again.reason == "repeated_failure"


def test_billing_threshold_is_configurable() -> None:
    text = "I was overcharged $80 on my last invoice"
    assert RULES.check_user_turn(text, CallState()) is None
    strict = EscalationRules(EscalationPolicy(billing_threshold=50))
    esc = strict.check_user_turn(text, CallState())
    assert esc is not None and esc.reason == "billing_dispute"


def test_amount_parsing() -> None:
    assert amounts("$1,250.50 and 30 dollars") == [1250.5, 30.0]
    assert amounts("two hundred and fifty dollars") == [250.0]


def test_service_hours_decide_live_or_callback() -> None:
    rules = EscalationRules(EscalationPolicy(service_start=time(9), service_end=time(18), service_tz="UTC"))
    assert rules.handoff(datetime(2025, 3, 4, 10, 30, tzinfo=timezone.utc)) == "live"
    assert rules.handoff(datetime(2025, 3, 4, 18, 0, tzinfo=timezone.utc)) == "callback"
    assert rules.handoff(datetime(2025, 3, 4, 3, 0, tzinfo=timezone.utc)) == "callback"
    night = EscalationRules(EscalationPolicy(service_start=time(22), service_end=time(6), service_tz="UTC"))
    assert night.handoff(datetime(2025, 3, 4, 23, 0, tzinfo=timezone.utc)) == "live"
    assert night.handoff(datetime(2025, 3, 4, 12, 0, tzinfo=timezone.utc)) == "callback"
    ny = EscalationRules(EscalationPolicy(service_tz="America/New_York"))
    assert ny.handoff(datetime(2025, 7, 1, 14, 0, tzinfo=timezone.utc)) == "live"   # 10:00 in New York
    assert ny.handoff(datetime(2025, 7, 1, 23, 0, tzinfo=timezone.utc)) == "callback"


def test_customer_hears_what_happens_next() -> None:
    assert "connecting you" in customer_message("explicit_request", "live")
    assert "call you back" in customer_message("outage", "callback")


def test_policy_from_settings() -> None:
    from agent.settings import Settings

    s = Settings(billing_dispute_threshold=250, service_hours_start="08:30", service_hours_end="17:00")
    p = EscalationPolicy.from_settings(s)
    assert p.billing_threshold == 250 and p.service_start == time(8, 30) and p.service_end == time(17)
