"""Offline answerers on golden answers: the public manuals (and the Orbitly help centre).

    python bench/offline_answerers.py [--sets pydoc,sqlite,git] [--limit N] [--answerers extractive]
                                      [--sources retrieved|page] [--max-pages N] [--baseline FILE]
                                      [--data-dir DIR] [--json]

A set is ``bench/data/answers/<set>.jsonl`` (hand-written questions and expected answers, see the
README there) over the retrieval set ``bench/data/<set>/corpus.jsonl`` (built by
``bench/data/make_public_sets.py``), or ``orbitly``: ``evaluation/data/golden.jsonl`` (edge cases
excluded) over ``examples/kb``. Each corpus is ingested through the product's ingest path into the
organization ``answers-<set>`` of an embedded database under ``--data-dir`` (kept between runs; a
re-run only syncs). Every question is retrieved with the default retriever (top 5) and answered by
each answerer from the same sources.

Per answer: ``similarity`` (MiniLM cosine to the expected answer), ``items`` (share of the expected
answer's numbers and listed identifiers present, case-insensitive; rows with none count as 1),
``speakable`` (``callwise.routing.text.speakable_problems`` finds nothing: no unbalanced brackets, no syntax
synopsis, no markup, no table debris; with ``--voice`` the answers are composed for a voice call and
also checked for code, paths, option lists, more than one identifier and captions without their example), ``correct`` (similarity >= 0.7 and every item present), words,
latency, and whether the top source is one of the golden pages (``page_hit``). Reported per set and as
the mean over the sets.

``--sources page`` answers each question from its golden page(s) instead (chunked by the product's
loader and chunker, the 3 parents sharing most question words): answer quality alone, no database,
cheap enough for a busy machine; retrieval quality is ``bench/retrieval_quality.py``'s job.
``--max-pages N`` ingests only the golden pages plus distractors up to N pages.

``--baseline FILE``: also run the ``ExtractiveProvider`` of another version of
``routing/providers/extractive.py`` (e.g. ``git show c094d54^:routing/providers/extractive.py >
/tmp/before.py``), named ``baseline``. ``--answerers local`` adds the packaged local model.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from callwise.routing.providers.extractive import ExtractiveProvider  # noqa: E402
from callwise.routing.text import speakable_problems  # noqa: E402
from callwise.routing.types import Grounding, sources_from  # noqa: E402

ANSWERS = ROOT / "bench" / "data" / "answers"
VOICE = [False]  # --voice: answers are spoken, speakable is checked with the voice rules
PUBLIC_SETS = ("pydoc", "sqlite", "git")


def numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)*", text.replace(",", "")))


def items_present(answer: str, expected: str, identifiers: list[str]) -> tuple[float, list[str]]:
    """Share of the expected answer's numbers and identifiers that the answer names, and the missing ones."""
    wanted = sorted(numbers(expected)) + list(identifiers)
    if not wanted:
        return 1.0, []
    low = answer.lower().replace(",", "")
    have_nums = numbers(answer)
    missing = [w for w in wanted if (w not in have_nums if re.fullmatch(r"[\d.]+", w)
                                     else w.lower().replace(",", "") not in low)]
    return 1 - len(missing) / len(wanted), missing


def load_rows(name: str, limit: int) -> list[dict[str, Any]]:
    if name == "orbitly":
        raw = [json.loads(x) for x in (ROOT / "src/callwise/evaluation/data/golden.jsonl").read_text().splitlines() if x.strip()]
        rows = [{"_id": r["id"], "question": r["query"], "expected_answer": r["expected_answer"],
                 "pages": r.get("relevant_documents", []), "identifiers": []}
                for r in raw if r.get("category") != "edge_case" and r.get("expected_answer")]
    else:
        rows = [json.loads(x) for x in (ANSWERS / f"{name}.jsonl").read_text().splitlines() if x.strip()]
    if limit and limit < len(rows):  # spread over the set deterministically
        step = len(rows) / limit
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows


def corpus_dir(name: str, data_dir: Path, max_pages: int = 0,
               keep: set[str] | None = None) -> tuple[Path, dict[str, str]]:
    """The folder to ingest and a map from ingested source to corpus id. ``max_pages``: only the
    pages in ``keep`` (the golden pages) and then the corpus's other pages in its order, up to that many."""
    if name == "orbitly":
        kb = ROOT / "examples" / "kb"
        return kb, {}
    sys.path.insert(0, str(ROOT / "bench" / "data"))
    from make_public_sets import ensure_corpus  # noqa: E402  (builds the pydoc sample on first use)

    corpus = ensure_corpus(ROOT / "bench" / "data" / name)
    root = data_dir / "corpus" / (f"{name}-{max_pages}" if max_pages else name)
    root.mkdir(parents=True, exist_ok=True)
    mapping: dict[str, str] = {}
    docs = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
    if max_pages:
        keep = keep or set()
        docs = [d for d in docs if d["_id"] in keep] + [d for d in docs if d["_id"] not in keep]
        docs = docs[:max(max_pages, len(keep))]
    for doc in docs:
        path = root / (doc["_id"].replace("/", "__") + ".md")
        text = doc.get("text", "")
        if doc.get("title") and not text.lstrip().startswith("#"):
            text = f"# {doc['title']}\n\n{text}"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        mapping[str(path)] = doc["_id"]
    return root, mapping


