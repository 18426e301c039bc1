"""Small text helpers shared by the offline answerers."""

from __future__ import annotations

import re

_MD = [
    (re.compile(r"```.*?```", re.S), " "),
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), " "),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.M), ""),
    (re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.M), ""),
    (re.compile(r"^\s*>\s?", re.M), ""),
    (re.compile(r"\*\*([^*]+)\*\*|__([^_]+)__"), lambda m: m.group(1) or m.group(2)),
    (re.compile(r"(?<!\w)[*_]([^*_\n]+)[*_](?!\w)"), r"\1"),
    (re.compile(r"^\s*\|?\s*:?-{3,}.*$", re.M), ""),
]
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def strip_markdown(text: str) -> str:
    for pattern, repl in _MD:
        text = pattern.sub(repl, text)  # type: ignore[arg-type]
    return text


def _looks_like_heading(line: str) -> bool:
    return len(line.split()) <= 12 and not re.search(r"[.!?:;,)\]\"'`*|]$", line)


def paragraphs(text: str) -> list[str]:
    """Markdown blocks as plain text: paragraphs (wrapped lines joined) and list items; headings,
    code fences and table rules dropped."""
    out: list[str] = []
    current: list[str] = []
    in_code = False

    def flush() -> None:
        if current:
            line = " ".join(strip_markdown(" ".join(current)).split()).strip(" |")
            if line:
                out.append(line)
            current.clear()

    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("```"):
            flush()
            in_code = not in_code
            continue
        if in_code:
            continue
        if not stripped or re.match(r"^#{1,6}\s", stripped) or re.match(r"^\|?\s*:?-{3,}", stripped):
            flush()
            continue
        if re.match(r"^(?:[-*+]|\d+[.)])\s+", stripped):
            flush()
        elif not current and _looks_like_heading(stripped):
            continue  # a heading whose "#" the chunker removed: a title, not an answer
        current.append(stripped)
    flush()
    return out


def sentences(text: str, *, min_words: int = 4) -> list[str]:
    """Sentences of a (markdown) passage; fragments under ``min_words`` words are dropped."""
    out: list[str] = []
    for para in paragraphs(text):
        for s in _SENT.split(para):
            s = s.strip()
            if len(s.split()) >= min_words:
                out.append(s)
    return out


def approx_tokens(text: str) -> int:
    """About four characters a token (English); for accounting where no tokenizer is at hand."""
    return max(1, (len(text) + 3) // 4) if text else 0


# --- what a caller can listen to ---------------------------------------------------------------
_MARKUP = re.compile(
    r"</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>"  # an HTML/XML tag
    r"|&(?:[a-z]{2,8}|#\d{2,5});"  # an entity
    r"|\*\*|__\w|`|\]\(|^\s*#{1,6}\s|^\s*[-*+]\s|^\s*>\s"  # markdown
    r"|:[a-z]+:`|¶|\{\{|\}\}|\\\w+\{",  # reST roles, pilcrows, templates, TeX
    re.M,
)
_SYNOPSIS = re.compile(
    r"<[A-Za-z][\w .:/-]*>"  # a <placeholder>
    r"|\[\s*(?:-|<|\.\.\.)"  # [-x], [<file>], [...]
    r"|\.\.\.\s*\]"
    r"|\[[^\]\n]*\s\|\s[^\]\n]*\]"  # [a | b]
    r"|\{[^}\n]*\|[^}\n]*\}"  # {a|b}
)
_TABLE = re.compile(r"(?:\|[^|\n]*){3,}|\t|\+-{3,}|-{3,}\+|={4,}|_{4,}")
_PAIRS = {")": "(", "]": "[", "}": "{"}


def brackets_balanced(text: str) -> bool:
    """``()``, ``[]`` and ``{}`` properly nested (quotes are not parsed)."""
    stack: list[str] = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in _PAIRS:
            if not stack or stack.pop() != _PAIRS[ch]:
                return False
    return not stack


def speakable_problems(text: str) -> list[str]:
    """Why ``text`` would sound wrong read aloud: ``unbalanced brackets``, ``syntax synopsis``
    (``git commit [-a | --interactive] [<file>...]``), ``markup`` (HTML, Markdown, reST) or
    ``table debris``. Empty when it can be read out as it is."""
    problems = []
    if not brackets_balanced(text):
        problems.append("unbalanced brackets")
    if _SYNOPSIS.search(text):
        problems.append("syntax synopsis")
    if _MARKUP.search(text):
        problems.append("markup")
    if _TABLE.search(text):
        problems.append("table debris")
    return problems
