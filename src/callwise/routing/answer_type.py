"""What kind of answer a question expects, and whether a sentence has one.

"How long does the refund take?" is answered by a duration ("5-7 business days"), "how many seats"
by a number, "when does the trial end" by a time; a sentence that shares the question's words but
holds no such thing ("we no longer return money to your card") does not answer it. The extractive
answerer prefers units that have what the question expects (``callwise.routing.providers.extractive``), and
the calibration counts an answer without it as a signal of a wrong answer (``callwise.routing.calibration``).

Every pattern is a flat alternation (linear time); the text read is capped by the callers' units.
"""

from __future__ import annotations

import re
from typing import Literal

AnswerType = Literal["duration", "number", "time"]

_NUM_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty"
              r"|fifty|sixty|ninety|hundred|thousand|million|billion|a few|several|a couple of")
_UNIT = r"(?:business |working |calendar )?(?:seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"

_ASKS_DURATION = re.compile(
    r"\bhow (?:long|soon|quickly|fast)\b|\bhow much time\b|\bhow many (?:" + _UNIT + r")\b"
    r"|\bturnaround\b|\bwhen will (?:it|they|the \w+|my \w+|i) (?:arrive|come|appear|show|be back|get)\b",
    re.IGNORECASE)
_ASKS_NUMBER = re.compile(
    r"\bhow (?:many|much|big|large|often|old|tall|far)\b|\bwhat (?:version|percentage|size|number|is the (?:max|min|limit))"
    r"|\b(?:maximum|minimum|max|min|limit|cap)\b|\bwhat does it cost\b|\bprice\b", re.IGNORECASE)
#: "can I still get a refund", "is it too late to": a window, answered by when it closes
_ASKS_TIME = re.compile(r"\bwhen\b|\bwhat (?:time|day|date)\b|\bwhich (?:day|date)\b|\bby what date\b"
                        r"|\b(?:can|could|may) (?:i|we) still\b|\btoo late\b|\bdeadline\b", re.IGNORECASE)

_NUMBER = re.compile(r"\d|\b(?:" + _NUM_WORDS + r"|once|twice|half|unlimited|no limit)\b", re.IGNORECASE)
_DURATION = re.compile(
    r"(?:\d+(?:[.,]\d+)?(?:\s*(?:-|to|–)\s*\d+)?|\b(?:" + _NUM_WORDS + r"|half an?|an?))\s*-?\s*" + _UNIT + r"\b"
    r"|\b(?:same|next) (?:business |working )?day\b|\bimmediately\b|\binstantly\b|\bright away\b|\bovernight\b"
    r"|\bwithin (?:an?|the) \w+\b|\bup to an? \w+\b",
    re.IGNORECASE)
_TIME = re.compile(
    r"\b(?:before|after|until|till|within|at the (?:end|start|beginning) of|on the|by the|every|each|daily|weekly"
    r"|monthly|yearly|annually|as soon as|once|immediately|tomorrow|tonight|midnight|noon|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|july"
    r"|august|september|october|november|december|utc|am|pm)\b|\d",
    re.IGNORECASE)


def expected(question: str) -> AnswerType | None:
    """The kind of answer ``question`` asks for (duration before number before time), or None."""
    q = question[-600:]  # the question is at the end of a long turn
    if _ASKS_DURATION.search(q):
        return "duration"
    if _ASKS_NUMBER.search(q):
        return "number"
    if _ASKS_TIME.search(q):
        return "time"
    return None


def has(kind: AnswerType, text: str) -> bool:
    """``text`` holds an answer of ``kind`` (a duration, a number, a time expression)."""
    if kind == "duration":
        return bool(_DURATION.search(text))
    if kind == "number":
        return bool(_NUMBER.search(text))
    return bool(_TIME.search(text))


def missing(question: str, text: str) -> bool:
    """The question expects a kind of answer and ``text`` has none of it."""
    kind = expected(question)
    return kind is not None and not has(kind, text)
