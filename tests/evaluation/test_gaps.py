"""Knowledge-gap clustering on a small synthetic set."""

from __future__ import annotations

import numpy as np
import pytest

from callwise.knowledge.gaps import Question, cluster_questions, fallback_label


def _around(direction: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    return direction + noise * rng.standard_normal((n, direction.size))


def test_two_topics_and_noise() -> None:
    rng = np.random.default_rng(7)
    dim = 16
    a, b, c = np.eye(dim)[0], np.eye(dim)[1], np.eye(dim)[2]
    qs = ([Question(f"export invoices as csv {i}", occurrences=2, escalations=2) for i in range(4)]
          + [Question(f"dark mode on android {i}", occurrences=1, escalations=0) for i in range(3)]
          + [Question("one odd question", occurrences=1, escalations=1)])
    emb = np.vstack([_around(a, 4, rng), _around(b, 3, rng), _around(c, 1, rng)])
    clusters = cluster_questions(qs, emb, eps=0.2)
    assert len(clusters) == 2  # the lone one-off question is noise
    top, second = clusters
    assert set(top.members) == {0, 1, 2, 3}
    assert top.frequency == 8 and top.escalation_rate == 1.0 and top.impact == 8.0
    assert set(second.members) == {4, 5, 6} and second.impact == 0.0
    assert top.centroid_index in top.members
    assert len(top.sample_questions) == 4


def test_frequent_single_question_is_a_gap() -> None:
    qs = [Question("cancel my subscription", occurrences=5, escalations=2)]
    clusters = cluster_questions(qs, np.array([[1.0, 0.0]]), min_occurrences=2)
    assert len(clusters) == 1 and clusters[0].frequency == 5 and clusters[0].impact == pytest.approx(2.0)


def test_empty_and_bad_shapes() -> None:
    assert cluster_questions([], np.zeros((0, 4))) == []
    with pytest.raises(ValueError):
        cluster_questions([Question("a")], np.zeros((2, 4)))


def test_fallback_label() -> None:
    label = fallback_label(["How do I export invoices?", "export invoices to csv", "Where are invoices?"])
    assert label.split()[0] == "invoices"
    assert "export" in label
