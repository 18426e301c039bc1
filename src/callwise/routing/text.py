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
        text = pattern.sub(repl, text)  # type: ignore[arg-type,call-overload]
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


#: what ``voice_problems`` calls a command: only these, left out of an answer, make ``CODE_POINTER`` true
CODE_PROBLEMS = frozenset({"code", "path", "option list"})
#: said after a spoken answer in place of a command, a path or an option list that was not read out
CODE_POINTER = ("The exact command is written out in the article this comes from, "
                "which is easier than following it by ear.")


# --- what a voice answer must not read out (``speakable_problems(text, voice=True)``) ------------
_SQL = re.compile(
    r"\b(?:SELECT\s+[\w*]|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(?:TEMP\s+|UNIQUE\s+|VIRTUAL\s+)?"
    r"(?:TABLE|INDEX|VIEW|TRIGGER)|DROP\s+(?:TABLE|INDEX|VIEW)|ALTER\s+TABLE|PRAGMA\s+\w|WHERE\s+\w+\s*[=<>])"
    r"|[\w'\")]\s*;(?:\s|$)", re.IGNORECASE)
_SQL_KEYWORDS = re.compile(r"\b(?:SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|ALTER|DROP|WHERE|VALUES)\b")
_SHELL = re.compile(
    r"(?:^|\s)(?:\$|%|>>>|sqlite>|#)\s+\S"  # a prompt
    r"|\b(?:git|sqlite3|python3?|pip3?|apache2?ctl|httpd|a2en\w+|a2dis\w+|htpasswd|htdigest|sudo|systemctl|"
    r"chmod|chown|mkdir|curl|wget|ssh|openssl|rotatelogs)\s+(?:-{1,2}\w|[\w.-]+\s+-{1,2}\w|\w+\.\w+)"  # with options or a file
    r"|\s\|\s*\w|&&|\s>>?\s*\S|\b2>&1\b")  # pipes, redirections
_OPTIONS = re.compile(r"(?:^|[\s(,])(?:--[a-z][\w-]+(?:=\S+)?|-[a-zA-Z]\b)")
_PATH = re.compile(r"(?:^|[\s(\"'])(?:~|\.{1,2})?/[\w.@-]+/[\w.@/-]*|\b[A-Z]:\\\\?\w|(?:^|\s)~/[\w.-]+")
_CODE_IN_WORDS = re.compile(r"\bdash dash\b|\b\w+ dot \w+ dot\b|\bsemicolon\b|\bunderscore\b|\bopen paren\b|"
                            r"\bequals sign\b|\bslash \w+ slash\b|\bThe command is:", re.IGNORECASE)
_IDENT = re.compile(
    r"(?<![\w.-])(?:"
    r"[A-Za-z_][\w]*\(\)?(?=\()|[A-Za-z_]\w*\(\)"  # a call: name() or name(
    r"|[a-z]+_[a-z0-9_]+"  # snake_case
    r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?<!\.)(?=[\s,;:)\]!?]|\.\s|\.$|$)"  # dotted.name or file.ext
    r"|--?[a-z][\w-]+"  # an option
    r"|[a-z]+[A-Z]\w*"  # camelCase
    r"|[A-Z][a-z]+[A-Z]\w*"  # CamelCase with an inner capital
    r"|\.[a-z]{3,}\w*"  # a dotfile (.htaccess, .gitconfig)
    r"|[A-Z]{2,}_[A-Z0-9_]+"  # A_CONSTANT
    r")")
_COMMON_DOTTED = re.compile(r"^(?:e\.g|i\.e|etc|vs|a\.m|p\.m|U\.S|www\.\w+|\d[\d.]*)$", re.IGNORECASE)
_CAPTION = re.compile(r"(?:^|[.!?]\s+)(?:[^\s.!?:]+\s+){2,}[^\s.!?:]+:\s*(?=$|[A-Z\"'(])"
                      r"|\b(?:for example|for instance|such as|like this|as follows|the following)\s*[.:]?\s*$",
                      re.IGNORECASE)


def identifiers(text: str) -> list[str]:
    """Identifier-like tokens a listener would have to spell out: calls, snake_case, dotted names and
    file names, options, camelCase, dotfiles, constants."""
    out = []
    for m in _IDENT.finditer(text):
        tok = m.group(0).rstrip(".")
        if tok and not _COMMON_DOTTED.match(tok) and tok not in out:
            out.append(tok)
    return out


#: "Settings > Billing > Invoices": a menu path in an app, not a shell redirection (each step starts upper-case)
_MENU_STEP = re.compile(r"(?<=[\w)*])\s+>\s+(?=\**[A-Z(])")


def menu_path_in_words(text: str) -> str:
    """Say a menu path: "Open Settings > Billing > Invoices." -> "Open Settings, then Billing, then Invoices."."""
    return _MENU_STEP.sub(", then ", text)


def voice_problems(text: str) -> list[str]:
    """What a voice answer must not do (issue 21): read ``code`` (SQL, a command line, a prompt, code
    said in words), a ``path``, an ``option list`` (two options or more), ``identifiers`` (more than
    one: one short name is fine where it is the answer), or say a ``caption without its example``
    ("To set it, run:" with nothing after)."""
    problems = []
    text = menu_path_in_words(text)  # "Settings > Billing" is a way through the app, said step by step
    # a semicolon alone is prose ("custom apps; use just-in-time provisioning"): SQL needs an upper-case keyword
    if _SQL.search(text) and _SQL_KEYWORDS.search(text) or _SHELL.search(text) \
            or _CODE_IN_WORDS.search(text):
        problems.append("code")
    if _PATH.search(text):
        problems.append("path")
    if len(_OPTIONS.findall(text)) >= 2:
        problems.append("option list")
    if len(identifiers(text)) > 1:
        problems.append("identifiers")
    if _CAPTION.search(text.strip()):
        problems.append("caption without its example")
    return problems


def speakable_problems(text: str, *, voice: bool = False) -> list[str]:
    """Why ``text`` would sound wrong read aloud: ``unbalanced brackets``, ``syntax synopsis``
    (``git commit [-a | --interactive] [<file>...]``), ``markup`` (HTML, Markdown, reST) or
    ``table debris``; with ``voice``, also what a caller cannot follow by ear (``voice_problems``:
    code, paths, option lists, more than one identifier, a caption without its example). Empty
    when it can be read out as it is."""
    problems = voice_problems(text) if voice else []
    if not brackets_balanced(text):
        problems.append("unbalanced brackets")
    if _SYNOPSIS.search(text):
        problems.append("syntax synopsis")
    if _MARKUP.search(text):
        problems.append("markup")
    if _TABLE.search(text):
        problems.append("table debris")
    return problems
