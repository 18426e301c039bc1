"""Each escalation trigger fires on its own words, explains itself, and ordinary questions pass."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from callwise.handoff.escalation import (
    MAX_RULE_CHARS,
    CallState,
    EscalationPolicy,
    EscalationRules,
    amounts,
    frustration_indicators,
    frustration_points,
    reason_sentence,
    recorded_message,
    rule_text,
)

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
    # as speech to text writes them: no capitals, no "!!"
    ("Is the API down?", "outage"),
    ("is the website down", "outage"),
    ("This is useless, I'm furious.", "frustration"),
    ("i'm so fed up with this nothing works", "frustration"),
    ("There's a login from another country that wasn't me.", "security_privacy"),
    ("I'd like my money back, please.", "legal_refund"),
    ("we were charged two hundred and fifty dollars after we downgraded, that shouldn't have happened",
     "billing_dispute"),
    ("Um, is there a human I can talk to?", "explicit_request"),
    ("Representative.", "explicit_request"),
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
    # the misfires measured on the golden set and the probe (issue 10)
    "THANK YOU SO MUCH",
    "I need an agent seat for a new teammate.",
    "How do I delete my data export?",
    # hard negatives: trigger words inside ordinary questions
    "Can I still get a full refund?",
    "Is Orbitly GDPR compliant?",
    "How do I scroll down to the billing section on mobile?",
    "What's the worst case if a payment fails three times?",
    "My colleague Sue can't log in. Can you check her seat?",
    "If I add 20 seats, will I be charged $240 right away or at renewal?",
    "Our lawyer needs a copy of the data processing agreement. Where do I download it?",
    # "your support team" inside a question is not a request for one (the alternatives of the human
    # pattern used to leak out of their group)
    "Can your support team see my private docs?",
    "Does customer service work on weekends?",
])
def test_ordinary_questions_do_not_escalate(text: str) -> None:
    assert RULES.check_user_turn(text, CallState()) is None


@pytest.mark.parametrize("text, reason", [
    # phrasings of the first fresh set, written after the rules froze and missed then (63.4% recall)
    ("Okay, this isn't working for me. Can I please be connected to somebody on your side?", "explicit_request"),
    ("Yeah, can you put me in touch with a support person?", "explicit_request"),
    ("This is absolutely infuriating.", "frustration"),
    ("You're wasting my time.", "frustration"),
    ("My laptop was stolen and it's still signed in to Orbitly.", "security_privacy"),
    ("I think our API token leaked on a public GitHub repo.", "security_privacy"),
    ("I'm entitled to a refund under consumer law.", "legal_refund"),
    ("Reimburse us for the months we couldn't use it.", "legal_refund"),
    ("are you down", "outage"),
    ("Every single request to your API is failing with a 500.", "outage"),
    ("We see two identical charges of $1,100 this month.", "billing_dispute"),
])
def test_speech_phrasings_of_the_first_fresh_set(text: str, reason: str) -> None:
    esc = RULES.check_user_turn(text, CallState())
    assert esc is not None and esc.reason == reason and esc.matched


def test_repeated_failure_in_plain_speech() -> None:
    state = CallState()
    assert RULES.check_user_turn("Nah, that didn't do anything.", state) is None
    esc = RULES.check_user_turn("Still the same, nothing's changed.", state)
    assert esc is not None and esc.reason == "repeated_failure"


def test_frustration_accumulates_over_the_call() -> None:
    state = CallState()
    assert RULES.check_user_turn("why is the sync so slow?", state) is None
    assert RULES.check_user_turn("that's annoying", state) is None
    assert state.frustration_indicators == 1
    esc = RULES.check_user_turn("honestly this is awful", state)
    assert esc is not None and esc.reason == "frustration"
    assert state.frustration_indicators == 3 and "awful" in esc.matched


def test_frustration_weights() -> None:
    assert frustration_points("that's annoying")[0] == 1
    assert frustration_points("the export is useless")[0] == 2
    assert frustration_points("your app is useless")[0] == 3  # aimed at the service
    # declared anger counts once at its weight, not again for the word inside it
    assert frustration_points("I'm furious") == (3, ["i'm furious"])
    assert frustration_points("useless, I'm furious")[0] == 5  # was 2, under the threshold of 3


def test_caps_acronyms_and_thanks_are_not_shouting() -> None:
    assert frustration_indicators("My SSO and API keys fail with HTTPS") == []
    assert frustration_indicators("THANK YOU SO MUCH") == []
    assert frustration_points("WHY IS THIS BROKEN!!!")[0] == 2  # typed shouting: caps 1, "!!!" 1


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
    floor = check(confidence=0.05)
    assert floor is not None and floor.reason == "low_confidence" and "0.05" in floor.rule
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
    assert rules.handoff(datetime(2025, 3, 4, 10, 30, tzinfo=UTC)) == "live"
    assert rules.handoff(datetime(2025, 3, 4, 18, 0, tzinfo=UTC)) == "callback"
    assert rules.handoff(datetime(2025, 3, 4, 3, 0, tzinfo=UTC)) == "callback"
    night = EscalationRules(EscalationPolicy(service_start=time(22), service_end=time(6), service_tz="UTC"))
    assert night.handoff(datetime(2025, 3, 4, 23, 0, tzinfo=UTC)) == "live"
    assert night.handoff(datetime(2025, 3, 4, 12, 0, tzinfo=UTC)) == "callback"
    ny = EscalationRules(EscalationPolicy(service_tz="America/New_York"))
    assert ny.handoff(datetime(2025, 7, 1, 14, 0, tzinfo=UTC)) == "live"   # 10:00 in New York
    assert ny.handoff(datetime(2025, 7, 1, 23, 0, tzinfo=UTC)) == "callback"


def test_customer_hears_only_what_happened() -> None:
    """The built-in escalator connects no one: it says a case was recorded (with its number) or that
    it could not pass the call on; the reason sentence shared with callwise.handoff.service promises nothing."""
    said = recorded_message("explicit_request", "CW-1042")
    assert said.endswith("case number C W 1 0 4 2.") and "connect" not in said
    assert "can't pass this" in recorded_message("outage", None)
    for reason in ("explicit_request", "frustration", "billing_dispute", "security_privacy", "legal_refund",
                   "outage", "repeated_failure", "low_confidence", "router_failure"):
        sentence = reason_sentence(reason)
        assert not any(p in sentence for p in ("connect", "bring", "flagging", "straight to", "transfer"))


def test_policy_from_settings() -> None:
    from callwise.wiring.settings import Settings

    s = Settings(billing_dispute_threshold=250, service_hours_start="08:30", service_hours_end="17:00")
    p = EscalationPolicy.from_settings(s)
    assert p.billing_threshold == 250 and p.service_start == time(8, 30) and p.service_end == time(17)


def test_long_turn_is_capped_and_still_read(tmp_path: object) -> None:
    """A pasted 100 kB turn: the rules read its head and tail only (``MAX_RULE_CHARS``), so the
    cost is bounded; what is said at either end still counts, what is buried in the middle does not."""
    filler = "we use the board view for planning and the list view for triage. " * 1600
    assert len(filler) > 100_000
    capped = rule_text(filler)
    assert len(capped) <= MAX_RULE_CHARS + 5 and capped.startswith(filler[:100]) and capped.endswith(filler[-100:])
    assert RULES.check_user_turn(filler, CallState()) is None
    assert (esc := RULES.check_user_turn("Is the API down? " + filler, CallState())) and esc.reason == "outage"
    assert (esc := RULES.check_user_turn(filler + " can I talk to a real person", CallState())) \
        and esc.reason == "explicit_request"
    middle = filler[:50_000] + " I want to speak to a manager. " + filler[50_000:]
    assert RULES.check_user_turn(middle, CallState()) is None


@pytest.mark.timeout(30)  # a hang guard, not a timing assertion (timings: bench/escalation.py)
def test_number_words_and_digit_runs_are_linear() -> None:
    """16k characters of number words took 3.8 s with the old spelled-amount pattern; the amount
    parser now reads the words once. Long digit runs and many 'charge' words are bounded too."""
    words = ("one two three four five six seven eight nine " * 400)[:16_000]
    assert amounts(words + " apples") == []
    assert amounts("one two three four five six seven eight nine " * 3 + "dollars") == []  # a list, not an amount
    digits = "1" * 100_000
    assert amounts(digits + " dollars") == []  # beyond the rules' cap, and no 100k-digit amount
    assert RULES.check_user_turn("charge " * 20_000 + " wrong", CallState()) is None
    assert amounts("a hundred bucks and twenty-five euros") == [100.0, 25.0]


@pytest.mark.parametrize("text, value", [
    ("you charged me three forty nine", 349.0),
    ("two hundred and fifty bucks", 250.0),
    ("they billed us two point five k for the year", 2500.0),
    ("a payment of one twenty nine ninety nine", 129.99),
    ("twelve fifty dollars", 1250.0),
    ("two and a half thousand dollars", 2500.0),
    ("it was a grand more than last year", 1000.0),
    ("eleven hundred dollars", 1100.0),
    ("three hundred quid", 300.0),
    ("charged 2.5k", 2500.0),
    ("the invoice for four thousand three hundred and twenty", 4320.0),
])
def test_amounts_said_as_words(text: str, value: float) -> None:
    assert amounts(text) == [value]


@pytest.mark.parametrize("text", ["i have three seats", "we were billed for two hundred seats", "charged us twice",
                                  "call me at nine", "we paid 12 dollars for 3 seats"])
def test_numbers_that_are_not_money(text: str) -> None:
    assert all(a < 100 for a in amounts(text))


def test_a_disputed_amount_in_words_escalates_and_one_under_the_threshold_does_not() -> None:
    esc = RULES.check_user_turn("there's three forty nine on my card from you that i never authorised", CallState())
    assert esc is not None and esc.reason == "billing_dispute" and "349" in esc.matched
    assert RULES.check_user_turn("there's forty nine dollars on my card that i never authorised", CallState()) is None


@pytest.fixture(scope="module")
def learned() -> EscalationRules:
    from callwise.knowledge.embeddings import Embedder

    rules = EscalationRules.with_embedder(EscalationPolicy(billing_threshold=100.0), Embedder().encode)
    assert rules.detector is not None, "the shipped model is missing: run bench/escalation_train.py"
    return rules


@pytest.mark.parametrize("text, reason", [
    ("could somebody from your office give me a ring this afternoon", "explicit_request"),
    ("i opened my laptop and all my messages had been forwarded to an address i've never seen", "security_privacy"),
    ("my colleagues in the other office can't get in either, nothing loads for any of us", "outage"),
])
def test_the_detector_reads_what_no_rule_lists(learned: EscalationRules, text: str, reason: str) -> None:
    """Phrasings outside the word rules (checked: no rule fires) escalate through the learned detector,
    and the decision names its probability and its nearest training turns."""
    assert RULES.check_user_turn(text, CallState()) is None
    esc = learned.check_user_turn(text, CallState())
    assert esc is not None and esc.reason == reason, esc
    assert esc.rule.startswith("learned detector") and esc.probability is not None and esc.probability > 0.05
    assert len(esc.nearest) == 3 and all('"' in n for n in esc.nearest)
    assert esc.details["probability"] == round(esc.probability, 3)


@pytest.mark.parametrize("text", [
    "how do i set up the human handoff feature for our own chatbot", "how do i see my own login history",
    "what's your refund policy for annual plans", "how many agent seats come with the business plan",
    "my colleague wants to know how to pin a message",
])
def test_the_detector_leaves_ordinary_questions_alone(learned: EscalationRules, text: str) -> None:
    assert learned.check_user_turn(text, CallState()) is None


def test_a_restated_need_after_answers_is_repeated_failure(learned: EscalationRules) -> None:
    """No "that didn't help": the caller asks for the same thing again after two answers."""
    state = CallState()
    turns = ["how do i get my contacts out of orbitly as a spreadsheet",
             "right but where exactly is the contacts export",
             "i still can't work out how to export the contacts to a spreadsheet"]
    fired = None
    for t in turns:
        fired = learned.check_user_turn(t, state)
        if fired:
            break
        learned.observe_answer(state, unsure=False)
    assert fired is not None and fired.reason == "repeated_failure"


def test_an_unsure_answer_to_a_first_question_asks_once(learned: EscalationRules) -> None:
    state = CallState()
    learned.check_user_turn("how do i change the owner of a workspace", state)
    learned.observe_answer(state, unsure=True)
    assert learned.wants_offer(state, answer_unsure=True)
    state.offered = True
    assert not learned.wants_offer(state, answer_unsure=True)  # once per call


def test_low_confidence_floor_is_the_fitted_probability() -> None:
    """The floor is a probability of being right, fitted with the calibration (not a cosine)."""
    from callwise.routing.calibration import load_calibration

    fitted = load_calibration().methods["extractive"].escalate_below
    assert EscalationPolicy().low_confidence_floor == fitted < 0.3
    rules = EscalationRules(EscalationPolicy(low_confidence_floor=0.5))
    esc = rules.check_answer(failed=False, escalate=False, confidence=0.4, has_sources=True, state=CallState())
    assert esc is not None and esc.reason == "low_confidence" and "0.40 below 0.5" in esc.rule


def test_a_restated_need_that_ends_solved_is_not_repeated_failure(learned: EscalationRules) -> None:
    """The caller comes back to the same thing, then says it is solved: no escalation."""
    state = CallState()
    turns = ["my profile picture won't upload", "hmm it's still failing with the png",
             "oh yeah converted it to a jpeg, sorted, cheers"]
    for t in turns:
        assert learned.check_user_turn(t, state) is None, t
        learned.observe_answer(state, unsure=False)