def load_baseline(path: Path) -> type:
    spec = importlib.util.spec_from_file_location("extractive_baseline", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod.ExtractiveProvider  # type: ignore[no-any-return]


def summarize(rs: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float:
        return round(statistics.mean(float(x[key]) for x in rs), 3)

    lat = sorted(x["latency_ms"] for x in rs)
    return {"n": len(rs), "similarity": mean("similarity"), "items": mean("items"), "speakable": mean("speakable"),
            "correct": mean("correct"), "page_hit": mean("page_hit"), "words": mean("words"),
            "latency_ms_p50": round(lat[len(lat) // 2], 1)}


_STOP = set("the a an of to and or in on for is are be with your you it this that we can do does how what when "
            "which who by at as from if i my me there way so get".split())


def page_sources(row: dict[str, Any], corpus: dict[str, dict[str, Any]], chunker: Any, k: int = 3) -> list[Any]:
    """``--sources page``: the golden page(s) chunked by the product's loader and chunker, the ``k``
    parents sharing the most question words first (no embeddings, no database)."""
    from callwise.knowledge.loaders import LoadedDocument, parse_lines
    from callwise.routing.types import SourceDoc

    words = {w for w in re.findall(r"[a-z0-9]+", row["question"].lower()) if w not in _STOP and len(w) > 2}
    cands: list[tuple[float, str, str, str]] = []
    for page in row["pages"]:
        doc = corpus[page]
        loaded = LoadedDocument(Path(page), page, "text/markdown", 0, "")
        text = doc.get("text", "")
        if doc.get("title") and not text.lstrip().startswith("#"):
            text = f"# {doc['title']}\n\n{text}"
        for parent in chunker.chunk(parse_lines(iter(text.splitlines(keepends=True)), loaded, markdown=True)):
            toks = re.findall(r"[a-z0-9]+", (" ".join(parent.title_path) + " " + parent.text).lower())
            score = sum(1.0 for w in words if w in toks) + 0.001 * (page == row["pages"][0])
            cands.append((score, page, doc.get("title", ""), parent.text))
    cands.sort(key=lambda c: -c[0])
    return [SourceDoc(i + 1, c[1], c[2], c[3]) for i, c in enumerate(cands[:k])]


async def run_pages(args: argparse.Namespace) -> dict[str, Any]:
    """``--sources page``: answer each question from its golden page(s), without ingest or retrieval."""
    from callwise.knowledge.chunking import Chunker, ChunkingConfig
    from callwise.knowledge.embeddings import Embedder

    emb = Embedder()
    embed = emb.encode
    chunker = Chunker(emb.count_tokens_batch, ChunkingConfig())
    answerers: dict[str, Any] = {"extractive": ExtractiveProvider(embed)}
    if args.baseline:
        answerers["baseline"] = load_baseline(args.baseline)(embed)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for set_name in args.sets.split(","):
        rows = load_rows(set_name, args.limit)
        corpus = {d["_id"]: d for d in (json.loads(x) for x in (ROOT / "bench" / "data" / set_name / "corpus.jsonl")
                                        .read_text().splitlines() if x.strip())}
        per: dict[str, list[dict[str, Any]]] = {n: [] for n in answerers}
        for i, row in enumerate(rows):
            g = Grounding(row["question"], tuple(page_sources(row, corpus, chunker)), spoken=args.voice)
            for name, prov in answerers.items():
                gen = await prov.generate([], grounding=g, max_tokens=args.max_tokens, temperature=0.0)
                per[name].append(score_answer(row, gen, embed, True))
            print(f"  {i + 1}/{len(rows)} {row['_id']} " + " ".join(
                f"{n}: sim={per[n][-1]['similarity']:.2f} items={per[n][-1]['items']:.2f} "
                f"speakable={per[n][-1]['speakable']}" for n in per), file=sys.stderr, flush=True)
        results[set_name] = per
    return {"summary": summaries(results, answerers), "results": results}


def score_answer(row: dict[str, Any], gen: Any, embed: Any, hit: bool) -> dict[str, Any]:
    text = gen.text or ""
    vecs = embed([text or "-", row["expected_answer"]])
    sim = float(vecs[0] @ vecs[1])
    items, missing = items_present(text, row["expected_answer"], row.get("identifiers", []))
    if VOICE[0]:  # what a caller hears: the voice path passes every answer through the speakable normaliser
        from callwise.routing.speakable import speakable

        text = speakable(text)
    problems = speakable_problems(text, voice=VOICE[0])
    return {"id": row["_id"], "similarity": round(sim, 4), "items": round(items, 3), "missing": missing,
            "speakable": not problems, "problems": problems, "correct": sim >= 0.7 and items == 1.0,
            "page_hit": hit, "words": len(text.split()), "latency_ms": round(gen.latency_ms, 1),
            "ttft_ms": gen.ttft_ms, "confidence": gen.confidence, "answer": text}


def summaries(results: dict[str, dict[str, list[dict[str, Any]]]], answerers: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in answerers:
        by_set = {s: summarize(results[s][name]) for s in results}
        keys = ("similarity", "items", "speakable", "correct", "page_hit", "words")
        by_set["mean"] = {k: round(statistics.mean(by_set[s][k] for s in results), 3) for k in keys}
        summary[name] = by_set
    return summary


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from callwise.wiring.knowledge import build_knowledge, close_vector_stores
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    settings = Settings(data_dir=args.data_dir)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    async with open_runtime(settings) as rt:
        kn = build_knowledge(settings, rt.pool)
        embed = kn.embedder.encode
        answerers: dict[str, Any] = {}
        for name in args.answerers.split(","):
            if name == "extractive":
                answerers[name] = ExtractiveProvider(embed)
            elif name == "local":
                from callwise.routing.providers.local import LocalLlamaProvider, default_model_path

                answerers[name] = LocalLlamaProvider(default_model_path(settings.data_dir / "models"))
                answerers[name].warm()
            else:
                raise SystemExit(f"unknown answerer {name!r}")
        if args.baseline:
            answerers["baseline"] = load_baseline(args.baseline)(embed)
        for set_name in args.sets.split(","):
            rows = load_rows(set_name, args.limit)
            keep = {p for r in rows for p in r["pages"]}
            folder, mapping = corpus_dir(set_name, args.data_dir, args.max_pages, keep)
            org = await rt.org_id(f"answers-{set_name}" + (f"-{args.max_pages}" if args.max_pages else ""))
            t = time.perf_counter()
            report = await kn.ingestor.ingest(folder, org)
            print(f"{set_name}: synced {folder} in {time.perf_counter() - t:.1f} s ({report.counts}); "
                  f"{len(rows)} questions", file=sys.stderr, flush=True)
            per: dict[str, list[dict[str, Any]]] = {n: [] for n in answerers}
            for i, row in enumerate(rows):
                res = await kn.retriever.retrieve(row["question"], org, top_k=5)
                sources = tuple(sources_from(res.chunks))
                top = mapping.get(res.chunks[0].document, res.chunks[0].document) if res.chunks else ""
                hit = any(top == p or top.endswith(p) for p in row["pages"])
                g = Grounding(row["question"], sources, spoken=args.voice)
                for name, prov in answerers.items():
                    gen = await prov.generate([], grounding=g, max_tokens=args.max_tokens, temperature=0.0)
                    per[name].append(score_answer(row, gen, embed, hit))
                print(f"  {i + 1}/{len(rows)} {row['_id']} " + " ".join(
                    f"{n}: sim={per[n][-1]['similarity']:.2f} items={per[n][-1]['items']:.2f} "
                    f"speakable={per[n][-1]['speakable']}" for n in per), file=sys.stderr, flush=True)
            results[set_name] = per
        close_vector_stores()
    return {"summary": summaries(results, answerers), "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(PUBLIC_SETS), help="comma separated: pydoc, sqlite, git, orbitly")
    ap.add_argument("--limit", type=int, default=0, help="questions per set (0: all), spread over the set")
    ap.add_argument("--answerers", default="extractive", help="comma separated: extractive, local")
    ap.add_argument("--baseline", type=Path, help="another extractive.py to compare, run as 'baseline'")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CALLWISE_BENCH_DIR", "/tmp/callwise-bench-answers")),
                    help="embedded database and ingested corpora, kept between runs")
    ap.add_argument("--max-pages", type=int, default=0, help="ingest only the golden pages and other pages up to "
                    "this many (0: the whole corpus); a smaller haystack, cheaper to ingest on a busy machine")
    ap.add_argument("--sources", choices=("retrieved", "page"), default="retrieved",
                    help="retrieved: ingest + the default retriever's top 5; page: the golden page(s) chunked, "
                         "the 3 parents sharing most question words (answer quality alone, no database)")
    ap.add_argument("--max-tokens", type=int, default=120)
    ap.add_argument("--voice", action="store_true", help="answer for a voice call (no code, paths or option lists "
                    "read out) and check speakable with the voice rules")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    VOICE[0] = args.voice
    out = asyncio.run(run_pages(args) if args.sources == "page" else run(args))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name, by_set in out["summary"].items():
        for set_name, s in by_set.items():
            print(f"{name:10s} {set_name:7s} " + " ".join(f"{k}={v}" for k, v in s.items()))
    first = next(iter(out["results"].values()))
    for name, rs in first.items():
        for r in rs[:3]:
            print(f"\n[{name}] {r['id']}: {r['answer'][:240]}")


if __name__ == "__main__":
    main()
