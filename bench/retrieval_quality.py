"""Retrieval quality on BEIR-layout sets: is the right page found, and found first?

    python bench/retrieval_quality.py                                  # every set, the product's modes
    python bench/retrieval_quality.py --sets sqlite,git --json         # some sets, one JSON object
    python bench/retrieval_quality.py --experiments                    # also every variant tried in issue 9
    python bench/retrieval_quality.py --data path/to/beir-set          # any other BEIR-layout folder

Sets (``bench/data/<name>``): ``orbitly`` (the help centre the team wrote) and three public manuals
nobody here wrote, built by ``bench/data/make_public_sets.py`` from Debian's ``python3.11-doc``
(``pydoc``, a 182-page sample built on first use), ``sqlite3-doc`` (``sqlite``) and ``git-doc``
(``git``). Each set has ``corpus.jsonl`` ({_id, title, text}), ``queries.jsonl`` ({_id, text, split}),
``qrels/test.tsv`` (graded: 2 = the page that answers, 1 = a page that helps) and ``spoken.jsonl``
(a third of the questions as espeak-ng + faster-whisper heard them; ``bench/spoken_queries.py``).

Every corpus page is ingested through the product's ingest path (``build_knowledge``: loader,
chunker, embedder, the configured stores) as a Markdown file whose front matter carries the page
title, as an HTML ``<title>`` would. Each question is retrieved through ``Retriever.retrieve`` and
the returned chunks are turned into a page ranking (``knowledge/pages.py``: the learned page
ranker of ``knowledge/ranking.py`` when the package ships one, else the blend; ``--no-learned``
for the blend; ``first``: a page ranks by its best chunk). Metrics at page level: nDCG@10 (graded), MRR@10, Recall@10, and
``first`` = right page first (the top page has the question's highest grade). Figures are given
for typed questions (all, ``dev``, ``heldout``: the held-out quarter, never used for tuning) and
for the spoken ones, per set, as the mean over the public manuals and as the mean over all sets.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = ROOT / "bench" / "data"
SETS = ("orbitly", "pydoc", "sqlite", "git")
PUBLIC = ("pydoc", "sqlite", "git")
METRICS = ("ndcg", "mrr", "recall", "first")
LEARNED = [True]  # --no-learned: the mode rows rank pages by the blend even when a learned ranker ships


@dataclass
class BeirSet:
    name: str
    corpus: list[dict]
    typed: dict[str, str]
    split: dict[str, str]
    spoken: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_set(data: Path, distractors: int | None = None) -> BeirSet:
    """``distractors``: keep every judged page and only this many others (fixed order: sha1 of the id)."""
    import hashlib

    from make_public_sets import ensure_corpus

    corpus_path = ensure_corpus(data)
    corpus = [json.loads(ln) for ln in corpus_path.read_text().splitlines() if ln.strip()]
    rows = [json.loads(ln) for ln in (data / "queries.jsonl").read_text().splitlines() if ln.strip()]
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for i, line in enumerate((data / "qrels" / "test.tsv").read_text().splitlines()):
        parts = line.split("\t")
        if i == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if int(parts[2]) > 0:
            qrels[parts[0]][parts[1]] = int(parts[2])
    if distractors is not None:
        judged = {d for rel in qrels.values() for d in rel}
        others = sorted((d["_id"] for d in corpus if d["_id"] not in judged),
                        key=lambda i: hashlib.sha1(i.encode()).hexdigest())[:distractors]
        keep = judged | set(others)
        corpus = [d for d in corpus if d["_id"] in keep]
    typed = {r["_id"]: r["text"] for r in rows if r["_id"] in qrels}
    # a set without a split field (orbitly) holds out every fourth question, as the public sets do
    split = {r["_id"]: r.get("split") or ("heldout" if i % 4 == 0 else "dev") for i, r in enumerate(rows, start=1)}
    spoken: dict[str, str] = {}
    if (data / "spoken.jsonl").exists():
        for ln in (data / "spoken.jsonl").read_text().splitlines():
            if ln.strip():
                r = json.loads(ln)
                if r["_id"] in qrels and r["text"].strip():
                    spoken[r["_id"]] = r["text"]
    return BeirSet(data.name, corpus, typed, split, spoken, dict(qrels))


def page_metrics(ranked: list[str], rel: dict[str, int], k: int) -> dict[str, float]:
    top = ranked[:k]
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(top))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    rr = next((1.0 / (i + 1) for i, d in enumerate(top) if rel.get(d, 0) > 0), 0.0)
    best = max(rel.values())
    return {"ndcg": dcg / idcg if idcg else 0.0, "mrr": rr, "recall": len(set(top) & set(rel)) / len(rel),
            "first": 1.0 if top and rel.get(top[0], 0) == best else 0.0}


def write_corpus(corpus: list[dict], root: Path) -> dict[str, str]:
    """One Markdown file per page (title in front matter); returns source -> page id."""
    mapping: dict[str, str] = {}
    for i, doc in enumerate(corpus):
        name = f"{i:05d}.md"
        title = (doc.get("title") or "").replace("\n", " ").strip()
        head = f"---\ntitle: \"{title}\"\n---\n\n" if title else ""
        (root / name).write_text(head + doc.get("text", ""))
        mapping[f"{root}/{name}"] = doc["_id"]
    return mapping


class CachedEmbedder:
    """The product's embedder with a persistent cache of chunk vectors (bench only, ``--cache-dir``).

    Ingesting the four sets embeds about 15k chunks; on a shared two-core machine that is most of a
    run. The cache is keyed by the model path and the exact text, so a changed chunk is embedded
    again and the vectors are the ones the embedder would return."""

    def __init__(self, inner: Any, cache_dir: Path) -> None:
        import hashlib

        import numpy as np

        self._inner, self._np = inner, np
        tag = hashlib.sha1(str(inner.model_path).encode()).hexdigest()[:10]
        self._path = cache_dir / f"vectors-{tag}.npz"
        self._cache: dict[str, Any] = {}
        if self._path.exists():
            with np.load(self._path) as z:
                self._cache = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
        self._dirty = False
        self._unsaved = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @staticmethod
    def _key(text: str) -> str:
        import hashlib

        return hashlib.sha1(text.encode()).hexdigest()

    def encode(self, texts: list[str]) -> Any:
        keys = [self._key(t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            vecs = self._inner.encode([texts[i] for i in missing])
            for i, v in zip(missing, vecs, strict=True):
                self._cache[keys[i]] = v
            self._dirty = True
            self._unsaved += len(missing)
            if self._unsaved >= 1000:  # a long ingest that is stopped keeps most of its work
                self.save()
        if not texts:
            return self._inner.encode([])
        return self._np.stack([self._cache[k] for k in keys]).astype(self._np.float32)

    def encode_query(self, text: str) -> Any:
        return self._inner.encode_query(text)

    def save(self) -> None:
        if self._dirty and self._cache:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            if self._path.exists():  # another run may have saved since this one loaded: keep its vectors too
                with self._np.load(self._path) as z:
                    for key, vec in zip(z["keys"].tolist(), z["vecs"], strict=True):
                        self._cache.setdefault(key, vec)
            keys = list(self._cache)
            tmp = self._path.with_suffix(f".{os.getpid()}.tmp.npz")
            self._np.savez(tmp, keys=self._np.asarray(keys), vecs=self._np.stack([self._cache[k] for k in keys]))
            tmp.replace(self._path)
            self._dirty = False
            self._unsaved = 0


@dataclass(frozen=True)
class Variant:
    """One way of answering "which page": a retrieval mode, a reranker, query clean-up, page ranking."""

    name: str
    mode: str
    reranker: str = "default"  # default (what the product builds) | none | embedding | embedding:<child>:<fusion>
    clean: bool = False
    pages: tuple[tuple[str, str, float, int], ...] = (("first", "first", 0.0, 1),)  # (label, method, k, depth)
    fusion: tuple[tuple[str, Any], ...] = ()  # RetrieverConfig overrides: ("rrf_k", 10), ("rrf_weights", (1, 2))

    def retrieval_key(self) -> tuple[Any, ...]:
        return (self.mode, self.reranker, self.clean, self.fusion)


PAGE_FIRST = ("first", "first", 0.0, 1)


def product_variants(page_cfg: tuple[str, str, float, int], clean: bool) -> list[Variant]:
    return [Variant(m, m, "default", clean, (page_cfg,)) for m in ("bm25", "vector", "hybrid", "hybrid+rerank")]


def experiment_variants() -> list[Variant]:
    pages = (PAGE_FIRST, ("rrf2x3", "rrf", 2.0, 3), ("rrf5x3", "rrf", 5.0, 3), ("rrf10x5", "rrf", 10.0, 5),
             ("rrf1x2", "rrf", 1.0, 2))
    out = [
        Variant("bm25", "bm25", "none", False, pages),
        Variant("vector", "vector", "none", False, pages),
        Variant("hybrid", "hybrid", "none", False, pages),
        Variant("rerank_emb", "hybrid+rerank", "embedding:0:0", False, pages),
        Variant("rerank_emb_child.5", "hybrid+rerank", "embedding:0.5:0", False, pages),
        Variant("rerank_emb_fuse.5", "hybrid+rerank", "embedding:0:0.5", False, pages),
        Variant("rerank_emb_child.5_fuse.5", "hybrid+rerank", "embedding:0.5:0.5", False, pages),
    ]
    for v in ("bm25", "vector", "hybrid"):
        out.append(Variant(v + "+clean", v, "none", True, pages))
    out.append(Variant("rerank_emb_child.5_fuse.5+clean", "hybrid+rerank", "embedding:0.5:0.5", True, pages))
    default_pages = (("rrf2x3", "rrf", 2.0, 3),)
    for name, fusion in (("hybrid_vec1.5", (("rrf_weights", (1.0, 1.5)),)), ("hybrid_vec2", (("rrf_weights", (1.0, 2.0)),)),
                         ("hybrid_rrfk10", (("rrf_k", 10),)), ("hybrid_weighted", (("fusion", "weighted"),))):
        out.append(Variant(name + "+clean", "hybrid", "none", True, default_pages, fusion))
    out.append(Variant("rerank_emb_child.5_fuse.5_rrfk10+clean", "hybrid+rerank", "embedding:0.5:0.5", True,
                       default_pages, (("rrf_k", 10),)))
    return out


@dataclass
class Tally:
    sums: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, group: str, m: dict[str, float]) -> None:
        self.counts[group] += 1
        for k, v in m.items():
            self.sums[group][k] += v

    def means(self) -> dict[str, dict[str, float]]:
        return {g: {**{k: round(v / self.counts[g], 4) for k, v in s.items()}, "n": self.counts[g]}
                for g, s in self.sums.items()}


async def evaluate_set(bs: BeirSet, variants: list[Variant], *, k: int, candidates: int, title_root: bool, lead: bool,
                       embedding_model: str | None, cache_dir: Path | None) -> dict[str, Any]:
    import callwise.knowledge.loaders as loaders
    from callwise.knowledge.pages import PageConfig, page_ranking, rank_pages
    from callwise.knowledge.query import clean_query
    from callwise.knowledge.rerank import EmbeddingReranker
    from callwise.knowledge.retriever import Retriever
    from callwise.wiring import knowledge as wiring
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    loaders.TITLE_ROOT = title_root
    loaders.LEAD_SENTENCE = lead
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="callwise-bench-") as tmp:
        kwargs: dict[str, Any] = {"data_dir": Path(tmp) / "data"}
        if embedding_model:
            kwargs["embedding_model"] = embedding_model
        settings = Settings(**kwargs)
        async with open_runtime(settings) as rt:
            org = await rt.org_id("bench-" + bs.name + "-" + uuid.uuid4().hex[:8])
            embedder: Any = wiring.get_embedder(settings)
            if cache_dir is not None:
                embedder = CachedEmbedder(embedder, cache_dir)
            kb = wiring.build_knowledge(settings, rt.pool, embedder=embedder)
            root = Path(tmp) / "corpus"
            root.mkdir()
            mapping = write_corpus(bs.corpus, root)
            t = time.perf_counter()
            report = await kb.ingestor.ingest(root, org)
            ingest_s = time.perf_counter() - t
            if isinstance(embedder, CachedEmbedder):
                embedder.save()
            print(f"[{bs.name}] ingested {report.counts['added']} pages, {report.chunks} chunks in {ingest_s:.0f} s "
                  f"({report.chunks / ingest_s:.1f} chunks/s); {len(bs.typed)} typed, {len(bs.spoken)} spoken questions",
                  file=sys.stderr)
            out["_ingest"] = {"pages": report.counts["added"], "chunks": report.chunks, "seconds": round(ingest_s, 1),
                              "skipped": report.counts["skipped"]}

            def reranker_for(spec: str) -> Any:
                if spec == "default":
                    return kb.retriever.reranker
                if spec == "none":
                    return None
                _, child, fuse = spec.split(":")
                return EmbeddingReranker(kb.vectors, child_weight=float(child), fusion_weight=float(fuse))

            if kb.retriever.reranker is None:  # the product's rows share the experiments' retrievals
                variants = [dataclasses.replace(v, reranker="none") if v.reranker == "default" else v for v in variants]
            cache: dict[tuple[Any, ...], dict[tuple[str, str], list[Any]]] = {}
            timing: dict[tuple[Any, ...], float] = {}
            for v in variants:
                key = v.retrieval_key()
                if key in cache:
                    continue
                base = kb.retriever
                cfg = dataclasses.replace(base.config, rerank_timeout_s=max(base.config.rerank_timeout_s, 30.0),
                                          **dict(v.fusion))
                retriever = Retriever(base.docs, base.vectors, base.embedder, base.bm25, reranker_for(v.reranker), cfg)
                results: dict[tuple[str, str], list[Any]] = {}
                t = time.perf_counter()
                n = 0
                for kind, qs in (("typed", bs.typed), ("spoken", bs.spoken)):
                    for qid, text in qs.items():
                        q = clean_query(text) if v.clean else text
                        res = await retriever.retrieve(q, org, top_k=candidates, mode=v.mode)
                        results[(kind, qid)] = res.chunks
                        n += 1
                cache[key] = results
                timing[key] = (time.perf_counter() - t) * 1000 / max(1, n)

            for v in variants:
                results = cache[v.retrieval_key()]
                for label, method, pk, depth in v.pages:
                    tally = Tally()
                    cfg = PageConfig(method=method, k=pk, depth=depth)
                    for (kind, qid), chunks in results.items():
                        for c in chunks:
                            c.document = mapping.get(c.document, c.document)
                        # the product's page ranking: learned when it ships, after the default re-score only
                        if label == "default" and LEARNED[0] and v.mode == "hybrid+rerank" and v.reranker == "default":
                            text = (bs.typed if kind == "typed" else bs.spoken)[qid]
                            ranked = page_ranking(text, chunks, cfg)
                        else:
                            ranked = [h.document for h in rank_pages(chunks, cfg)]
                        m = page_metrics(ranked, bs.qrels[qid], k)
                        tally.add(kind, m)
                        if kind == "typed":
                            tally.add(bs.split.get(qid, "dev"), m)
                    name = v.name if len(v.pages) == 1 and label == "first" and v.pages == (PAGE_FIRST,) else \
                        f"{v.name}|pages={label}"
                    out[name] = {**tally.means(), "ms_per_query": round(timing[v.retrieval_key()], 1)}
            wiring.close_vector_stores()
    return out


def mean_over(results: dict[str, dict[str, Any]], names: list[str]) -> dict[str, Any]:
    have = [n for n in names if n in results]
    if not have:
        return {}
    variants = [v for v in results[have[0]] if not v.startswith("_")]
    out: dict[str, Any] = {}
    for v in variants:
        groups: dict[str, dict[str, float]] = {}
        for g in ("typed", "dev", "heldout", "spoken"):
            vals = [results[n][v][g] for n in have if v in results[n] and g in results[n][v]]
            if vals:
                groups[g] = {m: round(sum(x[m] for x in vals) / len(vals), 4) for m in METRICS}
        out[v] = groups
    return out


def print_table(title: str, table: dict[str, Any], k: int) -> None:
    print(f"\n== {title}")
    print(f"{'variant':44} {'':7} {'nDCG@' + str(k):>8} {'MRR@' + str(k):>8} {'R@' + str(k):>7} {'first':>7} {'n':>4}")
    for name, groups in table.items():
        if name.startswith("_"):
            continue
        for g in ("typed", "heldout", "spoken"):
            if g not in groups:
                continue
            r = groups[g]
            n = r.get("n", "")
            print(f"{name if g == 'typed' else '':44} {g:7} {r['ndcg']:8.3f} {r['mrr']:8.3f} {r['recall']:7.3f} "
                  f"{r['first']:7.3f} {n:>4}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated names under bench/data")
    ap.add_argument("--data", type=Path, action="append", help="a BEIR-layout folder (repeatable; overrides --sets)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=25, help="chunks retrieved per question (BM25 and vector each)")
    ap.add_argument("--experiments", action="store_true", help="run every variant tried for issue 9, not only the modes")
    ap.add_argument("--variants", default=None, help="with --experiments: only these variant names (comma-separated)")
    ap.add_argument("--no-title-root", action="store_true", help="ingest without the page title heading each chunk")
    ap.add_argument("--no-lead", action="store_true", help="ingest without the page's lead sentence heading each chunk's BM25 text")
    ap.add_argument("--pages", default="default", help="page ranking for the mode rows: default | first | rrf:K:DEPTH")
    ap.add_argument("--clean", choices=("default", "on", "off"), default="default", help="query clean-up for the mode rows")
    ap.add_argument("--embedding-model", default=None, help="a sentence-transformers path (default: the product's)")
    ap.add_argument("--distractors", type=int, default=None,
                    help="keep every judged page and only N other pages of each corpus (a quicker, easier run)")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="keep chunk vectors here between runs (ingest figures then exclude embedding)")
    ap.add_argument("--json", action="store_true", help="one JSON object: per set, per variant, per group")
    ap.add_argument("--no-learned", action="store_true",
                    help="rank pages by today's blend even when the learned page ranker ships (the 'before' figures)")
    args = ap.parse_args()
    LEARNED[0] = not args.no_learned

    from callwise.knowledge import pages as pages_mod
    from callwise.knowledge import query as query_mod

    if args.pages == "default":
        d = pages_mod.DEFAULT
        page_cfg = ("first", "first", 0.0, 1) if d.method == "first" else ("default", d.method, d.k, d.depth)
    elif args.pages == "first":
        page_cfg = PAGE_FIRST
    else:
        _, pk, depth = args.pages.split(":")
        page_cfg = (args.pages, "rrf", float(pk), int(depth))
    clean = query_mod.CLEAN_BY_DEFAULT if args.clean == "default" else args.clean == "on"
    variants = product_variants(page_cfg, clean)
    if args.experiments:
        wanted = set(args.variants.split(",")) if args.variants else None
        variants += [v for v in experiment_variants() if wanted is None or v.name in wanted]
    dirs = args.data or [DATA / s for s in args.sets.split(",")]
    results: dict[str, Any] = {}
    for d in dirs:
        bs = load_set(d, args.distractors)
        results[bs.name] = asyncio.run(evaluate_set(bs, variants, k=args.k, candidates=args.candidates,
                                                    title_root=not args.no_title_root, lead=not args.no_lead,
                                                    embedding_model=args.embedding_model,
                                                    cache_dir=args.cache_dir))
    public = [n for n in results if n in PUBLIC]
    summary = {"mean_public": mean_over(results, public), "mean_all": mean_over(results, list(results))}
    from callwise.knowledge.pages import shipped_ranker

    config = {"learned_pages": bool(LEARNED[0] and shipped_ranker() is not None), "distractors": "all" if args.distractors is None else args.distractors, "k": args.k, "candidates": args.candidates, "title_root": not args.no_title_root, "lead": not args.no_lead,
              "pages": page_cfg, "clean": clean, "embedding_model": args.embedding_model or "all-MiniLM-L6-v2"}
    if args.json:
        print(json.dumps({"config": config, "sets": results, **summary}, indent=1))
        return
    print(f"config: {config}")
    for name, table in results.items():
        ing = table["_ingest"]
        print_table(f"{name}: {ing['pages']} pages, {ing['chunks']} chunks, ingest {ing['seconds']} s", table, args.k)
    if public:
        print_table(f"mean over public manuals ({', '.join(public)})", summary["mean_public"], args.k)
    if len(results) > 1:
        print_table(f"mean over all sets ({', '.join(results)})", summary["mean_all"], args.k)


if __name__ == "__main__":
    main()
