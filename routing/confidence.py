"""Confidence estimation: geometric-mean token probability, or a parsed self-evaluation score."""

from __future__ import annotations

import math
import re
from typing import Sequence

from routing.types import Message

SELF_EVAL_SYSTEM = (
    "You grade answers of a customer-support assistant. Given a question, the sources it could use and "
    "its answer, rate from 0 to 10 how well the answer is correct, supported by the sources and responsive "
    "to the question. Reply with the number only."
)

_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10}


def from_logprobs(logprobs: Sequence[float] | None) -> float | None:
    """exp(mean logprob) = geometric mean of the chosen tokens' probabilities."""
    values = [lp for lp in (logprobs or []) if lp is not None and math.isfinite(lp)]
    if not values:
        return None
    return max(0.0, min(1.0, math.exp(sum(values) / len(values))))


def parse_score(text: str) -> float | None:
    """Parse a 0-10 grade from free text ("8", "Score: 7.5/10", "**9**", "eight"); None if absent
    or out of range. Callers treat None as low confidence."""
    if not text:
        return None
    t = text.strip().lower()
    m = re.search(r"(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", t)
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
