"""A/B assignment, statistics (checked against scipy) and storage."""

from __future__ import annotations

import pytest
from scipy.stats import chi2_contingency

from callwise.evaluation import ab


def test_assignment_is_deterministic_and_split() -> None:
    users = [f"user-{i}" for i in range(4000)]
    first = [ab.assign_variant("prompt-v2", u, 0.3) for u in users]
    assert first == [ab.assign_variant("prompt-v2", u, 0.3) for u in users]
    share = first.count("treatment") / len(users)
    assert 0.27 < share < 0.33
    # a different experiment reshuffles users
    other = [ab.assign_variant("rerank-off", u, 0.3) for u in users]
    assert other != first
    with pytest.raises(ValueError):
        ab.assign_variant("x", "u", 1.0)


@pytest.mark.parametrize("a,na,b,nb", [(45, 100, 60, 100), (12, 40, 20, 41), (300, 1000, 330, 1000), (5, 9, 1, 11)])
def test_chi_square_matches_scipy(a: int, na: int, b: int, nb: int) -> None:
    table = [[a, na - a], [b, nb - b]]
    for correction in (True, False):
        stat, p, dof, expected = chi2_contingency(table, correction=correction)
        mine = ab.chi_square_2x2(a, na, b, nb, correction=correction)
        assert mine.statistic == pytest.approx(stat, rel=1e-9, abs=1e-12)
        assert mine.p_value == pytest.approx(p, rel=1e-9, abs=1e-12)
        assert mine.min_expected == pytest.approx(expected.min())


def test_chi_square_degenerate() -> None:
    res = ab.chi_square_2x2(10, 10, 20, 20)  # everyone resolved: no test possible (scipy raises)
    assert res.p_value is None and res.reason


def test_nps() -> None:
    assert ab.nps_score([10, 9, 8, 7, 6, 0]) == pytest.approx(100 * (2 - 2) / 6)
    assert ab.nps_score([10, 10, 3]) == pytest.approx(100 / 3)
    assert ab.nps_score([]) is None


def _rows(variant: str, n: int, resolved: int, escalated: int = 0) -> list[dict]:
    return [{"variant": variant, "resolved": i < resolved, "escalated": i < escalated, "csat": 4, "nps": 9}
            for i in range(n)]


def test_verdicts() -> None:
    exp = {"status": "running", "traffic_split": 0.5, "control_config": {}, "treatment_config": {}}
    small = ab.build_report("e", exp, _rows("control", 10, 5) + _rows("treatment", 10, 9))
    assert small.sample_too_small and small.verdict.startswith("sample too small")
    big = ab.build_report("e", exp, _rows("control", 200, 100, 40) + _rows("treatment", 200, 140, 20))
    assert not big.sample_too_small and big.verdict.startswith("treatment better")
    assert big.variants["treatment"].resolution_rate == pytest.approx(0.7)
    assert big.comparisons[1].verdict.startswith("treatment better")  # fewer escalations is better
    same = ab.build_report("e", exp, _rows("control", 200, 100) + _rows("treatment", 200, 102))
    assert same.verdict.startswith("no significant difference")


async def test_storage_roundtrip(pg_pool, org_id) -> None:  # type: ignore[no-untyped-def]
    exp_id = await ab.create_experiment(pg_pool, org_id, "temp-0", {"temperature": 0.7}, {"temperature": 0.0})
    with pytest.raises(ab.ExperimentError):
        await ab.create_experiment(pg_pool, org_id, "bad", {"colour": "red"}, {})
    variant, config = await ab.assign(pg_pool, org_id, "temp-0", "alice")
    assert config == ({"temperature": 0.7} if variant == "control" else {"temperature": 0.0})
    for i in range(6):
        await ab.record_outcome(pg_pool, org_id, exp_id, f"u{i}", resolved=i % 2 == 0, csat=5, nps=10)
    # a tagged, ended session becomes a result through sync_outcomes
    sess = await pg_pool.fetchval(
        """insert into sessions (organization_id, room, kind, resolved_by_ai, status, ab_test_id, ab_variant_id,
                                 ended_at) values ($1, 'r', 'support', true, 'ended', $2, 'treatment', now())
           returning id""", org_id, exp_id)
    await pg_pool.execute("insert into survey_responses (organization_id, session_id, rating, nps, channel_used) "
                          "values ($1, $2, 2, 3, 'sms')", org_id, sess)
    rep = await ab.report(pg_pool, org_id, "temp-0")
    assert sum(v.n for v in rep.variants.values()) == 7
    assert rep.sample_too_small
    assert await ab.sync_outcomes(pg_pool, org_id, exp_id) == 0  # idempotent
    with pytest.raises(ab.ExperimentError):
        await ab.report(pg_pool, org_id, "nope")
