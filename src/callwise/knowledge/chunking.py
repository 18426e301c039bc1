"""Recursive, token-counted chunking into parents (what the LLM reads) and children (what is searched).

Sections come in document order from a loader; consecutive sections are packed into parents of at
most ``parent_tokens`` (a section larger than that is split recursively). Each section piece inside
a parent is split into children of at most ``child_tokens`` with an overlap capped at
``max_overlap_ratio`` of the child size. Everything is a generator, so a very large document is
chunked section by section without holding its text in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from callwise.knowledge.types import Section

CountFn = Callable[[list[str]], list[int]]
SEPARATORS: tuple[str, ...] = ("\n\n", "\n", " ", "")


@dataclass(frozen=True)
class ChunkingConfig:
    parent_tokens: int = 1024
    child_tokens: int = 256
    overlap_tokens: int = 60
    max_overlap_ratio: float = 0.2

    @property
    def child_overlap(self) -> int:
        return max(0, min(self.overlap_tokens, int(self.child_tokens * self.max_overlap_ratio)))


@dataclass
class ChildPiece:
    text: str
    token_count: int
    title_path: tuple[str, ...]


@dataclass
class ParentPiece:
    text: str
    token_count: int
    title_path: tuple[str, ...]
    children: list[ChildPiece] = field(default_factory=list)


def _hard_split(text: str, max_tokens: int, count: CountFn) -> list[tuple[str, int]]:
    """Cut a string with no separators left (a long URL, garbage) by characters."""
    out: list[tuple[str, int]] = []
    rest = text
    while rest:
        n_rest = count([rest])[0]
        if n_rest <= max_tokens:
            out.append((rest, n_rest))
            break
        n = max(1, int(len(rest) * max_tokens / n_rest))
        while True:
            c = count([rest[:n]])[0]
            if c <= max_tokens or n == 1:
                break
            n = max(1, int(n * 0.85))
        out.append((rest[:n], c))
        rest = rest[n:]
    return out


def split_text(
    text: str, max_tokens: int, overlap: int, count: CountFn, separators: tuple[str, ...] = SEPARATORS,
    *, _total: int | None = None,
) -> list[tuple[str, int]]:
    """Split ``text`` into pieces of at most ``max_tokens`` (with ``overlap`` tokens carried over).

    Returns ``(piece, token_count)`` pairs; counts are sums of part counts, which is exact for the
    whitespace separators with a WordPiece/BPE tokenizer that pre-splits on whitespace.
    """
    text = text.strip()
    if not text:
        return []
    total = count([text])[0] if _total is None else _total
    if total <= max_tokens:
        return [(text, total)]
    sep_i = next(i for i, s in enumerate(separators) if s == "" or s in text)
    sep = separators[sep_i]
    if sep == "":
        return _hard_split(text, max_tokens, count)
    parts = [p for p in (x.strip() for x in text.split(sep)) if p]
    counts = count(parts)
    out: list[tuple[str, int]] = []
    window: list[tuple[str, int]] = []
    window_tokens = 0

    def flush() -> None:
        if window:
            out.append((sep.join(p for p, _ in window), window_tokens))

    for part, n in zip(parts, counts, strict=True):
        if n > max_tokens:
            flush()
            window.clear()
            window_tokens = 0
            out.extend(split_text(part, max_tokens, overlap, count, separators[sep_i + 1:], _total=n))
            continue
        if window and window_tokens + n > max_tokens:
            flush()
            while window and (window_tokens > overlap or window_tokens + n > max_tokens):
                window_tokens -= window.pop(0)[1]
        window.append((part, n))
        window_tokens += n
    flush()
    return out


class Chunker:
    def __init__(self, count: CountFn, config: ChunkingConfig | None = None) -> None:
        self.count = count
        self.config = config or ChunkingConfig()

    def _parent_pieces(self, sections: Iterable[Section]) -> Iterator[list[tuple[str, int, tuple[str, ...]]]]:
        """Pack section pieces (<= parent_tokens each) greedily into parents."""
        limit = self.config.parent_tokens
        group: list[tuple[str, int, tuple[str, ...]]] = []
        used = 0
        for section in sections:
            for piece, n in split_text(section.text, limit, 0, self.count):
                if group and used + n > limit:
                    yield group
                    group, used = [], 0
                group.append((piece, n, section.title_path))
                used += n
        if group:
            yield group

    def chunk(self, sections: Iterable[Section]) -> Iterator[ParentPiece]:
        cfg = self.config
        for group in self._parent_pieces(sections):
            texts: list[str] = []
            prev: tuple[str, ...] | None = None
            children: list[ChildPiece] = []
            for piece, n, path in group:
                texts.append(f"{path[-1]}\n{piece}" if path and path != prev else piece)
                prev = path
                for child, cn in split_text(piece, cfg.child_tokens, cfg.child_overlap, self.count, _total=n):
                    children.append(ChildPiece(child, cn, path))
            parent_text = "\n\n".join(texts)
            yield ParentPiece(parent_text, self.count([parent_text])[0], group[0][2], children)


def index_text(text: str, title_path: Iterable[str], lead: str = "") -> str:
    """What BM25 and the embedder see for a child: its heading path, the page's lead sentence, its text.

    The lead (``loaders.lead_sentence``) is left out of the chunk that already holds it.
    """
    path = " > ".join(p for p in title_path if p)
    head = "\n".join(h for h in (path, "" if not lead or lead[:40] in text else lead) if h)
    return f"{head}\n{text}" if head else text
