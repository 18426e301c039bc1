import pytest

from callwise.knowledge.classify import classify_query
from callwise.knowledge.fusion import rrf, weighted


def test_rrf_k60():
    fused = dict(rrf([[("a", 9), ("b", 5)], [("b", 0.9), ("c", 0.5)]], k=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert max(fused, key=fused.get) == "b"


def test_weighted_is_a_convex_combination_of_normalised_scores():
    out = dict(weighted([("a", 10.0), ("b", 5.0), ("c", 0.0)], [("c", 0.9), ("a", 0.1)], alpha=0.3))
    assert out["a"] == pytest.approx(0.7 * 1.0 + 0.3 * 0.0)
    assert out["c"] == pytest.approx(0.7 * 0.0 + 0.3 * 1.0)
    assert out["b"] == pytest.approx(0.7 * 0.5)


@pytest.mark.parametrize("query,kind", [
    ("What does error E-1042 mean?", "exact_match"),
    ("price of SKU-88A", "exact_match"),
    ('"payment declined"', "exact_match"),
    ("how do I configure SAML SSO with Okta", "technical"),
    ("api rate limit headers", "technical"),
    ("hi, I was charged twice and I want my money back", "conversational"),
    ("What is the difference between the Pro and Business plans?", "conceptual"),
])
def test_query_types(query, kind):
    assert classify_query(query) == kind
