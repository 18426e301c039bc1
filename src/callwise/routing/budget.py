"""A context budget per tier: how many prompt tokens a tier may spend, and fitting sources to it.

A tier declares its model's ``window`` (the server's context length) and an ``input_budget`` (the
most prompt tokens an answer may cost). The prompt builder (``callwise.routing.prompts``) counts the fixed
parts (system prompt, question, conversation history) and gives the sources what is left:

1. the passage each source was retrieved for (the matched child chunk), in retrieval order;
2. then, in the same order, the whole parent where it fits, else the sentences around the passage;
3. a source whose passage does not fit is dropped; a first passage that alone does not fit is cut
   at a sentence boundary.

Counting is either the model's own tokenizer (a GGUF loaded vocabulary-only) or an estimate from
the character count with a safety margin (``EstimateCounter``); ``bench/routing.py --tokenizer``
measures the estimate's error against the real tokenizer. A server that still rejects the prompt for
length (``ProviderError.overflow``) gets one smaller prompt: see ``shrink_after_overflow``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from callwise.routing.types import SourceDoc

#: Tokens a chat template adds around each message (role markers, end-of-turn): measured 4-6 on
#: Gemma/Qwen/Llama templates; OpenAI documents 3-4.
PER_MESSAGE_TOKENS = 6
#: Always left free between the prompt and the window, on top of the answer's max_tokens.
WINDOW_SLACK = 16

#: Context windows (tokens) by provider when a tier does not declare one. Cloud windows are the
#: vendors' published limits for the default models; ``openai_compatible`` assumes a small local
#: server (llama.cpp's and Ollama's defaults are 2,048-4,096) and should be set per server.
DEFAULT_WINDOWS: dict[str, int | None] = {
    "google": 1_048_576,
    "openai": 128_000,
    "anthropic": 200_000,
    "openai_compatible": 4_096,
    "local": 4_096,
    "extractive": None,
}
#: Whole-prompt budgets (system + history + sources + question) by tier when none is declared:
#: about 1,500 tokens of sources for tier 1 after a ~500-token system prompt, more for the tiers
#: that get the harder questions.
DEFAULT_INPUT_BUDGETS: dict[str, int] = {"tier1": 2_000, "tier2": 3_000, "tier3": 6_000}


class TokenCounter(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def exact(self) -> bool: ...

    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class EstimateCounter:
    """Tokens from characters: ``ceil(chars / chars_per_token * (1 + margin))``.

    Measured on 150 passages of the Git and SQLite manuals (bench/data) against the models' own
    tokenizers: median characters a token 3.90 (Gemma 3), 4.31 (Qwen 2.5), 3.63 (SmolLM2). With
    3.6 and a 10 % margin the estimate is 20 % / 32 % / 11 % high at the median and low on 6 % /
    1 % / 20 % of passages (at worst by 13 % / 0.4 % / 25 %, dense code); over a whole prompt the
    errors average out. Where the model's GGUF is at hand, ``tokenizer:`` in the tiers file counts
    exactly (``GGUFCounter``); a server that still rejects the prompt gets one smaller one.
    """

    chars_per_token: float = 3.6
    margin: float = 0.10
    name: str = "estimate"
    exact: bool = False

    def count(self, text: str) -> int:
        if not text:
            return 0
        return int(math.ceil(len(text) / self.chars_per_token * (1.0 + self.margin)))


class GGUFCounter:
    """The model's own tokenizer, from a GGUF file loaded vocabulary-only (no weights, ~0.1 s)."""

    exact = True

    def __init__(self, model_path: str | Path) -> None:
        from llama_cpp import Llama  # raises ImportError without the local-llm extra

        self.path = Path(model_path)
        self._llm: Any = Llama(model_path=str(self.path), vocab_only=True, verbose=False)
        self.name = f"gguf:{self.path.name}"

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


_COUNTERS: dict[str, TokenCounter] = {}


