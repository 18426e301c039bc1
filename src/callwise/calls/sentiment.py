"""Sentiment of spoken turns with VADER (``vaderSentiment``), a maintained rule-and-lexicon analyser that
handles negation ("no problem", "not bad" are positive), intensifiers and contrast ("but").

The compound score is in [-1, 1]. VADER's lexicon ships inside the package: nothing is downloaded.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MAX_CHARS = 5_000  # a turn longer than this is scored on its start (VADER is linear, this bounds it)


@lru_cache(maxsize=1)
def _analyser() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER's compound score of ``text``, rounded to 3 places (0.0 for empty text)."""
    text = text[:MAX_CHARS].strip()
    if not text:
        return 0.0
    return round(float(_analyser().polarity_scores(text)["compound"]), 3)


def by_speaker(turns: list[tuple[str, str]]) -> dict[str, float]:
    """Mean sentiment per speaker over (speaker, text) turns."""
    scores: dict[str, list[float]] = {}
    for speaker, text in turns:
        if text.strip():
            scores.setdefault(speaker, []).append(sentiment(text))
    return {k: round(sum(v) / len(v), 3) for k, v in scores.items()}
