"""The lexical side of "retrieval that finds the page", measured without embedding anything.

    python bench/lexical_headers.py [--sets orbitly,pydoc,sqlite,git] [--json]

Embedding four corpora takes most of ``bench/retrieval_quality.py``'s run on two shared cores; the
choices that only touch BM25 (what heads a chunk's index text, how much the title and headings
weigh, query clean-up, how chunk ranks become page ranks) can be compared on the product's own
parts without the model: each page goes through the product loader (``callwise.knowledge.loaders``, title
in front matter as an HTML ``<title>`` would give it) and chunker (token counts from the
embedder's tokenizer), each child's index text is built as the variant says, and BM25 is the
product's ``callwise.knowledge.bm25.BM25Index`` (BM25Okapi, the formulas the Postgres store reproduces).

Header variants: ``path`` (the product before issue 9: heading path, no page title),
``title+path`` (contextual chunk header: the page title roots the path, ``loaders.TITLE_ROOT``),
``title+path x2`` / ``title x3`` (the header, or the title alone, repeated: heavier title and
heading fields in a one-field BM25).

One difference from the product: the retriever keeps one child per parent (``dedupe_parents``), so
there the page ranking sums over parents (1,024-token regions), here over every matching child.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval_quality import DATA, METRICS, PUBLIC, SETS, Tally, load_set, page_metrics, write_corpus  # noqa: E402

HEADERS = ("path", "title+path", "title+path x2", "title x3", "title+path+lead")
PAGES = {"first": ("first", 0.0, 1), "rrf2x3": ("rrf", 2.0, 3), "rrf5x3": ("rrf", 5.0, 3)}


def chunk_corpus(corpus: list[dict], count, title_root: bool) -> list[tuple[str, str, tuple[str, ...], str, str]]:  # type: ignore[no-untyped-def]
    """(page id, child text, title path, page title, lead sentence) for every child chunk, as the ingestor makes them."""
    import callwise.knowledge.loaders as loaders
    from callwise.knowledge.chunking import Chunker, ChunkingConfig

    loaders.TITLE_ROOT = title_root
    out = []
    with tempfile.TemporaryDirectory(prefix="callwise-lex-") as tmp:
        mapping = write_corpus(corpus, Path(tmp))
        chunker = Chunker(count, ChunkingConfig())
        for source, page in mapping.items():
            doc = loaders.open_document(Path(source), source)
            mine = [(c.text, c.title_path) for parent in chunker.chunk(doc.sections()) for c in parent.children]
            out.extend((page, text, path, doc.title, doc.summary) for text, path in mine)
    return out


def index_text_for(variant: str, text: str, path: tuple[str, ...], title: str, lead: str = "") -> str:
    from callwise.knowledge.chunking import index_text

    if variant == "title+path+lead":
        return index_text(text, path, lead)
    if variant in ("path", "title+path"):
        return index_text(text, path)
    if variant == "title+path x2":
        head = " > ".join(p for p in path if p)
        return f"{head}\n{head}\n{text}"
    if variant == "title x3":
        return f"{title}\n{title}\n{index_text(text, path)}"
    raise ValueError(variant)


def run_set(name: str, count, k: int, candidates: int) -> dict:  # type: ignore[no-untyped-def]
    from callwise.knowledge.bm25 import BM25Index
    from callwise.knowledge.pages import PageConfig, rank_pages
    from callwise.knowledge.query import clean_query

    bs = load_set(DATA / name)
    results: dict[str, dict] = {}
    chunked = {False: chunk_corpus(bs.corpus, count, False), True: chunk_corpus(bs.corpus, count, True)}
    for header in HEADERS:
        chunks = chunked[header != "path"]
        idx = BM25Index()
        docs: list[str] = []
        for i, (page, text, path, title, lead) in enumerate(chunks):
            idx.add(i, index_text_for(header, text, path, title, lead), group=page)
            docs.append(page)
        for clean in (False, True):
            hits_by_q = {}
            for kind, qs in (("typed", bs.typed), ("spoken", bs.spoken)):
                for qid, text in qs.items():
                    q = clean_query(text) if clean else text
                    hits_by_q[(kind, qid)] = [_Hit(docs[int(key)]) for key, _ in idx.search(q, candidates)]
            for label, (method, pk, depth) in PAGES.items():
                tally = Tally()
                cfg = PageConfig(method=method, k=pk, depth=depth)
                for (kind, qid), hits in hits_by_q.items():
                    m = page_metrics([h.document for h in rank_pages(hits, cfg)], bs.qrels[qid], k)
                    tally.add(kind, m)
                    if kind == "typed":
                        tally.add(bs.split.get(qid, "dev"), m)
                results[f"{header}{' +clean' if clean else ''} | pages={label}"] = tally.means()
    results["_chunks"] = {"path": len(chunked[False]), "title+path": len(chunked[True])}
    return results


class _Hit:
    __slots__ = ("document", "score")

    def __init__(self, document: str) -> None:
        self.document, self.score = document, 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=25)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from callwise.knowledge.embeddings import Embedder

    count = Embedder().count_tokens_batch
    per_set = {}
    for name in args.sets.split(","):
        per_set[name] = run_set(name, count, args.k, args.candidates)
        print(f"[{name}] done: {json.dumps(per_set[name])}", file=sys.stderr, flush=True)
    public = [n for n in per_set if n in PUBLIC]
    variants = [v for v in next(iter(per_set.values())) if not v.startswith("_")]
    mean = {v: {g: {m: round(sum(per_set[n][v][g][m] for n in public) / len(public), 4) for m in METRICS}
                for g in ("typed", "heldout", "spoken")} for v in variants} if public else {}
    if args.json:
        print(json.dumps({"sets": per_set, "mean_public": mean}, indent=1))
        return
    for name, res in [*per_set.items(), *([("mean over public manuals", mean)] if mean else [])]:
        print(f"\n== {name}")
        print(f"{'variant':40} {'nDCG typed':>10} {'first typed':>11} {'first held':>10} {'nDCG spoken':>11} {'first spoken':>12}")
        for v in variants:
            r = res[v]
            print(f"{v:40} {r['typed']['ndcg']:10.3f} {r['typed']['first']:11.3f} {r['heldout']['first']:10.3f} "
                  f"{r['spoken']['ndcg']:11.3f} {r['spoken']['first']:12.3f}")


if __name__ == "__main__":
    main()
