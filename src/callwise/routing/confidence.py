"""Confidence estimation: geometric-mean token probability, a parsed self-evaluation score, or an
extractive answer's signals, each mapped to an estimated probability that the answer is right by
``callwise.routing.calibration`` (fitted parameters in ``routing/data/calibration.json``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from callwise.routing.types import Message

SELF_EVAL_SYSTEM = (
    "You grade answers of a customer-support assistant. Given a question, the sources it could use and "
    "its answer, rate from 0 to 10 how well the answer is correct, supported by the sources and responsive "
    "to the question. Reply with the number only."
)

_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10}


Method = Literal["extractive", "logprobs", "self_eval", "provider", "none"]


@dataclass(frozen=True)
class Confidence:
    """How likely an answer is right.

    ``value`` is an estimated probability that the answer is right when ``calibrated`` (mapped from
    the method's raw score by a model fitted on a labelled set, see ``callwise.routing.calibration``); for a
    method without a fitted model it is the raw score itself, which is *not* a probability.
    ``disclaim_below`` is the operating point fitted with the model (``None``: the router's own
    threshold applies).
    """

    value: float
    method: Method
    raw: float | None = None
    calibrated: bool = False
    disclaim_below: float | None = None
    signals: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0 or math.isnan(self.value):
            raise ValueError(f"confidence must be in [0, 1], got {self.value!r}")

    def as_dict(self) -> dict[str, Any]:
        """What is stored with the turn (``turns.confidence_detail``): why an answer was or was not
        disclaimed can be read back without re-running it."""
        return {"value": round(self.value, 4), "method": self.method,
                "raw": None if self.raw is None else round(self.raw, 4), "calibrated": self.calibrated,
                "disclaim_below": self.disclaim_below, "signals": dict(self.signals)}


def from_logprobs(logprobs: Sequence[float] | None) -> float | None:
    """exp(mean logprob) = geometric mean of the chosen tokens' probabilities.

    ``None`` entries (a provider that did not report a token) are skipped; a ``-inf`` token is a
    token the model gave probability 0, which makes the geometric mean 0 (dropping it would raise
    the confidence). NaN or a positive log-probability is not a probability: the list is unusable.
    """
    values = [lp for lp in (logprobs or []) if lp is not None]
    if not values:
        return None
    if any(math.isnan(lp) or lp > 1e-6 for lp in values):
        return None
    if any(lp == -math.inf for lp in values):
        return 0.0
    return max(0.0, min(1.0, math.exp(sum(values) / len(values))))


def parse_score(text: str) -> float | None:
    """Parse a 0-10 grade from free text ("8", "Score: 7.5/10", "**9**", "eight"); None if absent
    or out of range. Callers treat None as low confidence."""
    if not text:
        return None
    t = text.strip().lower()
    m = re.search(r"(?<![\d.])(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", t)  # linear on digit runs
    if m:
        num, den = float(m.group(1)), float(m.group(2))
        if den > 0 and 0 <= num <= den:
            return round(num / den, 4)
        return None
    m = re.search(r"(?<![\w.])(-?\d+(?:\.\d+)?)(?!\w|\.\d)", t)
    if m:
        value = float(m.group(1))
        if 0 <= value <= 10:
            return round(value / 10, 4)
        return None
    for word, value in _WORDS.items():
        if re.search(rf"\b{word}\b", t):
            return value / 10
    return None


def self_eval_messages(question: str, answer: str, sources_block: str) -> list[Message]:
    user = (
        f"{sources_block}\n\n<question>\n{question}\n</question>\n\n<answer>\n{answer}\n</answer>\n\n"
        "Grade (0-10):"
    )
    return [Message("system", SELF_EVAL_SYSTEM), Message("user", user)]
