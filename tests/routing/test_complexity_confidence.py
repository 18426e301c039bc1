from __future__ import annotations

import math
from pathlib import Path

import pytest

from callwise.routing.calibration import EXTRACTIVE_FEATURES, PARAMS_PATH, Calibration, load_calibration, overlap
from callwise.routing.complexity import analyze
from callwise.routing.confidence import Confidence, from_logprobs, parse_score
from callwise.routing.pricing import Price
from callwise.routing.providers.extractive import ExtractiveProvider
from callwise.routing.router import DISCLAIMER, CascadingRouter, Tier
from callwise.routing.types import Generation, SourceDoc


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


# --- calibrated confidence (callwise.routing.calibration) --------------------------------------------------
def test_confidence_is_a_probability() -> None:
    c = Confidence(0.7, "extractive", raw=0.55, calibrated=True, disclaim_below=0.6)
    assert c.value == 0.7 and c.method == "extractive"
    for bad in (1.2, -0.1, float("nan")):
        with pytest.raises(ValueError):
            Confidence(bad, "logprobs")


def test_fitted_models_map_raw_scores() -> None:
    cal = Calibration.from_dict({"methods": {
        "extractive": {"kind": "logistic", "features": ["best", "abstained"], "mean": [0.5, 0.0],
                       "scale": [0.1, 1.0], "coef": [2.0, -3.0], "intercept": 0.0,
                       "disclaim_below": 0.6, "escalate_below": 0.2},
        "self_eval": {"kind": "isotonic", "xs": [0.0, 0.5, 1.0], "ys": [0.1, 0.3, 0.9], "disclaim_below": 0.5},
    }})
    gen = Generation(text="The link is valid for 60 minutes.", model="x", confidence=0.5,
                     signals={"best": 0.5, "second": 0.4})
    src = [SourceDoc(1, "doc", "Reset", "The link is valid for 60 minutes.")]
    mid = cal.extractive("how long is the link valid", gen, src, abstained=False)
    assert mid.calibrated and mid.method == "extractive" and mid.value == pytest.approx(0.5)
    high = cal.extractive("q", Generation("a", "x", confidence=0.7, signals={"best": 0.7}), src, abstained=False)
    low = cal.extractive("q", Generation("a", "x", confidence=0.7, signals={"best": 0.7}), src, abstained=True)
    assert high.value == pytest.approx(1 / (1 + math.exp(-4))) and low.value < high.value
    assert cal.score("self_eval", 0.75).value == pytest.approx(0.6)  # interpolated between fitted steps
    assert cal.score("self_eval", 2.0).value == pytest.approx(0.9)   # clipped at the ends
    unfitted = cal.score("logprobs", 0.42)
    assert unfitted.value == 0.42 and not unfitted.calibrated
    assert cal.disclaim_below("extractive", 0.8) == 0.6 and cal.disclaim_below("logprobs", 0.8) == 0.8
    assert cal.escalate_below(0.3) == 0.2 and Calibration({}).escalate_below(0.3) == 0.3
    # no signals (a provider-native score from elsewhere): passed through, not called a probability
    plain = cal.extractive("q", Generation("a", "x", confidence=0.9), src)
    assert plain.method == "provider" and not plain.calibrated and plain.value == 0.9
    with pytest.raises(ValueError):
        Calibration.from_dict({"methods": {"x": {"kind": "spline", "disclaim_below": 0.5}}})


def test_shipped_parameters_load() -> None:
    cal = load_calibration(str(PARAMS_PATH))
    spec = cal.methods["extractive"]
    assert spec.model.features == EXTRACTIVE_FEATURES  # type: ignore[union-attr]
    assert spec.escalate_below is not None and 0 < spec.escalate_below <= spec.disclaim_below < 1
    assert spec.fitted_on["items"] >= 75


def test_term_overlap() -> None:
    assert overlap("How long is the reset link valid?", "The reset link is valid for 60 minutes.") == 0.75
    assert overlap("How do I stash changes?", "Use git stash push.") == pytest.approx(0.5)
    assert overlap("what is it", "anything") == 0.0  # no content words


KB = Path(__file__).resolve().parents[2] / "examples" / "kb"


def _kb_sources(*paths: str) -> list[SourceDoc]:
    return [SourceDoc(i, p, p, (KB / p).read_text(encoding="utf-8")) for i, p in enumerate(paths, start=1)]


async def test_disclaimer_on_right_and_wrong_answers() -> None:
    """The real extractive answerer, the real MiniLM model and the shipped calibration through the
    router: answers that state the fact asked for go out without the disclaimer (the raw cosine of
    0.6-0.8 used to be held against 0.8 and disclaimed them); answers built from passages that do
    not hold the fact (the answerer borrows the nearest sentence) get it."""
    from callwise.knowledge.embeddings import Embedder

    router = CascadingRouter([Tier("tier1", ExtractiveProvider(Embedder().encode))])
    right = [
        ("How many security keys can I register?", "up to 5 security keys",
         ("accounts/two-factor-authentication.md", "accounts/reset-password.md")),
        ("Do you accept crypto?", "do not accept cryptocurrency", ("billing/payment-methods.md", "billing/refunds.md")),
        ("Does Google Workspace support SCIM with Orbitly?", "does not provide SCIM",
         ("sso/scim-provisioning.md", "sso/jit-provisioning.md")),
        # the proration example states the price in bold; before bold prose was read as code, this
        # page had no sentence with the price and the question was one of the wrong ones below
        ("How much does the Business plan cost per user?", "$15 per user per month",
         ("billing/seats-and-proration.md", "billing/refunds.md")),
    ]
    wrong = [
        ("How long is the password reset link valid?", ("accounts/change-email.md",
                                                         "accounts/two-factor-authentication.md")),
        ("What does error E-4290 mean?", ("plans/sla-and-service-credits.md",
                                          "error-codes/e-5003-service-unavailable.md")),
        ("How many backup codes do I get?", ("accounts/reset-password.md", "accounts/change-email.md")),
        ("Can guests be invited on the free plan?", ("plans/free-trial.md", "billing/seats-and-proration.md")),
    ]
    bar = load_calibration().disclaim_below("extractive", 0.8)
    disclaimed_right = 0
    for question, fact, paths in right:
        ans = await router.answer(question, _kb_sources(*paths), organization_id="org")
        assert fact in ans.text and ans.confidence_method == "extractive"
        assert ans.confidence is not None and 0 <= ans.confidence <= 1
        disclaimed_right += ans.low_confidence
        assert ans.low_confidence == (DISCLAIMER in ans.text) == (ans.confidence < bar)
    caught = 0
    for question, paths in wrong:
        ans = await router.answer(question, _kb_sources(*paths), organization_id="org")
        caught += ans.low_confidence and ans.text.endswith(DISCLAIMER)
    # the calibration catches about 60% of wrong answers at its operating point (bench/confidence.py):
    # here the reset-link question answered with the email-change link's "valid for 24 hours" (same
    # kind of answer, the same words) goes out at p~0.5, the other three are disclaimed
    assert disclaimed_right == 0 and caught >= len(wrong) - 1