def counter_for(tokenizer: str | None) -> TokenCounter:
    """``None``/``"estimate"``: the estimate; a path to a ``.gguf``: that model's tokenizer (cached).
    Falls back to the estimate when llama-cpp-python is missing or the file cannot be read."""
    if not tokenizer or tokenizer == "estimate":
        return EstimateCounter()
    if tokenizer not in _COUNTERS:
        try:
            _COUNTERS[tokenizer] = GGUFCounter(tokenizer)
        except Exception:  # noqa: BLE001 - an unusable tokenizer must not stop a live call
            import logging

            logging.getLogger(__name__).warning("tokenizer %s unavailable; using the estimate", tokenizer)
            return EstimateCounter()
    return _COUNTERS[tokenizer]


@dataclass(frozen=True)
class ContextBudget:
    """What a tier may put in one prompt. ``window``/``input_budget`` None = no limit of that kind."""

    window: int | None = None
    input_budget: int | None = None
    max_output: int = 512
    counter: TokenCounter = field(default_factory=EstimateCounter)

    @property
    def prompt_limit(self) -> int | None:
        """The most prompt tokens: the input budget, and never more than the window minus the answer."""
        limits = []
        if self.window is not None:
            limits.append(self.window - self.max_output - WINDOW_SLACK)
        if self.input_budget is not None:
            limits.append(self.input_budget)
        return max(0, min(limits)) if limits else None

    def scaled(self, factor: float) -> ContextBudget:
        """A smaller budget (for the one retry after a length rejection)."""
        limit = self.prompt_limit
        if limit is None:
            return self
        return replace(self, input_budget=max(64, int(limit * factor)))

    def describe(self) -> dict[str, Any]:
        return {"window": self.window, "input_budget": self.input_budget, "max_output": self.max_output,
                "prompt_limit": self.prompt_limit, "counter": self.counter.name}


def default_budget(tier: str, provider: str, *, max_output: int, window: int | None = None,
                   input_budget: int | None = None, tokenizer: str | None = None) -> ContextBudget:
    """The budget a tier gets from its declared values, else the provider's and tier's defaults."""
    win = window if window is not None else DEFAULT_WINDOWS.get(provider)
    if input_budget is None and provider != "extractive":  # the extractive answerer reads every source
        input_budget = DEFAULT_INPUT_BUDGETS.get(tier)
    return ContextBudget(window=win, input_budget=input_budget, max_output=max_output, counter=counter_for(tokenizer))


# ---------------------------------------------------------------------------------- fitting
_UNIT_RE = re.compile(r"(?<=[.!?:;])\s+|\n\s*\n+|\n(?=\s*(?:[-*+]|\d+[.)])\s)")


