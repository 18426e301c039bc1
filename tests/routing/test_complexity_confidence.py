from __future__ import annotations

import math

import pytest

from routing.complexity import analyze
from routing.confidence import from_logprobs, parse_score
from routing.pricing import Price


def test_whole_words_only() -> None:
    # the seed counted "if" inside "difference" and "api" inside "rapid"
    c = analyze("What is the difference between plans for rapid teams")
    assert "conditional" not in c.factors and "technical" not in c.factors and c.tier == "tier1"
    assert analyze("What if I cancel").factors == {"conditional": 0.1}


def test_factors_and_thresholds() -> None:
    assert analyze("How do I reset my password?").tier == "tier1"
    c = analyze("How do I set up SSO with SAML and SCIM?")
    assert c.factors["multi_question"] == 0.3 and c.factors["technical"] == pytest.approx(0.4)  # capped
    assert c.matched["technical"] == ["saml", "scim", "sso"] and c.tier == "tier3"
    long_q = " ".join(["word"] * 31) + "?"
    assert analyze(long_q).factors == {"length": 0.2}
    assert analyze("How much? And when?").factors["multi_question"] == 0.3
    assert analyze("x " * 500 + " api webhook sso saml oauth and if?").score == 1.0


def test_code_goes_to_tier3_and_explains() -> None:
    c = analyze("Can you fix this regex")
    assert c.tier == "tier3" and c.matched["code"] == ["regex"] and c.score == 0.0
    assert c.as_dict()["factors"] == {}


def test_geometric_mean() -> None:
    assert from_logprobs([math.log(0.5), math.log(0.5)]) == pytest.approx(0.5)
    assert from_logprobs([math.log(0.9), math.log(0.1)]) == pytest.approx(0.3)
    assert from_logprobs([]) is None and from_logprobs(None) is None
    assert from_logprobs([None, math.log(0.5)]) == pytest.approx(0.5)  # type: ignore[list-item]


def test_impossible_token_is_not_dropped() -> None:
    """A -inf token had probability 0: dropping it would raise the confidence of the answer."""
    without = from_logprobs([-0.1, -0.1])
    with_inf = from_logprobs([float("-inf"), -0.1, -0.1])
    assert with_inf == 0.0 and without is not None and with_inf < without
    assert from_logprobs([float("nan"), -0.1]) is None
    assert from_logprobs([0.5, -0.1]) is None  # a positive log-probability is not a probability


@pytest.mark.parametrize("text, score", [
    ("8", 0.8), ("Score: 7.5/10", 0.75), ("**9**", 0.9), ("9 out of 10", 0.9), ("I'd say eight.", 0.8),
    ("10", 1.0), ("0", 0.0), ("The answer deserves a 6.", 0.6),
    ("", None), ("good", None), ("42", None), ("-3", None), ("11/10", None),
])
def test_parse_score(text: str, score: float | None) -> None:
    assert parse_score(text) == score


def test_price_with_cache() -> None:
    p = Price(3.0, 15.0, 0.30, 3.75)
    assert p.cost(1_000_000, 0) == pytest.approx(3.0)
    assert p.cost(1_000_000, 1_000_000, cached_tokens=500_000) == pytest.approx(1.5 + 0.15 + 15.0)
    assert p.cost(1_000, 0, cache_write_tokens=1_000) == pytest.approx(0.00375)
    assert Price().cost(10**6, 10**6) == 0
