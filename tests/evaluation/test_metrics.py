"""Retrieval metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from callwise.evaluation.metrics import dedupe, mean_defined, mrr_at_k, ndcg_at_k, recall_at_k, retrieval_scores

RANKED = ["d3", "d1", "d3", "d5", "d2"]  # d3 twice: counted once, at rank 1
RELEVANT = {"d1", "d2", "d4"}


def test_dedupe_keeps_first_rank() -> None:
    assert dedupe(RANKED) == ["d3", "d1", "d5", "d2"]


def test_at_10_by_hand() -> None:
    # document ranks: d3=1, d1=2, d5=3, d2=4; relevant found: d1 (2), d2 (4) of 3
    assert recall_at_k(RANKED, RELEVANT, 10) == pytest.approx(2 / 3)
    assert mrr_at_k(RANKED, RELEVANT, 10) == pytest.approx(0.5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)  # 0.63093 + 0.43068
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant: ideal ranks 1..3
    assert ndcg_at_k(RANKED, RELEVANT, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(RANKED, RELEVANT, 10) == pytest.approx(0.49819, abs=1e-5)


def test_cut_at_2() -> None:
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 3)
    assert mrr_at_k(RANKED, RELEVANT, 2) == pytest.approx(0.5)
    # ideal DCG at k=2 has only two slots even though three documents are relevant
    assert ndcg_at_k(RANKED, RELEVANT, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_perfect_and_miss() -> None:
    assert retrieval_scores(["a", "b"], {"a", "b"}, 10) == {"recall@10": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0}
    assert retrieval_scores(["x", "y"], {"a"}, 10) == {"recall@10": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}
    assert retrieval_scores([], {"a"}, 10) == {"recall@10": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}


def test_single_relevant_at_rank_3() -> None:
    assert mrr_at_k(["x", "y", "a"], {"a"}, 10) == pytest.approx(1 / 3)
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 10) == pytest.approx(1 / math.log2(4))  # = 0.5
    assert mrr_at_k(["x", "y", "a"], {"a"}, 2) == 0.0


def test_no_relevant_is_undefined_not_zero() -> None:
    assert retrieval_scores(["a"], set(), 10) == {"recall@10": None, "mrr@10": None, "ndcg@10": None}
    assert mean_defined([None, 1.0, float("nan"), 0.0]) == 0.5
    assert mean_defined([None]) is None


def test_bad_k() -> None:
    with pytest.raises(ValueError):
        recall_at_k(["a"], {"a"}, 0)
