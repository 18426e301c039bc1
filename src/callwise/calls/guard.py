"""The guard step of a turn: redact PII before text leaves for an LLM, flag injection attempts.

Redaction replaces each finding with a typed placeholder (``[EMAIL]``, ``[PHONE]``, ``[CARD]``,
``[SSN]``, ``[IBAN]``) so the model still knows what kind of thing the customer said. Card
numbers must pass the Luhn check, so order numbers and error codes are left alone.
Injection markers never block a turn (the prompt treats user text as data either way); they
are reported so the turn can be logged and audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# bounded parts, and a local part starts only where a run of its characters starts: linear on hostile input
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_PHONE = re.compile(
    r"(?<![\w-])(?<!\d )(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}[ .-]\d{3,4}(?:[ .-]?\d{3,4})?(?![\w-])(?! ?\d)"
)

_INJECTION = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bignore (?:all |any )?(?:the )?(?:previous|prior|above|earlier) (?:instructions|prompts?|rules)",
        r"\bdisregard (?:all |the )?(?:previous|prior|above|system) ",
        r"\b(?:reveal|print|show|repeat) (?:me )?(?:your|the) (?:system )?(?:prompt|instructions)",
        r"\byou are now\b",
        r"\b(?:developer|jailbreak|dan) mode\b",
        r"</?(?:system|assistant|sources?|user_message)>",
        r"^\s*(?:system|assistant)\s*:",
    )
]


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class GuardResult:
    text: str
    redactions: dict[str, int] = field(default_factory=dict)
    injection_markers: list[str] = field(default_factory=list)

    @property
    def suspicious(self) -> bool:
        return bool(self.injection_markers)


def redact_pii(text: str) -> tuple[str, dict[str, int]]:
    counts: dict[str, int] = {}

    def sub(pattern: re.Pattern[str], label: str, s: str, check=None) -> str:  # type: ignore[no-untyped-def]
        def repl(m: re.Match[str]) -> str:
            if check is not None and not check(m.group(0)):
                return m.group(0)
            counts[label] = counts.get(label, 0) + 1
            return f"[{label}]"

        return pattern.sub(repl, s)

    out = sub(_EMAIL, "EMAIL", text)
    out = sub(_CARD, "CARD", out, lambda s: _luhn_ok(re.sub(r"\D", "", s)))
    out = sub(_SSN, "SSN", out)
    out = sub(_IBAN, "IBAN", out)
    out = sub(_PHONE, "PHONE", out, lambda s: 7 <= len(re.sub(r"\D", "", s)) <= 15)
    return out, counts


_UNSPEAKABLE = re.compile(r"[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text safe to store, hash and send on: NUL characters dropped, lone surrogates (invalid UTF-8
    decoded with ``surrogateescape``, or escaped in JSON) replaced by U+FFFD."""
    return _UNSPEAKABLE.sub(lambda m: "" if m.group(0) == "\x00" else "\ufffd", text)


def injection_markers(text: str) -> list[str]:
    return [m.group(0).strip() for p in _INJECTION for m in [p.search(text)] if m]


def guard(text: str, *, redact: bool) -> GuardResult:
    """Apply the tenant's redaction setting and report injection markers."""
    markers = injection_markers(text)
    if not redact:
        return GuardResult(text=text, injection_markers=markers)
    clean, counts = redact_pii(text)
    return GuardResult(text=clean, redactions=counts, injection_markers=markers)
