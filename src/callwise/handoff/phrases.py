"""Escalation phrases in the languages other than English (``data/phrases_<lang>.jsonl``).

The English rules live in ``callwise.handoff.escalation``; a caller speaking Spanish, French,
German, Japanese or Chinese asks for a person in their own words ("quiero hablar con una persona",
"je voudrais un conseiller", "担当者と話したい", "转人工"). Each line of a data file is
``{"reason": "explicit_request", "pattern": REGEX, "example": TEXT}``; every example must match
its own pattern (tests/calls/test_languages.py checks it).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Phrase:
    reason: str
    pattern: re.Pattern[str]
    example: str


class PhraseFileError(ValueError):
    """A phrase file line that is not a valid phrase (the message says file, line and why)."""


@lru_cache(maxsize=16)
def phrases(language: str) -> tuple[Phrase, ...]:
    """The phrases of ``language`` (empty for English and for a language without a file)."""
    path = DATA_DIR / f"phrases_{language}.jsonl"
    if not re.fullmatch(r"[a-z]{2,3}", language) or not path.exists():
        return ()
    out = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
            out.append(Phrase(str(row["reason"]), re.compile(row["pattern"], re.IGNORECASE), str(row["example"])))
        except (ValueError, KeyError, TypeError, re.error) as exc:
            raise PhraseFileError(f"{path.name}:{n}: {exc}") from exc
    return tuple(out)


def match(text: str, language: str) -> tuple[str, str] | None:
    """``(reason, matched words)`` for the first phrase of ``language`` found in ``text``, else None."""
    t = unicodedata.normalize("NFC", text[:2000])
    for p in phrases(language):
        if m := p.pattern.search(t):
            return p.reason, m.group(0)
    return None
