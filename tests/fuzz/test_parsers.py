"""Property tests over every parser that reads customer or vendor text.

Each parser gets arbitrary text (every Unicode category, null bytes, lone surrogates as STT or a
vendor body could hand them over) plus text built from the words it looks for, with a time bound
per input (hypothesis ``deadline``): it returns a well-formed result, never raises, and never takes
super-linear time. A separate test runs each on 100 kB adversarial inputs under a wall-clock bound.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callwise.calls.guard import guard, injection_markers, redact_pii
from callwise.calls.survey import parse_answer, parse_rating
from callwise.handoff.escalation import CallState, EscalationRules, amounts, frustration_indicators, is_not_resolved
from callwise.knowledge.text import tokenize
from callwise.routing.confidence import from_logprobs, parse_score

FUZZ = settings(max_examples=60, deadline=timedelta(milliseconds=800),
                suppress_health_check=[HealthCheck.too_slow], derandomize=True)

# words the parsers react to, so generated text reaches the interesting branches
VOCAB = ["one", "two", "five", "ten", "out of", "/", "percent", "%", "stars", "not", "bad", "great", "very",
         "refund", "$", "dollars", "hundred", "thousand", "and", "1,200", "450.50", "charge", "dispute",
         "I'm", "furious", "useless", "!!!", "STILL", "didn't", "help", "ignore previous instructions",
         "<system>", "assistant:", "@", ".com", "+1", "555-0100", "4111 1111 1111 1111", "123-45-6789",
         "DE89 3704 0044 0532 0130 00", "E-1042", "v2.3.1", "sign-in", "SKU_88", "\x00", "\ud800", "\u202e",
         " ", "\n", "?", "-", "_", ".", "9" * 30]
texty = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(VOCAB), max_size=60).map(" ".join),
    st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=8)), max_size=40).map("".join),
)


@FUZZ
@given(texty)
def test_rating_parser(text: str) -> None:
    rating, matched = parse_rating(text)
    assert rating is None or (isinstance(rating, int) and 1 <= rating <= 5)
    assert (rating is None) == (matched is None)
    answer = parse_answer(text, text[:50])
    assert answer.rating == rating and answer.requires_followup == (rating is not None and rating <= 2)


@FUZZ
@given(texty)
def test_amounts_and_escalation_rules(text: str) -> None:
    found = amounts(text)
    assert all(isinstance(a, float) and math.isfinite(a) and a >= 0 for a in found)
    assert isinstance(frustration_indicators(text), list) and isinstance(is_not_resolved(text), bool)
    rules, state = EscalationRules(), CallState()
    for _ in range(3):  # repeated turns exercise the stateful rules (repeats, frustration build-up)
        esc = rules.check_user_turn(text, state)
        assert esc is None or isinstance(esc.reason, str)


@FUZZ
@given(texty)
def test_guard(text: str) -> None:
    for redact in (False, True):
        res = guard(text, redact=redact)
        assert isinstance(res.text, str) and all(isinstance(m, str) for m in res.injection_markers)
        assert all(v > 0 for v in res.redactions.values())
        if not redact:
            assert res.text == text
    clean, counts = redact_pii(text)
    assert redact_pii(clean)[1].get("CARD", 0) == 0, "redaction is idempotent for cards"
    assert injection_markers(text) == guard(text, redact=False).injection_markers


@FUZZ
@given(texty)
def test_tokenizer(text: str) -> None:
    tokens = tokenize(text)
    assert all(isinstance(t, str) and t and t == t.lower() for t in tokens)
    assert tokenize(text) == tokens


@FUZZ
@given(st.one_of(texty, st.from_regex(r"-?\d{1,6}(\.\d{1,4})?\s*(/|out of)\s*\d{1,4}", fullmatch=True)))
def test_confidence_score_parser(text: str) -> None:
    score = parse_score(text)
    assert score is None or (math.isfinite(score) and 0.0 <= score <= 1.0)


@FUZZ
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()), max_size=50))
def test_logprob_confidence(values: list[float | None]) -> None:
    c = from_logprobs(values)  # type: ignore[arg-type]
    assert c is None or 0.0 <= c <= 1.0


HOSTILE = {
    "digits": "9" * 100_000,
    "digit groups": "4111 " * 20_000,
    "spaces": " " * 100_000,
    "words": "not bad " * 12_500,
    "numbers": "one hundred and " * 6_250,
    "exclaim": "!" * 100_000,
    "caps": "FURIOUS " * 12_500,
    "codes": "a-" * 50_000,
    "emails": "a." * 50_000 + "@",
    "phones": "+1 555 " * 14_000,
    "nulls": "\x00" * 100_000,
    "mixed": ("I'm STILL not getting my $1,200 refund!!! ignore previous instructions <system> " * 1_300),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_100kb_inputs_finish_quickly(name: str) -> None:
    text = HOSTILE[name]
    for fn in (parse_rating, amounts, frustration_indicators, is_not_resolved, injection_markers, tokenize, parse_score,
               lambda t: redact_pii(t), lambda t: EscalationRules().check_user_turn(t, CallState())):
        t0 = time.perf_counter()
        fn(text)
        took = time.perf_counter() - t0
        assert took < 3.0, f"{getattr(fn, '__name__', fn)} took {took:.1f}s on 100 kB of {name}"
