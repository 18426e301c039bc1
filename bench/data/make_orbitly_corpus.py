"""Build ``bench/data/orbitly/corpus.jsonl`` (BEIR layout) from the sample KB in ``examples/kb``.

    python bench/data/make_orbitly_corpus.py

One line per article: ``{"_id": "examples/kb/<folder>/<file>", "title": ..., "text": ...}``. The ``_id`` is
the path as ingested from the repository root, so it equals ``documents.source`` after
``ingest examples/kb``. Titles come from the first ``#`` heading (Markdown), ``<h1>``/``<title>`` (HTML) or
the first line (text). HTML text is reduced to plain text; Markdown and text files are kept verbatim.
Queries and graded qrels (``queries.jsonl``, ``qrels/test.tsv``) are hand-written and not generated.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "examples" / "kb"
OUT = ROOT / "bench" / "data" / "orbitly" / "corpus.jsonl"
EXTS = {".md", ".html", ".htm", ".txt"}


class _Text(HTMLParser):
    BLOCK = {"p", "li", "h1", "h2", "h3", "h4", "tr", "br", "div", "ul", "ol", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head"):
            self.skip -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(raw: str) -> str:
    parser = _Text()
    parser.feed(raw)
    text = html.unescape("".join(parser.parts))
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def title_of(path: Path, raw: str) -> str:
    if path.suffix in (".html", ".htm"):
        m = re.search(r"<h1[^>]*>(.*?)</h1>", raw, re.S | re.I) or re.search(r"<title>(.*?)</title>", raw, re.S | re.I)
        return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip() if m else path.stem
    for line in raw.splitlines():
        line = line.strip()
        if not line:
            continue
        if path.suffix == ".md":
            if line.startswith("# "):
                return line[2:].strip()
            continue
        return line.strip("=# ").strip()
    return path.stem


def build() -> list[dict]:
    docs = []
    for path in sorted(p for p in KB.rglob("*") if p.is_file() and p.suffix.lower() in EXTS):
        raw = path.read_text(encoding="utf-8")
        text = html_to_text(raw) if path.suffix in (".html", ".htm") else raw.strip()
        docs.append({"_id": path.relative_to(ROOT).as_posix(), "title": title_of(path, raw), "text": text})
    return docs


def main() -> None:
    docs = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"wrote {len(docs)} documents to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
