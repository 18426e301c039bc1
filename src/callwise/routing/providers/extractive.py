"""Offline answerer: the sentences of the top sources most similar to the question, chosen with an
embedding function passed in (routing imports no embedder). Its confidence is that similarity.

What it says must survive being read aloud, so a source is first cut into *answer units*
(:func:`answer_units`): complete prose sentences; a caption ("To raise the cache time, run:") kept
with the example it introduces when that example is short enough to say, and dropped with it when
it is not; a definition ("--timeout <seconds>" then "Number of seconds to cache credentials") said
with its term. Code listings, syntax synopses, headings, markup and table rows are never units.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from callwise.routing import answer_type
from callwise.routing.providers.base import Provider, Stopwatch
from callwise.routing.text import (
    CODE_POINTER,
    CODE_PROBLEMS,
    approx_tokens,
    sentences,
    speakable_problems,
    strip_markdown,
    voice_problems,
)
from callwise.routing.types import Generation, Grounding, Message

EmbedFn = Callable[[list[str]], np.ndarray]

NOT_FOUND = "I couldn't find that in our help centre."
#: ranking weights (see ``ExtractiveProvider.__init__``), chosen on the fit half of the confidence set
#: and checked on the public manuals' golden answers (bench/offline_answerers.py)
HEADING_WEIGHT = 0.15
TYPE_WEIGHT = 0.05
#: weight for a unit that says what to do (``says_what_to_do``) when the question asks how to fix something
FIX_WEIGHT = 0.12
_ASKS_FIX = re.compile(
    r"\b(?:how (?:do|can|should|would|could) (?:i|we|you) (?:fix|solve|resolve|repair|stop|avoid|get (?:past|around|"
    r"rid of)|handle|deal with|get it working|get this working)|how to (?:fix|solve|resolve|stop|avoid)"
    r"|what (?:should|can|do|must) (?:i|we) do|what do (?:i|we) need to do|(?:fix|solution|workaround) for)\b",
    re.IGNORECASE)
_FIX_HEADING = re.compile(r"\b(?:fix\w*|solv\w*|solution|resolv\w*|what to do|what you can do|how to|steps|"
                          r"troubleshoot\w*|workaround)\b", re.IGNORECASE)
_IMPERATIVE = re.compile(
    r"^(?:If [^,]{1,80},\s*|To [^,]{1,80},\s*|First,?\s*|Then,?\s*)?(?:Open|Go|Click|Tap|Select|Choose|Sign|Log|"
    r"Pause|Wait|Retry|Try|Use|Check|Ask|Contact|Respect|Back off|Watch|Batch|Spread|Remove|Delete|Update|Reset|"
    r"Enable|Disable|Turn|Add|Make sure|Clear|Restart|Reinstall|Reduce|Slow|Request|Include|Set|Change|Install|"
    r"Upgrade|Verify|Confirm|Switch|Reconnect|Refresh|Reload|Close|Enter|Send|Move|Free|Raise|Avoid|Do not|Don't|"
    r"Re-\w+|open|go|click|tap|select|use|check|ask|wait|retry|try|reset|contact)(?=[\s,])")
_QUESTION = re.compile(r"[^.?!]*\?")
_REFERS_BACK = re.compile(r"\b(?:it|its|this|that|these|those|they|them|one|ones|there)\b", re.IGNORECASE)


def asks_fix(question: str) -> bool:
    """The question asks what to do ("... and how do I fix it?", "what should I do?")."""
    return _ASKS_FIX.search(question) is not None


def says_what_to_do(text: str, heading: str = "") -> bool:
    """An instruction: an imperative sentence ("Pause for at least that many seconds, then retry"), or
    one under a section about fixing ("How to fix it in your code")."""
    return _IMPERATIVE.match(text) is not None or _FIX_HEADING.search(heading) is not None


def focus(query: str) -> str:
    """The question of a turn that also says something else ("It turns out we don't really need it.
    Can I still get a full refund?" -> the second sentence), matched against the sources on its
    own: the statement's words otherwise pull in sentences about them. Kept whole when the turn
    asks nothing or when its question points back into the turn ("How do I change it?"), and
    carried terms in brackets after the question stay."""
    asked = [m.group(0).strip() for m in _QUESTION.finditer(query)]
    asked = [a for a in asked if len(a.split()) >= 3]
    if not asked or any(_REFERS_BACK.search(a) for a in asked):
        return query
    rest = _QUESTION.sub(" ", query).strip()
    if not rest or rest.startswith("("):
        return query
    tail = query[query.rfind("?") + 1:].strip()
    return " ".join(asked + ([tail] if tail.startswith("(") else []))


@dataclass(frozen=True)
class Unit:
    """One thing the answerer may say: ``text`` is matched against the question, ``spoken`` is said."""

    pos: int
    text: str
    spoken: str
    complete: bool  # a whole prose sentence (not a list fragment or a sentence cut by chunking)
    heading: str = ""  # the heading of the section it is under ("How long refunds take"), if the source has one
    code: bool = False  # it says a command from the source's code (a caption with its example)


# --- reading a source into blocks -------------------------------------------------------------
_PROMPT = re.compile(r"^(?:\$|%|>>>|\.\.\.|sqlite>|[A-Z]:\\>|PS>)(?:\s|$)")
_SQL_START = re.compile(r"^(?:SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|WITH|BEGIN|COMMIT|ROLLBACK|"
                        r"EXPLAIN|ATTACH|DETACH|VACUUM|REPLACE|ANALYZE|REINDEX|SAVEPOINT|RELEASE)\b")
_COMMAND_START = re.compile(r"^(?:git|python3?|pip3?|py|sqlite3|cd|ls|echo|export|sudo|apt(?:-get)?|make|gcc|cc|"
                            r"chmod|mkdir|rm|cp|mv|cat|curl|source|set|import|from|def|class|return|print)\s")
_SIGNATURE = re.compile(r"^(?:(?:class|exception|coroutine|awaitable|async|classmethod|staticmethod)\s+)?"
                        r"[A-Za-z_][\w.]*\s*\(.*\)\s*(?:->.*)?$")
_OPTION = re.compile(r"^--?[A-Za-z0-9]")
_SENT_END = re.compile(r"[.!?:][\"')\]]*$")
_CODE_CHARS = set("=(){}[]<>;$|\\/_'\"*&^~`@#")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")


_FUNCTION_WORDS = {"a", "an", "the", "of", "to", "and", "or", "by", "for", "in", "on", "with", "not", "that", "is",
                   "are", "be", "as", "at", "from", "if", "this", "it", "its", "can", "may", "will", "you", "your"}
MAX_EXAMPLE_CHARS = 60  # an example longer than this (or with more words, or a pipe) is not read out
MAX_EXAMPLE_WORDS = 8


def _clean(line: str) -> str:
    return " ".join(line.replace("¶", " ").split())


def _code_line(line: str) -> bool:
    """A line of code, a command or a syntax synopsis rather than (wrapped) prose."""
    s = line.strip()
    if not s:
        return False
    if _PROMPT.match(s) or s.endswith((";", "{", "}", "(", "\\")) or _SIGNATURE.match(s) or _OPTION.match(s):
        return True
    # read with Markdown emphasis removed: a prose line stating a fact in bold ("usually need
    # **5-7 business days**") is still prose, and its sentences are said without the asterisks
    if set(speakable_problems(strip_markdown(s))) & {"syntax synopsis", "markup"}:
        return True
    if (_SQL_START.match(s) or _COMMAND_START.match(s)) and not _SENT_END.search(s):
        return True
    return sum(ch in _CODE_CHARS for ch in s) / len(s) > 0.15


def _heading_line(lines: list[str]) -> bool:
    """The first line of a block is a heading the chunker put there ("3.2. Affinity Of Expressions")."""
    first = lines[0]
    words = first.split()
    titled = re.sub(r"\s\([A-Za-z0-9 ,&/-]{1,40}\)$", "", first)  # "Two-factor authentication (2FA)"
    if len(lines) < 2 or len(words) > 8 or re.search(r"[.!?:;,)\]\"'`*|]$|[.!?]\s", titled) or _code_line(first):
        return False
    if words[-1].lower() in _FUNCTION_WORDS:
        return False
    if _code_line(lines[1]) or _PROMPT.match(lines[1]):
        return True
    return bool(re.match(r"[A-Z0-9\"'(]", lines[1])) and bool(_SENT_END.search(lines[-1]))


def _heading_like(line: str) -> bool:
    return len(line.split()) <= 12 and not re.search(r"[.!?:;,)\]\"'`*|]$", line)


@dataclass
class _Block:
    kind: str  # "prose", "code", "heading", "debris"
    lines: list[str]
    list_item: bool = False


def _blocks(text: str) -> list[_Block]:
    """Blank-line separated blocks (Markdown fences, list items and headings respected), each
    classified as prose, code, heading or debris (table rows, navigation)."""
    raw: list[tuple[list[str], bool, bool]] = []  # (lines, fenced, list item)
    current: list[str] = []
    fence: list[str] | None = None
    item = False

    def flush() -> None:
        nonlocal item
        if current:
            raw.append((current.copy(), False, item))
            current.clear()
        item = False

    for line in text.splitlines():
        if _FENCE.match(line):
            if fence is None:
                flush()
                fence = []
            else:
                raw.append((fence, True, False))
                fence = None
            continue
        if fence is not None:
            if line.strip():
                fence.append(line.strip())
            continue
        stripped = _clean(line)
        if not stripped or _TABLE_RULE.match(stripped):
            flush()
            continue
        if _MD_HEADING.match(stripped):
            flush()
            raw.append(([stripped.lstrip("#").strip()], False, False))
            continue
        if _LIST_ITEM.match(stripped) and not _PROMPT.match(stripped):
            flush()
            item = True
            stripped = _LIST_ITEM.sub("", stripped, count=1)
        current.append(stripped)
    flush()
    if fence:
        raw.append((fence, True, False))
    blocks: list[_Block] = []
    for lines, fenced, item in raw:
        if not fenced and _heading_line(lines):
            blocks.append(_Block("heading", lines[:1]))
            lines = lines[1:]
        blocks.append(_classify(lines, fenced, item))
    return blocks


def _classify(lines: list[str], fenced: bool, item: bool) -> _Block:
    if fenced or any(_PROMPT.match(ln) for ln in lines):
        return _Block("code", lines)
    if lines[0].startswith("|") or lines[0].count(" | ") >= 2:
        return _Block("debris", lines)
    code = sum(_code_line(ln) for ln in lines)
    joined = " ".join(lines)
    words = re.findall(r"[A-Za-z]{2,}", joined)
    ends = bool(_SENT_END.search(joined))
    if code * 2 > len(lines) or (code and not ends):
        return _Block("code", lines)
    if len(lines) == 1 and not item and lines[0].endswith("?") and _words(lines[0]) <= 12:
        return _Block("heading", lines)  # "Lost your phone or security key?": a section's title, not an answer
    if ends and len(words) >= 2:
        return _Block("prose", lines, item)
    if len(lines) == 1 and not item and _heading_like(lines[0]):
        return _Block("heading", lines)
    if len(words) >= 4:
        return _Block("prose", lines, item)
    return _Block("debris", lines)


# --- answer units -----------------------------------------------------------------------------
#: the document talking about itself, not about the answer: "This article covers ...", 'Own article: "E-4290: ..."'
_SCAFFOLD = re.compile(
    r"^(?:(?:own|related|full|main|separate)\s+(?:article|page|guide)s?\s*:|see also\b|related articles?\b"
    r"|use this (?:index|article|page|guide)\b|in this (?:article|page|guide|section|document)\b"
    r"|(?:this|the following) (?:article|page|guide|section|document|topic|tutorial) (?:[a-z]+s|is about|will)\b)",
    re.IGNORECASE)
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _words(text: str) -> int:
    return len(text.split())


def _sentences(text: str) -> list[str]:
    """Sentences of a paragraph; a one- or two-word "sentence" (a term such as ``NULL.``) stays
    with the sentence after it."""
    out: list[str] = []
    carry = ""
    for s in _SPLIT.split(text):
        s = f"{carry} {s.strip()}".strip()
        if _words(s) <= 2 and not s.endswith(":"):
            carry = s
            continue
        carry = ""
        out.append(s)
    if carry:
        out.append(carry)
    return out


def _prose(block: _Block) -> str:
    return " ".join(strip_markdown(" ".join(block.lines)).split())


_SUBCOMMAND = re.compile(r"^([a-z][\w-]*(?: [a-z][\w-]*)?) [\[<(]")


def _term(block: _Block) -> str | None:
    """How to say a definition's term: ``--timeout <seconds>`` -> ``--timeout``,
    ``json.loads(s, *, cls=None)`` -> ``json.loads``, ``pop [--index] [<stash>]`` -> ``pop``;
    None when the block is not a term."""
    if block.kind != "code" or len(block.lines) > 2:
        return None
    names: list[str] = []
    for line in block.lines:
        line = line.strip()
        if _SIGNATURE.match(line):
            name = re.sub(r"^(?:class|exception|coroutine|awaitable|async|classmethod|staticmethod)\s+", "", line)
            names.append(name.split("(", 1)[0].strip())
        elif _OPTION.match(line):
            parts = [re.sub(r"[=\s\[<].*$", "", p.strip()) for p in line.split(",")]
            names.extend(p for p in parts if _OPTION.match(p))
        elif m := _SUBCOMMAND.match(line):
            names.append(m.group(1))
        else:
            return None
    return ", ".join(dict.fromkeys(names)) if names and len(names) <= 3 else None


def _terms(blocks: list[_Block], b: int) -> str | None:
    """The term of the definition starting at block ``b``: the term blocks right before it
    (a definition list writes ``-d`` and ``--delete`` as two terms of one definition)."""
    names: list[str] = []
    j = b - 1
    while j >= 0 and len(names) < 3:
        term = _term(blocks[j])
        if term is None:
            break
        names.insert(0, term)
        j -= 1
    return ", ".join(names) if names else None


def _example(block: _Block) -> str | None:
    """A code block that can be said: one short line (a prompt dropped), no placeholders or markup."""
    if block.kind != "code":
        return None
    lines = [_PROMPT.sub("", ln, count=1).strip() for ln in block.lines if ln.strip()]
    if len(lines) != 1:
        return None
    ex = lines[0]
    if (not ex or len(ex) > MAX_EXAMPLE_CHARS or len(ex.split()) > MAX_EXAMPLE_WORDS or speakable_problems(ex)
            or sum(ex.count(c) for c in "()[]{}") > 4 or re.search(r"\s(?:[|<>;]|&&|\|\||>>|2>)\s", ex)):
        return None
    return ex


def answer_units(text: str, *, max_words: int = 60) -> list[Unit]:
    """What may be said from one source, in order (see the module docstring)."""
    blocks = _blocks(text)
    units: list[Unit] = []
    consumed: set[int] = set()
    heading = ""
    for b, block in enumerate(blocks):
        if block.kind == "heading":
            heading = " ".join(block.lines)
        if block.kind != "prose" or b in consumed:
            continue
        sents = _sentences(_prose(block))
        term = _terms(blocks, b)
        for k, sent in enumerate(sents):
            if _SCAFFOLD.match(sent) or sent.endswith("?"):
                continue  # the article describing itself, or a question (a FAQ's title): never an answer
            code = False
            complete = bool(re.search(r"[.!?][\"')\]]*$", sent)) and not block.list_item
            if (b == 0 and k == 0 and sent[:1].islower()) or sent.startswith("See "):
                complete = False  # a sentence the chunker cut in two; a pointer elsewhere
            said = f"{term}: {sent}" if term and k == 0 else sent
            if said.endswith(":") and k == len(sents) - 1:
                nxt = blocks[b + 1] if b + 1 < len(blocks) else None
                example = _example(nxt) if nxt else None
                if nxt is not None and nxt.kind == "code":
                    if example is None:
                        continue  # a caption without the example it introduces means nothing aloud
                    said = f"{said} {example}" + ("" if re.search(r"[.!?]$", example) else ".")
                    complete = code = True
                elif nxt is not None and nxt.kind == "prose":
                    items: list[str] = []
                    j = b + 1
                    while j < len(blocks) and blocks[j].kind == "prose" and len(items) < 4:
                        items.append(_prose(blocks[j]))
                        j += 1
                    joined = " ".join(items) if all(re.search(r"[.!?]$", i) for i in items) else ", ".join(items) + "."
                    if items and _words(said) + _words(joined) <= max_words and not speakable_problems(joined):
                        said = f"{said} {joined}"
                        consumed.update(range(b + 1, j))
                        complete = True
                    else:
                        said, complete = said[:-1] + ".", False
                else:
                    said, complete = said[:-1] + ".", False
            if _words(said) < 4 or _words(said) > max_words or speakable_problems(said):
                continue
            # under a question heading (a FAQ: "Lost your phone or security key?") the answer is matched with its question
            matched = f"{heading} {said}" if heading.endswith("?") else said
            units.append(Unit(len(units), matched, said, complete, heading, code))
    return units


class ExtractiveProvider(Provider):
    name = "extractive"
    generative = False

    def __init__(self, embed_fn: EmbedFn, *, model: str = "extractive-v1", max_sentences: int = 3,
                 max_sources: int = 3, margin: float = 0.12, min_similarity: float = 0.3,
                 full_confidence_at: float = 1.0, cache_size: int = 50_000, max_words: int = 60,
                 fragment_penalty: float = 0.05, heading_weight: float = HEADING_WEIGHT,
                 type_weight: float = TYPE_WEIGHT) -> None:
        """``full_confidence_at``: similarity that maps to confidence 1.0 (1.0 = the raw cosine).

        ``min_similarity`` 0.3: on the golden set every in-scope question's best sentence scored
        0.39 or more, while off-topic ones ("What's the weather in Paris?") scored 0.21-0.23.

        ``max_words`` bounds what is said (about 20 seconds of speech); ``fragment_penalty`` is
        taken off the similarity of a unit that is not a whole prose sentence, so a complete
        sentence wins a near tie. Confidence stays the raw similarity of the best unit.

        Units are ranked by more than their own similarity (``_rank``): ``heading_weight`` times
        how much closer the question is to the unit's section heading than to the sources'
        headings on average ("how long does it take for the money to come back" is closer to
        "How long refunds take" than to "After 30 days: prorated credit, not cash"), and
        ``type_weight`` for a unit holding what the question asks for (a duration for "how long",
        a number for "how many", a time for "when"; ``callwise.routing.answer_type``), taken off one that
        does not.

        Source sentences repeat from turn to turn (the same help articles come back), so their
        embeddings are kept in an LRU of ``cache_size`` sentences; only the question and unseen
        sentences are embedded on a turn.
        """
        super().__init__(model)
        self.embed_fn = embed_fn
        self.max_sentences = max_sentences
        self.max_sources = max_sources
        self.margin = margin
        self.min_similarity = min_similarity
        self.full_confidence_at = full_confidence_at
        self.max_words = max_words
        self.fragment_penalty = fragment_penalty
        self.heading_weight = heading_weight
        self.type_weight = type_weight
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    async def generate(self, messages: Sequence[Message], *, temperature: float = 0.0, max_tokens: int = 512,
                       logprobs: bool = False, grounding: Grounding | None = None) -> Generation:
        sw = Stopwatch()
        signals: dict[str, float] | None = None
        if grounding is None:
            text = messages[-1].content if messages else ""
            answer, sim, used = await asyncio.to_thread(self._summarize, text)
        else:
            signals = {}
            answer, sim, used = await asyncio.to_thread(self._answer, grounding, signals)
        confidence = max(0.0, min(1.0, sim / self.full_confidence_at))
        return Generation(text=answer, model=self.model, input_tokens=used, output_tokens=approx_tokens(answer),
                          confidence=round(confidence, 4), signals=signals, latency_ms=sw.elapsed_ms,
                          finish_reason="stop")

    def _embed(self, texts: list[str]) -> np.ndarray:
        vecs = np.asarray(self.embed_fn(texts), dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    def _embed_cached(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, self._embed(missing), strict=True))
            with self._lock:
                for t in missing:
                    self._cache[t] = known[t]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts])

    def _answer(self, g: Grounding, signals: dict[str, float] | None = None) -> tuple[str, float, int]:
        """``signals`` (filled when given): best and runner-up unit similarity and the best unit's
        source rank, which ``callwise.routing.calibration`` maps to a probability of being right."""
        cands: list[tuple[int, Unit]] = []  # (source rank, unit)
        seen: set[str] = set()
        used = approx_tokens(g.query)
        for rank, src in enumerate(g.sources[: self.max_sources]):
            used += approx_tokens(src.text)
            for unit in answer_units(src.text, max_words=self.max_words):
                if unit.spoken not in seen:  # overlapping chunks repeat sentences
                    seen.add(unit.spoken)
                    cands.append((rank, unit))
        if not cands or not g.query.strip():
            return NOT_FOUND, 0.0, used if cands else 0
        question = focus(g.query)
        qvec = self._embed([question])[0]
        sims = self._embed_cached([u.text for _, u in cands]) @ qvec
        heads, kind, fits = self._rank_signals(question, qvec, [u for _, u in cands])
        scores = (sims - np.array([0.0 if u.complete else self.fragment_penalty for _, u in cands], dtype=np.float32)
                  + self.heading_weight * (heads - float(heads.mean())) + self.type_weight * fits)
        if asks_fix(question):  # "what does E-4290 mean and how do I fix it": the fix, not only the meaning
            scores = scores + FIX_WEIGHT * np.array([says_what_to_do(u.text, u.heading) for _, u in cands],
                                                    dtype=np.float32)
        order = np.argsort(-scores, kind="stable")
        top = int(order[0])
        best = float(sims[top])
        if signals is not None:
            signals.update(best=best, second=float(sims[int(order[1])]) if len(order) > 1 else 0.0,
                           best_source_rank=float(cands[top][0]), units=float(len(cands)),
                           heading_sim=float(heads[top]), heading_lead=float(heads[top] - heads.max(initial=0.0)),
                           type_expected=0.0 if kind is None else 1.0, type_fit=float(fits[top]))
        if best < self.min_similarity:
            return NOT_FOUND, max(0.0, best), used
        pointer = ""
        if g.spoken:  # a caller cannot follow code, paths or option lists by ear: say the prose, point to the rest
            sayable = [int(i) for i in order if not voice_problems(cands[int(i)][1].spoken)]
            skipped = [int(i) for i in order[: list(order).index(sayable[0])]] if sayable else \
                [int(i) for i in order if float(sims[int(i)]) >= self.min_similarity]
            if any(cands[i][1].code or CODE_PROBLEMS & set(voice_problems(cands[i][1].spoken)) for i in skipped):
                pointer = CODE_POINTER  # only where a command, a path or an option list really was left out
            if not sayable or float(sims[sayable[0]]) < self.min_similarity:
                return pointer or NOT_FOUND, best, used  # only the command answers: say where it is
            top = sayable[0]
            order = np.array(sayable)
        best_rank = cands[top][0]
        chosen = [top]
        words = _words(cands[top][1].spoken)
        for i in order[1:]:
            if len(chosen) >= self.max_sentences:
                break
            rank, unit = cands[int(i)]
            # stay with the best source, where neighbouring sentences carry the answer's detail (keeping
            # to the best unit's section as well lost identifiers on the public manuals, whose
            # definition lists read as many small sections: bench/offline_answerers.py, 45 questions,
            # items present 0.464 -> 0.417)
            if rank == best_rank and float(scores[i]) >= float(scores[top]) - self.margin \
                    and words + _words(unit.spoken) <= self.max_words:
                if g.spoken and voice_problems(" ".join(cands[j][1].spoken for j in [*chosen, int(i)])):
                    continue  # together they would name more than one identifier
                chosen.append(int(i))
                words += _words(unit.spoken)
        # the sentence that answers first, then the detail around it in the source's order
        rest = sorted(chosen[1:], key=lambda i: (cands[i][0], cands[i][1].pos))
        if asks_fix(question) and not says_what_to_do(cands[top][1].text, cands[top][1].heading):
            rest = self._fix_units(cands, sims, order, top, g.spoken) or rest
        text = " ".join(cands[i][1].spoken for i in [chosen[0], *rest])
        while g.spoken and rest and voice_problems(text):  # the whole, too, names one identifier at most
            rest.pop()
            text = " ".join(cands[i][1].spoken for i in [chosen[0], *rest])
        return (f"{text} {pointer}" if pointer else text), best, used

    def _fix_units(self, cands: list[tuple[int, Unit]], sims: np.ndarray, order: np.ndarray, top: int,
                   spoken: bool) -> list[int]:
        """For a "how do I fix it" question whose best unit only says what is wrong: the instructions
        to say after it, the section of the best-matching instruction (its first units, in order), or
        that instruction alone when it is under no section about fixing. Empty when none is relevant."""
        fixes = [int(i) for i in order if int(i) != top and float(sims[int(i)]) >= self.min_similarity
                 and says_what_to_do(cands[int(i)][1].text, cands[int(i)][1].heading)
                 and not (spoken and voice_problems(cands[int(i)][1].spoken))]
        if not fixes:
            return []
        rank, unit = cands[fixes[0]]
        section = [fixes[0]]
        if unit.heading and _FIX_HEADING.search(unit.heading):
            section = [i for i, (r, u) in enumerate(cands) if r == rank and u.heading == unit.heading and i != top]
            section.sort(key=lambda i: cands[i][1].pos)
        out: list[int] = []
        words = _words(cands[top][1].spoken)
        for i in section:
            text = " ".join(cands[j][1].spoken for j in [top, *out, i])
            if len(out) + 1 >= self.max_sentences or words + _words(cands[i][1].spoken) > self.max_words \
                    or (spoken and voice_problems(text)):
                continue
            out.append(i)
            words += _words(cands[i][1].spoken)
        return out or [fixes[0]]

    def _rank_signals(self, question: str, qvec: np.ndarray,
                      units: list[Unit]) -> tuple[np.ndarray, answer_type.AnswerType | None, np.ndarray]:
        """Per unit: the question's similarity to its section heading (the mean over the headed
        units for one without a heading, so it is neither helped nor hurt), the answer type the
        question expects, and +1 / -1 / 0 for a unit that has it / lacks it / nothing expected."""
        headings = [u.heading for u in units]
        distinct = [h for h in dict.fromkeys(headings) if h]
        heads = np.zeros(len(units), dtype=np.float32)
        if distinct:
            hsim = dict(zip(distinct, (self._embed_cached(distinct) @ qvec).tolist(), strict=True))
            known = [hsim[h] for h in headings if h]
            fill = float(np.mean(known))
            heads = np.array([hsim[h] if h else fill for h in headings], dtype=np.float32)
        kind = answer_type.expected(question)
        fits = np.zeros(len(units), dtype=np.float32)
        if kind is not None:
            fits = np.array([1.0 if answer_type.has(kind, u.text) else -1.0 for u in units], dtype=np.float32)
        return heads, kind, fits

    def _summarize(self, text: str) -> tuple[str, float, int]:
        sents = sentences(text)
        if not sents:
            return text.strip()[:400], 0.0, approx_tokens(text)
        vecs = self._embed(sents)
        centroid = vecs.mean(axis=0)
        scores = vecs @ centroid
        top = sorted(np.argsort(-scores)[: self.max_sentences].tolist())
        return " ".join(sents[i] for i in top), float(scores.max()), approx_tokens(text)
