"""Answers a caller can listen to: the normaliser between the router and TTS.

Models asked for plain speech still answer in Markdown now and then (issue 14: two fenced SQL
blocks, a bullet list, a sentence cut off by the token cap). ``speakable(text)`` turns a whole
answer into plain sentences; ``SpeakableStream`` does the same on a stream of deltas, releasing
text sentence by sentence (what TTS wants anyway), so it can sit between a streamed answer and TTS:

- code is never read out (issue 21: a caller cannot follow SQL or a command line by ear): a code
  block is dropped, inline code of more than one word becomes "the command", and once the answer
  is over one sentence says where the exact command is written (``CODE_POINTER``); a single
  inline name (``passwd``) is said in words, as the one identifier an answer may name;
- Markdown emphasis, headings, quotes, tables and HTML tags removed; links keep their text, a bare
  URL is said as "the website";
- a menu path ("Settings > Billing > Invoices") is said step by step ("Settings, then Billing, then Invoices");
- bullets and numbered items become sentences; citation marks ([1]) are removed;
- at the end of the stream, a trailing fragment that is not a complete sentence (the token cap cut
  it) is dropped when a complete sentence was already said, else finished with a full stop.

Text channels keep Markdown: only voice and video answers go through this (``needs_speakable``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

from callwise.routing.text import CODE_POINTER, menu_path_in_words

#: a command longer than this many words is not read out
SHORT_CODE_WORDS = 8

_SYMBOLS = [
    ("--", " dash dash "), ("&&", " and then "), ("||", " or "), ("->", " arrow "), ("=>", " arrow "),
    ("==", " equals "), ("!=", " not equal to "), ("<=", " at most "), (">=", " at least "),
    ("/", " slash "), ("\\", " backslash "), ("=", " equals "), ("_", " underscore "), ("|", " pipe "),
    ("~", " tilde "), ("*", " star "), ("@", " at "), ("#", " hash "), ("$", " dollar "), ("%", " percent "),
    ("<", " less than "), (">", " greater than "), ("+", " plus "), (";", " semicolon "), (":", " colon "),
    ("{", " "), ("}", " "), ("[", " "), ("]", " "), ("(", " "), (")", " "), ('"', " "), ("'", " "), ("^", " caret "),
]
_DOT_IN_WORD = re.compile(r"(?<=[\w/~])\.(?=\w)")
_DASH_OPT = re.compile(r"(?<![\w-])-(?=\w)")
_URL = re.compile(r"\(?<?(?:https?://|www\.)[^\s)>]+>?\)?")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_CITE = re.compile(r"\s?\[\d{1,2}(?:\s*,\s*\d{1,2})*\]")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_EMPH = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])|(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_HTML = re.compile(r"</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>|&(?:nbsp|amp|lt|gt|quot);")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s*")
_QUOTE = re.compile(r"^\s*>\s?")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")
_SENTENCE_END = re.compile(r"[.!?…](?:[\"')\]]*)(?=\s|$)")
_MARKER_ONLY = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s*$")
_ENDS_SENTENCE = re.compile(r"[.!?…][\"')\]]*\s*$")


def code_in_words(code: str) -> str:
    """Say a short command: ``git config --global user.name`` -> "git config dash dash global user dot name"."""
    text = _DOT_IN_WORD.sub(" dot ", code.strip())
    text = _DASH_OPT.sub(" dash ", text)
    for sym, word in _SYMBOLS:
        text = text.replace(sym, word)
    return " ".join(text.split())


def _inline(text: str) -> str:
    """Inline Markdown/HTML of one line to speech."""
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _INLINE_CODE.sub(lambda m: code_in_words(m.group(1)) if len(m.group(1).split()) <= 1
                            else "the command", text)
    text = _URL.sub("the website", text)
    text = _CITE.sub("", text)
    text = _HTML.sub(" ", text)
    text = _EMPH.sub(lambda m: m.group(2) or m.group(3) or m.group(4) or "", text)
    text = text.replace("**", "").replace("`", "")
    text = menu_path_in_words(text)  # "Settings > Billing > Invoices" -> "Settings, then Billing, then Invoices"
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text)
    return " ".join(text.split())


def _line(line: str) -> tuple[str, bool]:
    """One line of Markdown as spoken text; True when it was a list item or heading (a unit of its own)."""
    if _TABLE_RULE.match(line):
        return "", False
    unit = bool(_BULLET.match(line) or _HEADING.match(line))
    line = _QUOTE.sub("", _HEADING.sub("", _BULLET.sub("", line)))
    if line.count("|") >= 2:  # a table row: its cells, in order
        line = ", ".join(c.strip() for c in line.strip().strip("|").split("|") if c.strip())
    return _inline(line), unit


def _finish(sentence: str) -> str:
    sentence = sentence.strip().rstrip(",;:")
    if sentence and not _ENDS_SENTENCE.search(sentence):
        sentence += "."
    return sentence


def _code_block(body: str) -> str:
    """Nothing: a code block is not read out, whatever its length (the stream says where it is)."""
    return ""


@dataclass
class SpeakableStream:
    """Incremental normaliser: ``feed(delta)`` returns the speakable text that is complete so far
    (whole sentences), ``flush()`` the rest at the end of the answer. ``reset()`` after a barge-in."""

    #: sentences the router appends after the model's text (its disclaimer): where one begins, the
    #: model's answer ended, so a cut-off fragment before it is dropped as at the end of the stream
    boundaries: tuple[str, ...] = ()
    _buf: str = ""
    _in_fence: bool = False
    _fence: list[str] = field(default_factory=list)
    _pending: str = ""  # normalised text not yet ending a sentence
    said_sentence: bool = False
    dropped: list[str] = field(default_factory=list)  # what was not read out (long code, a cut-off tail)
    code_dropped: bool = False  # a command was left out: the pointer to it is said at the end
    code: list[str] = field(default_factory=list)  # the code left out, as written (blocks and multi-word inline code)
    _pointed: bool = False

    def reset(self) -> None:
        self.__init__(boundaries=self.boundaries)  # type: ignore[misc]

    def feed(self, delta: str) -> str:
        for b in self.boundaries:
            head = b.strip()[:40]
            i = delta.find(head) if head else -1
            if i >= 0:  # the model's answer ended just before this
                before = self._feed(delta[:i]) + self.flush()
                after = self._feed(delta[i:])
                return (before + " " + after).strip() + " " if before or after else ""
        return self._feed(delta)

    def _feed(self, delta: str) -> str:
        self._buf += delta
        out: list[str] = []
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            out.append(self._take_line(line, complete=True))
        if not self._in_fence and self._buf and not self._buf.lstrip().startswith(("`", "|")):
            # a long line: release its whole sentences (not inside an open code span or link)
            cut = self._safe_cut(self._buf)
            if cut:
                head, self._buf = self._buf[:cut], self._buf[cut:]
                out.append(self._take_line(head, complete=False))
        return self._release("".join(out))

    def flush(self) -> str:
        tail = ""
        if self._buf and (self._in_fence or self._buf.strip().startswith(("```", "~~~"))):
            tail = self._take_line(self._buf, complete=True)
        elif self._buf:  # the last line may have been cut by the token cap: judged as a sentence below
            self._note_inline(self._buf)
            text, _ = _line(self._buf)
            tail = self._add("", unit=False)
            self._pending = (self._pending + " " + text).strip()
        self._buf = ""
        if self._in_fence:  # an unclosed fence at the end: treat what came as the block
            self._in_fence = False
            if any(ln.strip() for ln in self._fence):
                self.code_dropped = True
                self.code.append("\n".join(self._fence).strip())
            tail += self._add(_code_block("\n".join(self._fence)), unit=True)
            self._fence.clear()
        text = self._release(tail)
        rest = " ".join(self._pending.split())
        self._pending = ""
        if rest:
            if _ENDS_SENTENCE.search(rest):
                text += (" " if text or self.said_sentence else "") + rest
            elif self.said_sentence or text:
                self.dropped.append(rest)  # cut off by the token cap: not said
            else:
                text += _finish(rest)
        if self.code_dropped and not self._pointed:
            self._pointed = True
            text += (" " if text or self.said_sentence else "") + CODE_POINTER
        return text.strip() if not self.said_sentence else text.rstrip()

    # -- internals
    def _note_inline(self, line: str) -> None:
        """Inline code of more than one word is said as "the command": keep it, and the pointer is due."""
        long_inline = [m.group(1) for m in _INLINE_CODE.finditer(line) if len(m.group(1).split()) > 1]
        if long_inline:
            self.code_dropped = True
            self.code.extend(long_inline)

    def _safe_cut(self, text: str) -> int:
        last = 0
        for m in _SENTENCE_END.finditer(text):
            head = text[:m.end()]
            if _MARKER_ONLY.match(head):
                continue  # "1." of a numbered item, not a sentence
            if head.count("`") % 2 == 0 and head.count("[") <= head.count("]") and head.count("(") <= head.count(")") \
                    and not re.search(r"(?:https?://|www\.)\S*$", head):
                last = m.end()
        return last

    def _take_line(self, line: str, *, complete: bool) -> str:
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            if self._in_fence:
                self._in_fence = False
                block = "\n".join(self._fence)
                self._fence.clear()
                said = _code_block(block)
                if not said and block.strip():
                    self.dropped.append(block)
                    self.code.append(block.strip())
                    self.code_dropped = True
                return self._add(said, unit=True)
            self._in_fence = True
            return self._add("", unit=True)
        if self._in_fence:
            self._fence.append(line)
            return ""
        self._note_inline(line)
        text, unit = _line(line)
        if complete and not unit and not stripped:
            return self._add("", unit=True)  # a blank line ends a paragraph
        return self._add(text, unit=unit or (complete and _looks_like_heading(stripped)))

    def _add(self, text: str, *, unit: bool) -> str:
        """Append normalised text; a unit (item, heading, block, paragraph end) closes the sentence."""
        if unit:
            done = _finish(self._pending)
            self._pending = ""
            if text:
                if done:
                    done += " "
                done += _finish(text)
            return (done + " ") if done else ""
        self._pending = (self._pending + " " + text).strip() if text else self._pending
        return ""

    def _release(self, text: str) -> str:
        """``text`` (already whole units) plus any complete sentences of the pending text."""
        cut = 0
        for m in _SENTENCE_END.finditer(self._pending):
            cut = m.end()
        if cut:
            text += self._pending[:cut] + " "
            self._pending = self._pending[cut:].lstrip()
        text = " ".join(text.split())
        if text:
            text += " "
            self.said_sentence = True
        return text


def _looks_like_heading(line: str) -> bool:
    return bool(line) and len(line.split()) <= 6 and line.endswith(":")


def speakable(text: str) -> str:
    """A whole answer as plain spoken sentences (see the module docstring)."""
    s = SpeakableStream()
    out = s.feed(text)
    return " ".join((out + s.flush()).split())


def needs_speakable(modality: str) -> bool:
    """Voice, video and screen-share answers are spoken (the agent talks the caller through their screen);
    text chat keeps Markdown."""
    return modality in ("voice", "video", "screen_share")


async def speakable_deltas(deltas: AsyncIterable[str]) -> AsyncIterator[str]:
    """Wrap a stream of answer deltas (e.g. ``router.answer_stream``) into speakable deltas."""
    s = SpeakableStream()
    async for delta in deltas:
        out = s.feed(delta)
        if out:
            yield out
    tail = s.flush()
    if tail:
        yield tail


def trim_to_sentence(text: str) -> str:
    """Drop a trailing fragment that is not a complete sentence (an answer cut by the token cap)."""
    text = text.rstrip()
    if not text or _ENDS_SENTENCE.search(text):
        return text
    cut = 0
    for m in _SENTENCE_END.finditer(text):
        cut = m.end()
    return text[:cut].rstrip() if cut else text
