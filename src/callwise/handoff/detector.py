"""The learned escalation detector: calibrated probabilities per reason over the conversation.

A multinomial logistic regression over the embedder's sentence vector of the customer's turn, the
mean vector of their earlier turns, and a few numbers about the call so far: how many turns, how
close this turn is to an earlier one (a restated need), how many of the agent's answers were unsure.
It was trained by ``bench/escalation_train.py`` on the corpus that ``bench/data/escalation/make_corpus.py``
builds from hand-written seeds, plus the dev split of ``bench/data/escalation/turns.jsonl``; it
ships as ``data/escalation_model.npz`` (weights, temperature, thresholds, the example bank's vectors)
and ``data/escalation_model.json`` (the bank's texts and labels, the training summary). Nothing is
fitted at run time, and scikit-learn is not needed to run it.

Per reason, two thresholds chosen on out-of-fold predictions: ``high`` for a recall target (missing a
security report costs more than a false alarm on frustration), ``low`` below which the detector is
sure nothing is wrong. Between them it is *unsure*: a generative judge decides where one is
configured; offline, the call asks the caller once whether to pass them to a colleague when the
call also shows trouble. Every decision names its reason, probability and nearest training turns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REASONS = ("security_privacy", "legal_refund", "explicit_request", "outage", "billing_dispute", "frustration",
           "repeated_failure")
CLASSES = ("none",) + REASONS
DATA = Path(__file__).resolve().parent / "data"
MODEL_PATH = DATA / "escalation_model.npz"
MODEL_INFO = DATA / "escalation_model.json"
MAX_CHARS = 2000

EmbedFn = Callable[[list[str]], Any]

_UNSURE_ANSWER = re.compile(
    r"\b(?:not (?:completely |entirely |quite )?(?:sure|certain)|couldn't find|could not find|don't have (?:that|any)"
    r"|can't find|no information)\b", re.IGNORECASE)


def answer_sounds_unsure(text: str) -> bool:
    """An agent answer that says it is unsure (used where only the words are known: the benches)."""
    return bool(_UNSURE_ANSWER.search(text))


@dataclass
class Conversation:
    """What the detector remembers of one call: the vectors of the customer's earlier turns and how
    the agent's answers went."""

    vectors: list[np.ndarray] = field(default_factory=list)
    answers: int = 0
    unsure_answers: int = 0
    last_answer_unsure: bool = False

    def answered(self, *, unsure: bool) -> None:
        self.answers += 1
        self.unsure_answers += int(unsure)
        self.last_answer_unsure = unsure


def features(vec: np.ndarray, conv: Conversation) -> np.ndarray:
    """The classifier's input for one customer turn (``vec``: its unit sentence vector)."""
    prev = conv.vectors
    if prev:
        stack = np.stack(prev)
        ctx = stack.mean(axis=0)
        sims = stack @ vec
        sim_max, sim_last = float(sims.max()), float(sims[-1])
    else:
        ctx = np.zeros_like(vec)
        sim_max = sim_last = 0.0
    n = len(prev)
    extra = np.array([
        float(n >= 1), float(n >= 2), sim_max * (n >= 1), sim_last * (n >= 1),
        min(conv.unsure_answers, 2) / 2, float(conv.last_answer_unsure),
        float(conv.answers >= 1) * sim_last,
    ], dtype=np.float32)
    return np.concatenate([vec.astype(np.float32), ctx.astype(np.float32), extra])


@dataclass(frozen=True)
class Nearest:
    similarity: float
    text: str
    reason: str | None

    def describe(self) -> str:
        return f'"{self.text}" ({self.reason or "no escalation"}, {self.similarity:.2f})'


@dataclass(frozen=True)
class Detection:
    """The detector's view of one turn: ``reason`` when a probability passed its reason's high
    threshold, ``unsure`` (with ``candidate``) when the best one lies between low and high."""

    probabilities: dict[str, float]
    reason: str | None
    probability: float
    unsure: bool
    candidate: str | None
    nearest: list[Nearest]

    def describe(self) -> list[str]:
        best = self.reason or self.candidate
        head = [f"{best} p={self.probability:.2f}"] if best else []
        return head + [n.describe() for n in self.nearest]


class LearnedDetector:
    """Scores a customer turn in the context of the call; one instance per worker process."""

    def __init__(self, embed_fn: EmbedFn, model_path: Path = MODEL_PATH, info_path: Path = MODEL_INFO) -> None:
        if not model_path.exists():
            raise FileNotFoundError(f"no escalation model at {model_path}: run bench/escalation_train.py")
        z = np.load(model_path)
        self.embed_fn = embed_fn
        self.W = z["W"].astype(np.float32)
        self.b = z["b"].astype(np.float32)
        self.temperature = float(z["temperature"])
        self.high = dict(zip(REASONS, (float(x) for x in z["high"]), strict=True))
        self.low = dict(zip(REASONS, (float(x) for x in z["low"]), strict=True))
        self.bank = z["bank"].astype(np.float32) / 127  # unit vectors stored as int8: enough to name neighbours
        info = json.loads(info_path.read_text(encoding="utf-8"))
        self.bank_texts: list[str] = info["bank_texts"]
        self.bank_labels: list[str | None] = info["bank_labels"]
        self.info = {k: v for k, v in info.items() if not k.startswith("bank_")}

    def embed(self, text: str) -> np.ndarray:
        v = np.asarray(self.embed_fn([text[:MAX_CHARS]]), dtype=np.float32)[0]
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        logits = (self.W @ x + self.b) / self.temperature
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def nearest(self, vec: np.ndarray, k: int = 3) -> list[Nearest]:
        sims = self.bank @ vec
        top = np.argpartition(-sims, min(k, len(sims) - 1))[:k]
        top = top[np.argsort(-sims[top])]
        return [Nearest(round(float(sims[i]), 3), self.bank_texts[i], self.bank_labels[i]) for i in top]

    def detect(self, text: str, conv: Conversation, *, remember: bool = True) -> Detection:
        """Score ``text`` given the call so far; with ``remember`` its vector joins the call's turns."""
        vec = self.embed(text)
        p = self.probabilities(features(vec, conv))
        if remember:
            conv.vectors.append(vec)
        probs = {r: float(p[i + 1]) for i, r in enumerate(REASONS)}
        over = [r for r in REASONS if probs[r] >= self.high[r]]
        reason = max(over, key=lambda r: probs[r] / self.high[r]) if over else None
        between = [r for r in REASONS if self.low[r] <= probs[r] < self.high[r]]
        candidate = None if reason else (max(between, key=lambda r: probs[r] / self.high[r]) if between else None)
        best = reason or candidate
        return Detection(probabilities=probs, reason=reason, probability=probs[best] if best else max(probs.values()),
                         unsure=candidate is not None, candidate=candidate, nearest=self.nearest(vec))


_CACHE: dict[Any, LearnedDetector] = {}


def shipped_detector(embed_fn: EmbedFn) -> LearnedDetector | None:
    """The shipped model for ``embed_fn`` (loaded once per embedder), or None when it is missing."""
    if not MODEL_PATH.exists():
        return None
    det = _CACHE.get(embed_fn)
    if det is None:
        det = _CACHE[embed_fn] = LearnedDetector(embed_fn)
    return det
