"""The BM25 tokenizer: lower-case words, but product codes, error codes and SKUs stay whole.

``E-1042``, ``SKU-88A``, ``ERR_TIMEOUT`` and ``v2.3.1`` are one token each: a code is a run of
letters/digits joined by ``-``, ``_``, ``.`` or ``/`` that contains at least one digit or is
joined by ``_``. Plain hyphenated words (``sign-in``) additionally yield their parts, so both
``sign-in`` and ``sign in`` match.
"""

from __future__ import annotations

import re

# letters from U+00C0 up, lone surrogates excluded (invalid UTF-8 decoded with surrogateescape is not a term)
_TOKEN = re.compile(r"[0-9A-Za-z\u00C0-\uD7FF\uE000-\uFFFF]+(?:[-_./][0-9A-Za-z\u00C0-\uD7FF\uE000-\uFFFF]+)*")
_STOP = frozenset(
    "a an and are as at be but by for from has have i if in into is it its of on or our so such that the their"
    " then there these they this to was were will with you your me my we do does did can how what".split()
)


def _is_code(tok: str) -> bool:
    return any(c.isdigit() for c in tok) or "_" in tok


def tokenize(text: str) -> list[str]:
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        raw = m.group(0).strip("./").lower()
        if not raw:
            continue
        if any(sep in raw for sep in "-_./"):
            if _is_code(raw):
                out.append(raw)
                continue
            out.append(raw)
            out.extend(p for p in re.split(r"[-_./]", raw) if p and p not in _STOP)
            continue
        if raw not in _STOP:
            out.append(raw)
    return out
