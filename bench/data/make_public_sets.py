"""Build the public-manual retrieval sets (BEIR layout) from Debian documentation packages.

    python bench/data/make_public_sets.py [--install] [--sets pydoc,sqlite,git,apache,varnish] [--check]

Benchmark set-up, not the product: ``--install`` runs ``apt-get install python3.11-doc sqlite3-doc
git-doc apache2-doc varnish-doc`` (the manuals nobody on the team wrote). Each HTML page of a manual
becomes one corpus entry ``{_id, title, text}`` whose ``_id`` is the page's path inside the manual (``library/os.html``)
and whose text is Markdown-ish: the page's main content only (navigation, sidebars, scripts and
syntax-diagram images removed), headings as ``#`` lines, code blocks fenced.

The questions (``queries.jsonl``: ``_id``, ``text``, ``split`` dev|heldout) and the judgements
(``qrels/test.tsv``: graded 2 = the page that answers, 1 = a page that helps) are written by hand
and committed; this script only (re)builds ``corpus.jsonl``. A manual is sampled to keep ingest
cheap on two cores: every judged page is kept, then distractor pages are added in a fixed
pseudo-random order (sha1 of the page path) until ``--max-pages`` pages; the result is the same on
every machine with the same package version. ``--check`` verifies that every judged page exists
(``qrels/test.tsv`` and, where a set has follow-up pairs, ``qrels/followups.tsv``). The sqlite and
git corpora (about 3.5 MB each), the apache one (Apache httpd 2.4's English pages, 2.3 MB) and the
varnish one (Varnish Cache 7.1's manual, 1.1 MB) are committed; the Python manual's sample (182 pages,
5.2 MB) is not: ``bench/retrieval_quality.py`` builds it here on first use (``ensure_corpus``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (Debian package, documentation root, pages excluded as non-content, default page budget)
MANUALS: dict[str, dict] = {
    "pydoc": {"package": "python3.11-doc", "root": "/usr/share/doc/python3.11-doc/html", "max_pages": 300,
              "max_chars": 5_000_000,
              "exclude": r"^(genindex|py-modindex|search|contents|copyright|license|download|bugs|about|"
                         r"whatsnew/changelog|_|c-api/|distutils/|install/|extending/|includes/)"},
    "sqlite": {"package": "sqlite3-doc", "root": "/usr/share/doc/sqlite3", "max_pages": 400, "max_chars": 3_500_000,
               "exclude": r"^(releaselog/|search|doc_|changes|chronology|sitemap|copyright|crew|consortium|"
                          r"books|famous|support|prosupport|download|news|oldnews|mostdeployed|index|docs|doclist|requirements|capi3ref|"
                          r"c3ref/objlist|c3ref/funclist|c3ref/constlist|keyword_index|toc)"},
    "git": {"package": "git-doc", "root": "/usr/share/doc/git-doc", "max_pages": 400, "max_chars": 4_000_000,
            "exclude": r"^(RelNotes|technical/api-|howto-index|index\.html|everyday\.html)"},
    "apache": {"package": "apache2-doc", "root": "/usr/share/doc/apache2-doc/manual/en", "max_pages": 300,
               "max_chars": 3_600_000,
               # bind, filter, install, invoking, upgrading and new_features_2_4 are shipped in Portuguese
               # under en/ by this package version
               "exclude": r"^(developer/|sitemap|license|new_features_2_|faq/|mod/(directives|quickreference|"
                          r"directive-dict|module-dict)\.html|(bind|filter|install|invoking|upgrading)\.html)"
                          r"|(^|/)index\.html$"},
    "varnish": {"package": "varnish-doc", "root": "/usr/share/doc/varnish/html", "max_pages": 300,
                "max_chars": 3_600_000,
                # the section index pages are tables of contents and dev-guide/ holds the project's
                # contributor pages; phk/ (the author's essays and security advisories) is kept
                "exclude": r"^(genindex|search|_|dev-guide/|index\.html|(installation|phk|reference|tutorial|"
                           r"users-guide|vcl-design-patterns|whats-new)/index\.html)"},
}
MIN_CHARS = 400  # stub pages (redirects, one-line lists) are not worth a corpus entry

_JUNK = ["script", "style", "noscript", "nav", "footer", "template", "svg", "head", "img", "map", "form", "input",
         "select"]
_BLOCKS = ["p", "div", "li", "ul", "ol", "table", "tr", "blockquote", "section", "article", "dd", "dt", "br",
           "main", "header", "dl", "td", "th"]


def install() -> None:
    pkgs = [m["package"] for m in MANUALS.values()]
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *pkgs], check=True)


def _main_node(soup, name: str):  # type: ignore[no-untyped-def]
    if name in ("pydoc", "varnish"):
        node = soup.find("div", attrs={"role": "main"}) or soup.find("div", class_="body")
        for tag in node.select("a.headerlink"):
            tag.decompose()
        return node
    if name == "sqlite":
        for tag in soup.select("div.nosearch"):
            tag.decompose()
        for tag in soup.select("div.imgcontainer, button"):
            tag.decompose()
        return soup.body or soup
    if name == "git":
        for tag in soup.select("div#footer, div#toc"):
            tag.decompose()
        return soup.body or soup
    if name == "apache":
        for tag in soup.select("div.toplang, div.bottomlang, div#quickview, div.top, div.up, a.permalink, button"):
            tag.decompose()
        return soup.find("div", id="page-content") or soup.body or soup
    raise ValueError(name)


def page_text(html: str, name: str) -> tuple[str, str]:
    """(title, Markdown-ish text of the main content)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    title = re.sub(r"\s+[-—–]\s+Python 3\.11\.\d+ documentation$", "", title).strip()
    title = re.sub(r"\s+-\s+Apache HTTP Server Version 2\.4$", "", title).strip()
    title = re.sub(r"\s+[-—–]\s+Varnish version 7\.\d+\.\d+ documentation$", "", title).strip()
    node = _main_node(soup, name)
    for tag in node.find_all(_JUNK):
        tag.decompose()
    for pre in node.find_all("pre"):
        body = pre.get_text()
        pre.replace_with(f"\n\n```\n{body.strip(chr(10))}\n```\n\n")
    for tag in node.find_all(re.compile(r"^h[1-6]$")):
        level = int(tag.name[1])
        tag.replace_with(f"\n\n{'#' * level} {tag.get_text(' ', strip=True)}\n\n")
    for tag in node.find_all(_BLOCKS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    text = node.get_text()
    out: list[str] = []
    in_fence = False
    for raw in text.splitlines():
        line = raw.rstrip() if in_fence else re.sub(r"[ \t\r\f\v\xa0]+", " ", raw).strip()
        if line.startswith("```"):
            in_fence = not in_fence
            line = "```"
        if not line and out and not out[-1]:
            continue
        out.append(line)
    body = "\n".join(out).strip()
    if not title:
        m = re.search(r"^# (.+)$", body, re.M)
        title = m.group(1) if m else ""
    return title, body


def pages(name: str) -> dict[str, Path]:
    spec = MANUALS[name]
    root = Path(spec["root"])
    if not root.is_dir():
        raise SystemExit(f"{root} is missing: install {spec['package']} (run with --install)")
    skip = re.compile(spec["exclude"])
    found: dict[str, Path] = {}
    for p in sorted(root.rglob("*.html")):
        rel = p.relative_to(root).as_posix()
        if not skip.search(rel):
            found[rel] = p
    return found


def judged(name: str) -> set[str]:
    rows: list[list[str]] = []
    for qrels in (HERE / name / "qrels" / "test.tsv", HERE / name / "qrels" / "followups.tsv"):
        if qrels.exists():
            rows += [ln.split("\t") for ln in qrels.read_text().splitlines()[1:] if ln.strip()]
    return {r[1] for r in rows}


def build(name: str, max_pages: int, max_chars: int) -> list[dict]:
    avail = pages(name)
    need = judged(name)
    missing = sorted(need - set(avail))
    if missing:
        raise SystemExit(f"{name}: judged pages not in the manual: {missing}")
    docs: dict[str, dict] = {}
    for rel in sorted(need):
        title, text = page_text(avail[rel].read_text(encoding="utf-8", errors="replace"), name)
        docs[rel] = {"_id": rel, "title": title, "text": text}
    order = sorted((r for r in avail if r not in need), key=lambda r: hashlib.sha1(r.encode()).hexdigest())
    used = sum(len(d["text"]) for d in docs.values())
    for rel in order:
        if len(docs) >= max_pages or used >= max_chars:
            break
        title, text = page_text(avail[rel].read_text(encoding="utf-8", errors="replace"), name)
        if len(text) >= MIN_CHARS:
            docs[rel] = {"_id": rel, "title": title, "text": text}
            used += len(text)
    return [docs[k] for k in sorted(docs)]


def write_corpus(name: str, out: Path = HERE, max_pages: int = 0, max_chars: int = 0) -> Path:
    spec = MANUALS[name]
    docs = build(name, max_pages or spec["max_pages"], max_chars or spec["max_chars"])
    dest = out / name
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / "corpus.jsonl").open("w") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    size = (dest / "corpus.jsonl").stat().st_size
    print(f"{name}: {len(docs)} pages ({len(judged(name))} judged), {size / 1e6:.2f} MB", file=sys.stderr)
    return dest / "corpus.jsonl"


def ensure_corpus(data: Path) -> Path:
    """The corpus of a set directory, built from the installed manual when it is not committed
    (the Python manual's sample is too large to commit)."""
    corpus = data / "corpus.jsonl"
    if not corpus.exists() and data.name in MANUALS and data.resolve().parent == HERE:
        write_corpus(data.name)
    return corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(MANUALS))
    ap.add_argument("--install", action="store_true", help="apt-get install the documentation packages first")
    ap.add_argument("--max-pages", type=int, default=0, help="pages per corpus (0: each manual's default)")
    ap.add_argument("--max-chars", type=int, default=0, help="stop adding distractors at this much text")
    ap.add_argument("--check", action="store_true", help="only check that every judged page exists")
    ap.add_argument("--out", type=Path, default=HERE, help="where the <set>/corpus.jsonl files go")
    args = ap.parse_args()
    if args.install:
        install()
    for name in args.sets.split(","):
        if args.check:
            missing = sorted(judged(name) - set(pages(name)))
            print(f"{name}: {len(judged(name))} judged pages, missing {missing}")
            continue
        write_corpus(name, args.out, args.max_pages, args.max_chars)


if __name__ == "__main__":
    main()
