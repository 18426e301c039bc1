"""Knowledge-gap clustering: group unresolved questions by meaning (DBSCAN over their embeddings).

Pure: takes the questions, their embeddings and counts; returns clusters. Callers store the
clusters and write labels/outlines. Each question is weighted by how often it was asked, so a
question asked five times is a gap on its own, while two one-off questions need a close
neighbour to form one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Question:
    text: str
    occurrences: int = 1
    escalations: int = 0  # how many of those occurrences were escalated to a human


@dataclass
class GapCluster:
    members: list[int]  # indices into the input questions, most frequent first
    questions: list[str]
    frequency: int  # total occurrences
    escalations: int
    centroid_index: int  # index of the question closest to the cluster centre
    sample_questions: list[str] = field(default_factory=list)

    @property
    def escalation_rate(self) -> float:
        return min(1.0, self.escalations / self.frequency) if self.frequency else 0.0

    @property
    def impact(self) -> float:
        """frequency x escalation rate: how many escalations this gap caused."""
        return self.frequency * self.escalation_rate


def cluster_questions(questions: Sequence[Question], embeddings: np.ndarray, *, eps: float = 0.35,
                      min_occurrences: int = 2, max_samples: int = 5) -> list[GapCluster]:
    """DBSCAN (cosine distance ``eps``) with sample weights = occurrences; noise is dropped.

    Returns clusters sorted by impact, then frequency (highest first).
    """
    from sklearn.cluster import DBSCAN

    if len(questions) == 0:
        return []
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(questions):
        raise ValueError(f"expected {len(questions)} embeddings, got shape {x.shape}")
    if not 0 < eps < 2:
        raise ValueError("eps is a cosine distance in (0, 2)")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = (x / np.where(norms == 0, 1, norms)).astype(np.float32)
    weights = np.array([max(1, q.occurrences) for q in questions], dtype=float)
    labels = DBSCAN(eps=eps, min_samples=min_occurrences, metric="cosine").fit_predict(x, sample_weight=weights)

    clusters: list[GapCluster] = []
    for label in sorted(set(labels) - {-1}):
        idx = [i for i, lab in enumerate(labels) if lab == label]
        idx.sort(key=lambda i: (-questions[i].occurrences, i))
        centre = x[idx].mean(axis=0)
        centroid = idx[int(np.argmax(x[idx] @ centre))]
        clusters.append(GapCluster(
            members=idx,
            questions=[questions[i].text for i in idx],
            frequency=int(sum(questions[i].occurrences for i in idx)),
            escalations=int(sum(questions[i].escalations for i in idx)),
            centroid_index=centroid,
            sample_questions=[questions[i].text for i in idx[:max_samples]],
        ))
    clusters.sort(key=lambda c: (-c.impact, -c.frequency, c.members[0]))
    return clusters


_STOP = frozenset(
    "a an the and or but if of to in on at for with by from is are was were be been do does did can could "
    "i my me we our you your it its this that how what why when where which who whom will would should "
    "not no yes there their they them have has had get got am so as about into than then please".split()
)


def fallback_label(questions: Sequence[str], max_words: int = 4) -> str:
    """A label from the most common content words, for when no model writes one."""
    counts: dict[str, int] = {}
    for q in questions:
        seen: set[str] = set()
        for w in "".join(ch.lower() if ch.isalnum() else " " for ch in q).split():
            if len(w) > 2 and w not in _STOP and w not in seen:
                seen.add(w)
                counts[w] = counts.get(w, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))[:max_words]
    return " ".join(words) if words else (questions[0][:60] if questions else "unlabelled")
