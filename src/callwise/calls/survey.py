"""End-of-call survey: the questions, and parsing a spoken 1-5 rating.

Spoken answers come through STT, so the parser accepts digits ("4", "4/5", "4 out of 5"),
words ("four", "four out of five", "a solid four"), other scales ("8 out of 10", "80 percent",
"three stars"), and plain judgements ("pretty bad", "not great", "excellent", "it was fine").
An explicit number wins over a judgement; a number out of range is ignored. Ratings of 2 or less
need a follow-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RATING_QUESTION = ("Before you go: on a scale of one to five, how would you rate the help you got today? "
                   "Five is excellent.")
COMMENT_QUESTION = "Thank you. Is there anything you'd like to tell us about the call?"
CLOSING = "Thanks for your feedback. Goodbye!"
FOLLOWUP_AT_OR_BELOW = 2

_NUMBERS = {"zero": 0, "one": 1, "won": 1, "two": 2, "to": None, "too": None, "three": 3, "four": 4,
            "for": None, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_NUM = r"(\d+(?:\.\d+)?|zero|one|two|three|four|five|six|seven|eight|nine|ten)"
# (?<![\d.]): a number starts only where a number starts; without it a long digit run is quadratic
_OUT_OF = re.compile(r"(?<![\d.])" + _NUM + r"\s*(?:out of|/|of|outta)\s*" + _NUM, re.IGNORECASE)
_PERCENT = re.compile(r"(\d{1,3})\s*(?:%|percent)", re.IGNORECASE)
_STARS = re.compile(r"(?<![\d.])" + _NUM + r"\s*stars?\b", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w.])" + _NUM + r"(?!\w|\.\d)", re.IGNORECASE)

# Judgement phrases, most specific first (a phrase is tried before the words inside it).
_PHRASES: list[tuple[re.Pattern[str], int]] = [
    (re.compile(p, re.IGNORECASE), r) for p, r in [
        (r"\b(?:not (?:bad|too bad)|could(?:'ve| have) been (?:better|worse)|so-?so|mixed|average|"
         r"middling|meh|mediocre|neutral|okay-?ish)\b", 3),
        (r"\b(?:not (?:great|good|very good|helpful|happy|satisfied)|pretty bad|quite bad|rather bad|"
         r"poor|bad|disappointing|disappointed|unhelpful|unsatisfied|dissatisfied|below average)\b", 2),
        (r"\b(?:very bad|really bad|terrible|awful|horrible|the worst|worst|useless|appalling|"
         r"abysmal|dreadful|a waste of time)\b", 1),
        (r"\b(?:excellent|amazing|perfect|fantastic|outstanding|superb|brilliant|wonderful|"
         r"awesome|incredible|the best|top notch|very (?:good|helpful)|really (?:good|helpful)|"
         r"extremely helpful|loved it)\b", 5),
        (r"\b(?:good|pretty good|great|helpful|satisfied|happy|nice|solid|well done)\b", 4),
        (r"\b(?:ok|okay|fine|alright|all right|decent|fair|acceptable|not bad)\b", 3),
    ]
]
# The longest matching phrase wins, so "not bad" beats "bad" and "pretty good" beats "good".


@dataclass(frozen=True)
class SurveyAnswer:
    rating: int | None
    feedback_text: str
    requires_followup: bool
    matched: str | None  # what decided the rating, for logs and tests

    @property
    def understood(self) -> bool:
        return self.rating is not None


def _num(token: str) -> float | None:
    token = token.lower()
    if token in _NUMBERS:
        value = _NUMBERS[token]
        return None if value is None else float(value)
    try:
        return float(token)
    except ValueError:
        return None


def _scale(value: float, top: float) -> int | None:
    if top <= 0 or value < 0 or value > top:
        return None
    return max(1, min(5, int(value / top * 5 + 0.5 + 1e-9)))


def parse_rating(text: str) -> tuple[int | None, str | None]:
    """The 1-5 rating in a spoken answer and the words that decided it, or ``(None, None)``."""
    for m in _OUT_OF.finditer(text):
        value, top = _num(m.group(1)), _num(m.group(2))
        if value is not None and top is not None and (r := _scale(value, top)) is not None:
            return r, m.group(0)
    if m := _PERCENT.search(text):
        if (r := _scale(float(m.group(1)), 100)) is not None:
            return r, m.group(0)
    if m := _STARS.search(text):
        value = _num(m.group(1))
        if value is not None and 1 <= value <= 5:
            return int(round(value)), m.group(0)
    for m in _BARE.finditer(text):
        value = _num(m.group(1))
        if value is not None and 1 <= value <= 5 and value == int(value):
            return int(value), m.group(0)
    best: tuple[int, int, str] | None = None  # (length of the phrase, rating, phrase)
    for pattern, rating in _PHRASES:
        for m in pattern.finditer(text):
            if best is None or len(m.group(0)) > best[0]:
                best = (len(m.group(0)), rating, m.group(0))
    if best:
        return best[1], best[2]
    return None, None


def parse_answer(rating_text: str, comment_text: str = "") -> SurveyAnswer:
    """Combine the spoken rating and the optional comment into what ``survey_responses`` stores."""
    rating, matched = parse_rating(rating_text)
    feedback = " ".join(t.strip() for t in (rating_text, comment_text) if t and t.strip())
    return SurveyAnswer(
        rating=rating,
        feedback_text=feedback,
        requires_followup=rating is not None and rating <= FOLLOWUP_AT_OR_BELOW,
        matched=matched,
    )
