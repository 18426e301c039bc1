"""Cost figures say what they can: no cascade rate with one answerer, no saving without a priced tier,
and the saving over priced interactions only."""

from __future__ import annotations

import pytest

from callwise.routing.costs import summarize
from callwise.routing.pricing import Price

TIER3 = Price(3.0, 15.0)


def event(interaction: str, tier: str, provider: str, model: str, cost: float, success: bool = True,
          purpose: str = "answer") -> dict:
    return {"interaction_id": interaction, "tier": tier, "provider": provider, "model": model, "purpose": purpose,
            "input_tokens": 1000, "output_tokens": 100, "cached_tokens": 0, "cost_usd": cost, "success": success}


def test_offline_answerer_has_no_cascade_and_no_saving() -> None:
    rows = [event(f"i{i}", "tier1", "extractive", "extractive-v1", 0.0) for i in range(3)]
    report = summarize(rows, TIER3, answerers=1)
    assert report.interactions == 3 and report.tier_counts == {"tier1": 3}
    assert report.cascade_rate is None and report.saving_vs_tier3 is None
    assert "one answerer (extractive/extractive-v1)" in report.not_applicable["cascade_rate"]
    assert "priced tier" in report.not_applicable["saving_vs_tier3"]
    assert report.all_tier3_cost_usd == 0 and report.priced_interactions == 0
    # the same rows without the router's count: one answering model in the data says the same
    assert summarize(rows, TIER3).cascade_rate is None


def test_saving_is_over_priced_interactions_only() -> None:
    rows = [event("free", "tier1", "extractive", "extractive-v1", 0.0),
            event("cloud", "tier1", "google", "gemini", 0.00055),
            event("cascade", "tier1", "google", "gemini", 0.00055),
            event("cascade", "tier2", "openai", "gpt-4o-mini", 0.0002)]
    report = summarize(rows, TIER3)
    tier3_each = TIER3.cost(1000, 100)
    assert report.priced_interactions == 2 and report.all_tier3_cost_usd == pytest.approx(2 * tier3_each)
    assert report.saving_vs_tier3 == pytest.approx(1 - (0.00055 * 2 + 0.0002) / (2 * tier3_each), abs=1e-4)
    assert report.cascade_rate == pytest.approx(1 / 3, abs=1e-4) and report.not_applicable == {}


def test_one_cloud_answerer_has_a_saving_but_no_cascade() -> None:
    rows = [event("a", "tier1", "google", "gemini", 0.00055), event("b", "tier1", "google", "gemini", 0.00055)]
    report = summarize(rows, TIER3, answerers=1)
    assert report.cascade_rate is None and 0 < report.saving_vs_tier3 < 1