def _units(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences / paragraphs / list items (what a passage grows by)."""
    spans, start = [], 0
    for m in _UNIT_RE.finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans or [(0, len(text))]


def _locate(parent: str, passage: str) -> tuple[int, int] | None:
    """Where the child passage sits in its parent (exact, then whitespace-insensitive on a prefix)."""
    if not passage:
        return None
    i = parent.find(passage)
    if i >= 0:
        return i, i + len(passage)
    head = " ".join(passage.split()[:12])
    if not head:
        return None
    pattern = r"\s+".join(re.escape(w) for w in head.split())
    m = re.search(pattern, parent)
    if m is None:
        return None
    return m.start(), min(len(parent), m.start() + len(passage))


@dataclass
class SourceFit:
    index: int
    kept: str  # parent | around_passage | passage | excerpt | dropped
    tokens: int  # tokens of the text sent (block overhead excluded)
    full_tokens: int  # tokens of the whole parent

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kept": self.kept, "tokens": self.tokens, "full_tokens": self.full_tokens}


@dataclass
class FitReport:
    """What the prompt builder kept and cut for one tier; goes into the routing decision."""

    budget: dict[str, Any]
    prompt_tokens: int = 0  # counted by ``budget.counter`` (the provider's usage is the truth)
    fixed_tokens: int = 0  # system + question + template overhead
    history_tokens: int = 0
    history_dropped: int = 0
    sources_tokens: int = 0
    sources_available: int = 0  # tokens the sources could use
    sources: list[SourceFit] = field(default_factory=list)
    over_limit: bool = False  # the fixed parts alone exceed the limit (sources all dropped)
    retried_smaller: bool = False

    @property
    def cut_tokens(self) -> int:
        return sum(max(0, s.full_tokens - s.tokens) for s in self.sources)

    def as_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "prompt_tokens": self.prompt_tokens, "fixed_tokens": self.fixed_tokens,
                "history_tokens": self.history_tokens, "history_dropped": self.history_dropped,
                "sources_tokens": self.sources_tokens, "sources_available": self.sources_available,
                "cut_tokens": self.cut_tokens, "sources": [s.as_dict() for s in self.sources],
                "dropped_sources": [s.index for s in self.sources if s.kept == "dropped"],
                "over_limit": self.over_limit, "retried_smaller": self.retried_smaller}


def _grow(parent: str, core: tuple[int, int], units: list[tuple[int, int]], room: int,
          counter: TokenCounter) -> tuple[int, int]:
    """Widen ``core`` by whole units, alternately after and before, while it fits in ``room``."""
    lo = next((k for k, (_, b) in enumerate(units) if b > core[0]), 0)
    hi = next((k for k in range(len(units) - 1, -1, -1) if units[k][0] < core[1]), len(units) - 1)
    start, end = min(core[0], units[lo][0]), max(core[1], units[hi][1])
    if counter.count(parent[start:end]) > room:
        return core
    after_blocked = before_blocked = False
    prefer_after = True
    while not (after_blocked and before_blocked):
        after = (prefer_after and not after_blocked) or before_blocked
        if after and hi + 1 >= len(units):
            after_blocked = True
            continue
        if not after and lo == 0:
            before_blocked = True
            continue
        ns, ne = (start, units[hi + 1][1]) if after else (units[lo - 1][0], end)
        if counter.count(parent[ns:ne]) > room:
            after_blocked, before_blocked = (True, before_blocked) if after else (after_blocked, True)
            continue
        if after:
            hi, end = hi + 1, ne
        else:
            lo, start = lo - 1, ns
        prefer_after = not prefer_after
    return start, end


def _cut_to(text: str, room: int, counter: TokenCounter) -> str:
    """The longest prefix of whole sentences within ``room`` tokens (or whole words if none fits)."""
    units = _units(text)
    best = ""
    for _, b in units:
        piece = text[:b]
        if counter.count(piece) > room:
            break
        best = piece
    if best:
        return best.strip()
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(" ".join(words[:mid]) + " …") <= room:
            lo = mid
        else:
            hi = mid - 1
    return (" ".join(words[:lo]) + " …") if lo else ""


def fit_sources(sources: Sequence[SourceDoc], available: int, counter: TokenCounter,
                block_tokens: Any) -> tuple[list[SourceDoc], list[SourceFit]]:
    """Fit ranked sources into ``available`` tokens. ``block_tokens(source)`` is the wrapper overhead
    of one source in the prompt. Returns the sources to send (original indices kept, so citations
    still point at the retrieved list) and what happened to each."""
    fits: dict[int, SourceFit] = {}
    chosen: dict[int, tuple[int, int] | str] = {}  # position -> span in parent, or replacement text
    spent = 0
    parents = [s.text.strip() for s in sources]
    full = [counter.count(p) for p in parents]
    overhead = [block_tokens(s) for s in sources]
    # 1. the matched passages, in retrieval order
    for k, s in enumerate(sources):
        parent = parents[k]
        span = _locate(parent, s.passage.strip()) if s.passage else None
        core_text = parent[span[0]:span[1]] if span else (s.passage.strip() or parent)
        cost = counter.count(core_text) + overhead[k]
        if spent + cost <= available:
            chosen[k] = span if span else ((0, len(parent)) if core_text == parent else core_text)
            spent += cost
            fits[k] = SourceFit(s.index, "passage" if core_text != parent else "parent",
                                cost - overhead[k], full[k])
        elif not chosen and available - spent - overhead[k] > 16:
            text = _cut_to(core_text, available - spent - overhead[k], counter)
            if text:
                chosen[k] = text
                cost = counter.count(text) + overhead[k]
                spent += cost
                fits[k] = SourceFit(s.index, "excerpt", cost - overhead[k], full[k])
        if k not in fits:
            fits[k] = SourceFit(s.index, "dropped", 0, full[k])
    # 2. whole parents where they fit, else the sentences around the passage
    for k in sorted(chosen):
        chosen_span = chosen[k]
        if not isinstance(chosen_span, tuple) or fits[k].kept == "parent":
            continue
        span = chosen_span
        parent = parents[k]
        current = fits[k].tokens
        room = available - spent + current
        if full[k] <= room:
            chosen[k] = (0, len(parent))
            spent += full[k] - current
            fits[k] = SourceFit(sources[k].index, "parent", full[k], full[k])
            continue
        start, end = _grow(parent, span, _units(parent), room, counter)
        if (start, end) != span:
            cost = counter.count(parent[start:end])
            if cost <= room:
                chosen[k] = (start, end)
                spent += cost - current
                fits[k] = SourceFit(sources[k].index, "around_passage", cost, full[k])
    out = []
    for k, s in enumerate(sources):
        if k not in chosen:
            continue
        kept = chosen[k]
        if isinstance(kept, str):
            text = kept
        else:
            text = parents[k][kept[0]:kept[1]].strip()
            if kept != (0, len(parents[k])):
                if kept[0] > 0:
                    text = "… " + text
                if kept[1] < len(parents[k]):
                    text = text + " …"
        out.append(replace(s, text=text))
    return out, [fits[k] for k in range(len(sources))]


# ---------------------------------------------------------------------------------- overflow
_OVERFLOW_RE = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|too long|exceeds? (the )?(maximum|context|limit)|"
    r"n_ctx|prompt is too long|input token count|reduce the length|too many tokens", re.I)


def is_overflow(status: int | None, message: str) -> bool:
    """A rejection for prompt length (HTTP 400/413/422 with a length message), in any vendor's words."""
    return (status in (400, 413, 422) or status is None) and bool(_OVERFLOW_RE.search(message or ""))


_LIMIT_PATTERNS = (  # (window, requested prompt) in each vendor's words
    re.compile(r"maximum context length is (?P<window>\d+).*?requested (?P<requested>\d+) tokens"
               r"(?: \((?P<messages>\d+) in the messages)?", re.S),
    re.compile(r"(?P<requested>\d+) tokens > (?P<window>\d+) maximum"),
    re.compile(r"input token count \((?P<requested>\d+)\) exceeds the maximum number of tokens allowed "
               r"\((?P<window>\d+)\)"),
)


def retry_budget(budget: ContextBudget, message: str, counted_prompt_tokens: int) -> ContextBudget:
    """The budget for the one retry after a length rejection. Uses the server's numbers where it
    gives them (llama.cpp and OpenAI: "maximum context length is 4096 tokens. However, you requested
    4361 tokens (4201 in the messages, 160 in the completion)"): the window it states, converted to our
    counter's units by the ratio of our count to its count; else half of what was sent."""
    current = budget.prompt_limit or counted_prompt_tokens
    limit = int(0.5 * min(current, counted_prompt_tokens or current))
    for pattern in _LIMIT_PATTERNS:
        m = pattern.search(message or "")
        if m is None:
            continue
        window, requested = int(m.group("window")), int(m.group("requested"))
        in_messages = int(m.group("messages")) if m.groupdict().get("messages") else requested
        if "messages" not in m.groupdict() or not m.groupdict().get("messages"):
            in_messages = requested - (budget.max_output if pattern is _LIMIT_PATTERNS[0] else 0)
        if in_messages > 0 and counted_prompt_tokens > 0:
            max_output = min(budget.max_output, window // 2)
            room = window - max_output - WINDOW_SLACK
            limit = int(room * counted_prompt_tokens / in_messages * 0.9)
            limit = min(limit, int(0.9 * min(current, counted_prompt_tokens)))
            return replace(budget, window=window, input_budget=max(64, limit), max_output=max_output)
        break
    return replace(budget, input_budget=max(64, limit))
