"""Text normalisation for WER: case, punctuation and number formatting do not count as errors.

Whisper writes "4 out of 5" and "$20" where a script says "four out of five" and "twenty
dollars"; both sides are mapped to the same words before jiwer compares them.
"""

from __future__ import annotations

import re

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SPELLING = {"e-mail": "email", "log-in": "login", "sign-in": "signin", "ok": "okay", "%": " percent"}


def number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if n < 1_000_000:
        rest = n % 1000
        return number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))
    return " ".join(_ONES[int(d)] for d in str(n))


def normalize_for_wer(text: str) -> str:
    s = text.lower()
    for a, b in _SPELLING.items():
        s = s.replace(a, b)
    s = re.sub(r"\$(\d+)", r"\1 dollars", s)
    s = re.sub(r"(\d+)/(\d+)", r"\1 out of \2", s)
    s = re.sub(r"\d+", lambda m: " " + number_words(int(m.group(0))) + " ", s)
    s = s.replace("'", "")
    s = re.sub(r"[^a-z ]+", " ", s)
    return " ".join(s.split())
