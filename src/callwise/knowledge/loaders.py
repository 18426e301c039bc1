"""File discovery and loading: Markdown, HTML, plain text and PDF into heading-tagged sections.

Text and Markdown are read line by line and emitted in bounded sections, so a very large file is
never held in memory at once. HTML is parsed whole (an HTML tree needs the whole file); PDF page
by page.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from callwise.knowledge.types import Section

MIME_TYPES: dict[str, str] = {
    ".md": "text/markdown", ".markdown": "text/markdown",
    ".txt": "text/plain", ".text": "text/plain",
    ".html": "text/html", ".htm": "text/html",
    ".pdf": "application/pdf",
}
SECTION_CHARS = 16_000  # a section is cut at a paragraph break once it holds this much text
_HARD_CHARS = 64_000  # ... and anywhere once it holds this much
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


class LoadError(Exception):
    """A file that cannot be ingested; the message is the reason shown to the user."""


@dataclass
class LoadedDocument:
    path: Path
    source: str
    mime_type: str
    size_bytes: int
    content_hash: str
    title: str = ""
    summary: str = ""  # the page's lead sentence (``lead_sentence``), set while its sections are read
    metadata: dict[str, object] = field(default_factory=dict)

    def sections(self) -> Iterator[Section]:
        """Sections in document order; sets ``title`` as a side effect when the file names one."""
        if self.mime_type == "text/markdown":
            yield from self._lines(markdown=True)
        elif self.mime_type == "text/plain":
            yield from self._lines(markdown=False)
        elif self.mime_type == "text/html":
            yield from self._html()
        elif self.mime_type == "application/pdf":
            yield from self._pdf()
        else:  # pragma: no cover - guarded by open_document
            raise LoadError(f"unsupported type {self.mime_type}")

    # --- text and markdown --------------------------------------------------------------
    def _lines(self, *, markdown: bool) -> Iterator[Section]:
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            yield from parse_lines(fh, self, markdown=markdown)

    # --- html ---------------------------------------------------------------------------
    def _html(self) -> Iterator[Section]:
        from bs4 import BeautifulSoup

        raw = self.path.read_bytes()
        soup = BeautifulSoup(raw, "html.parser")
        if soup.title and soup.title.get_text(strip=True):
            self.title = soup.title.get_text(" ", strip=True)
        for tag in soup(["script", "style", "noscript", "nav", "footer", "template", "svg", "head"]):
            tag.decompose()
        for tag in soup.find_all(re.compile(r"^h[1-6]$")):
            level = int(tag.name[1])
            tag.replace_with(f"\n\n{'#' * level} {tag.get_text(' ', strip=True)}\n\n")
        blocks = ["p", "div", "li", "ul", "ol", "pre", "table", "tr", "blockquote", "section", "article",
                  "dd", "dt", "br", "main", "header"]
        for tag in soup.find_all(blocks):
            tag.insert_before("\n\n")
            tag.insert_after("\n\n")
        text = soup.get_text()
        lines = (re.sub(r"[ \t\r\f\v]+", " ", ln).strip() for ln in text.splitlines())
        yield from parse_lines((ln + "\n" for ln in lines), self, markdown=True)

    # --- pdf ----------------------------------------------------------------------------
    def _pdf(self) -> Iterator[Section]:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(str(self.path))
            if reader.is_encrypted:
                raise LoadError("encrypted PDF")
            meta_title = reader.metadata.get("/Title") if reader.metadata else None
        except PdfReadError as exc:
            raise LoadError(f"unreadable PDF: {exc}") from exc
        if meta_title and str(meta_title).strip():
            self.title = str(meta_title).strip()
        for i, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                yield Section(text, (self.title, f"Page {i}") if self.title else (f"Page {i}",))


# Contextual chunk headers: the page title (an HTML <title>, a front-matter title) roots each chunk's
# section path when the headings do not repeat it, so BM25 and the embedder see it in every chunk.
# Measured with bench/lexical_headers.py (BM25, typed): SQLite manual nDCG@10 0.497 -> 0.514, Orbitly
# 0.850 -> 0.856, Python 0.606 -> 0.606, Git 0.405 -> 0.401 (its titles are in its headings).
TITLE_ROOT = True


_MD_INLINE = re.compile(r"[*_`]+|!?\[([^\]]*)\]\([^)]*\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
SUMMARY_WORDS = 30
LEAD_SENTENCE = True  # benchmarks switch it off to measure the product without it


def lead_sentence(paragraph: str) -> str:
    """The first prose sentence of a paragraph, or "" when the paragraph is not prose.

    A page's lead sentence says what the page is for ("git-blame - Show what revision and author
    last modified each line of a file", "This article explains when Orbitly issues refunds"), in the
    words a caller uses more often than the headings do; it heads every chunk's index text.
    Measured with ``bench/lexical_headers.py`` (BM25, typed, page ranking rrf2x3 with query clean-up),
    mean over the public manuals: nDCG@10 0.548 -> 0.569, right page first 0.384 -> 0.424 (held-out
    0.376 -> 0.397; spoken 0.482 -> 0.479, flat); it won on every set typed (Git 0.453 -> 0.492) and
    on Orbitly spoken (0.641 -> 0.658). Only the BM25 text carries it: the embedded text is unchanged.
    Code, synopses, tables and lists are not prose: a line starting with a list or table marker, or
    text with bracket syntax, is skipped, as is anything under four words.
    """
    text = " ".join(ln.strip() for ln in paragraph.splitlines() if ln.strip())
    if not text or text[0] in "|<>-*+=#{[(" or text[:2].rstrip(".").isdigit():
        return ""
    if text.count("[") + text.count("{") + text.count("<") >= 2 or "()" in text:
        return ""
    text = _MD_INLINE.sub(lambda m: m.group(1) or "", text)
    first = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    words = first.split()
    if len(words) < 4:
        return ""
    return " ".join(words[:SUMMARY_WORDS])


def _same_title(title: str, heading: str) -> bool:
    a, b = title.casefold().strip(), heading.casefold().strip()
    return a in b or b in a


def parse_lines(lines: Iterator[str], doc: LoadedDocument, *, markdown: bool) -> Iterator[Section]:
    """Turn lines into sections: Markdown headings set the title path; blocks stay bounded."""
    stack: list[tuple[int, str]] = []
    buf: list[str] = []
    size = 0
    in_fence = False
    first = True
    in_front = False

    def path() -> tuple[str, ...]:
        heads = tuple(t for _, t in stack)
        if TITLE_ROOT and doc.title and not (heads and _same_title(doc.title, heads[0])):
            return (doc.title, *heads)  # the page title roots the section path (contextual chunk headers)
        return heads

    para: list[str] = []

    def end_paragraph() -> None:
        if para and not doc.summary and LEAD_SENTENCE:
            doc.summary = lead_sentence("".join(para))
        para.clear()

    def emit() -> Iterator[Section]:
        nonlocal buf, size
        end_paragraph()
        text = "".join(buf).strip()
        buf, size = [], 0
        if text:
            yield Section(text, path())

    for line in lines:
        if markdown and first:
            first = False
            if line.strip() == "---":
                in_front = True
                continue
        if in_front:
            if line.strip() in ("---", "..."):
                in_front = False
            elif line.lower().startswith("title:"):
                doc.title = line.split(":", 1)[1].strip().strip("\"'")
            continue
        fence = bool(markdown and _FENCE.match(line))
        if fence:
            in_fence = not in_fence
        m = _HEADING.match(line) if markdown and not in_fence else None
        if m:
            yield from emit()
            level, title = len(m.group(1)), m.group(2).strip()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            if level == 1 and not doc.title:
                doc.title = title
            continue
        buf.append(line)
        size += len(line)
        if not doc.summary:
            if fence or in_fence or not line.strip():
                end_paragraph()
            else:
                para.append(line)
        if (size >= SECTION_CHARS and not line.strip()) or size >= _HARD_CHARS:
            yield from emit()
    yield from emit()
    if not doc.title:
        doc.title = doc.path.stem.replace("-", " ").replace("_", " ")


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_text(path: Path) -> None:
    """Reject empty files and binary garbage by looking at the first 8 KiB."""
    with path.open("rb") as fh:
        head = fh.read(8192)
    if not head.strip():
        raise LoadError("empty file")
    if b"\x00" in head:
        raise LoadError("binary content (NUL bytes)")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the 8 KiB boundary
            raise LoadError("not UTF-8 text") from exc
        text = head[: exc.start].decode("utf-8")
    control = sum(1 for c in text if ord(c) < 32 and c not in "\n\r\t\f")
    if control > 0.05 * max(1, len(text)):
        raise LoadError("binary content (control characters)")


def open_document(path: Path, source: str) -> LoadedDocument:
    """Validate a file and describe it; raises LoadError with the reason to skip it."""
    mime = MIME_TYPES.get(path.suffix.lower())
    if mime is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}")
    try:
        size = path.stat().st_size
        if mime == "application/pdf":
            with path.open("rb") as fh:
                if not fh.read(5).startswith(b"%PDF"):
                    raise LoadError("not a PDF (bad header)")
        else:
            check_text(path)
        digest = file_hash(path)
    except OSError as exc:
        raise LoadError(f"unreadable: {exc.strerror or exc}") from exc
    return LoadedDocument(path=path, source=source, mime_type=mime, size_bytes=size, content_hash=digest)


def discover(root: Path) -> Iterator[tuple[Path, str]]:
    """Files under ``root`` (or ``root`` itself) with their source: the path as given joined with
    the file's path inside the directory. Hidden files and folders are ignored."""
    given = str(root)
    if root.is_file():
        yield root, given
        return
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        yield p, f"{given.rstrip('/')}/{rel.as_posix()}"
