"""A learned page ranking: which page answers, from features the retriever already has.

The retriever returns chunks with their BM25, vector, fusion and re-score ranks and scores, their
page title and headings. ``page_features`` turns those into one row per page (how high the page's
chunks came in each list, how many it has, how the question's words meet its title and headings,
what kind of page it is and what kind of question was asked); a small gradient-boosted tree
ensemble trained offline (``bench/learn_rank.py``, chosen by leave-one-corpus-out over the
retrieval sets) scores each row. The ensemble ships as JSON in ``knowledge/data/page_ranker.json``
and is evaluated here with plain Python (no scikit-learn at run time). Without the file the page
ranking is today's blend (``knowledge/pages.py``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from callwise.knowledge.text import tokenize

MODEL_PATH = Path(__file__).with_name("data") / "page_ranker.json"


class _Chunk(Protocol):
    document: str
    title: str
    title_path: list[str]
    text: str
    stages: dict[str, Any]


_QSTOP = frozenset("""
a about an and any are as at be can could do does did for from get go going has have help hi hello hey how i i'd
i'm if in is it its just know like me my need of on one or our out please so some tell that the their them there
these this to up use using want was way we what when where which who why will with would you your yes okay ok
um uh well really actually thanks thank trying try something anything
""".split())
_REF_TITLE = re.compile(r"\(\d\)|^[\w.-]+(?:\(\))?$|^[\w.]+\s+[—-]\s|\b[a-z]+_[a-z_]+\b|^[a-z][\w.]*\.[a-z]")
_HOWTO_TITLE = re.compile(r"\bhow[- ]?to\b|\btutorial\b|\bguide\b|\bintroduction\b|\bgetting started\b|\bquick ?start\b|"
                          r"\bexamples?\b|\bwalkthrough\b|\bsetting up\b|^how\b", re.IGNORECASE)
_FAQ_TITLE = re.compile(r"\bfaq\b|frequently asked|\bquestions\b|\btroubleshoot", re.IGNORECASE)
_DESIGN_TITLE = re.compile(r"\bdesign\b|\binternals?\b|\bformat\b|\bprotocol\b|\bnotes\b|\bchanges?\b|\brelease\b|"
                           r"\bspecification\b|\barchitecture\b", re.IGNORECASE)
_Q_HOWTO = re.compile(r"\bhow (?:do|can|should|would) (?:i|we|you)\b|\bhow to\b|\bis there a way\b|\bcan i\b|"
                      r"\bi (?:want|need|would like|'d like) to\b|\bset up\b|\bsetup\b", re.IGNORECASE)
_Q_WHAT = re.compile(r"\bwhat (?:is|are|does)\b|\bwhat's\b|\bexplain\b|\bdifference\b|\bmean(?:s|ing)?\b|\bwhy\b",
                     re.IGNORECASE)
_Q_PROBLEM = re.compile(r"\berror\b|\bfail|\bnot working\b|\bwon't\b|\bcan't\b|\bdoesn't\b|\bbroken\b|\bwrong\b|"
                        r"\bkeeps?\b|\bstuck\b|\bproblem\b|\bissue\b", re.IGNORECASE)
_SYNOPSIS = re.compile(r"\bSYNOPSIS\b|\bSyntax:|\bUsage:", re.IGNORECASE)

#: feature names, in the order of a row; the model file names them too and must match
FEATURES: tuple[str, ...] = (
    "first_pos_rr", "blend", "n_chunks", "bm25_rr", "bm25_rel", "vec_rr", "vec", "vec_gap", "rerank_rr", "rerank",
    "rerank_gap", "fused_rr", "title_hit", "title_cover", "head_hit", "text_hit", "ref_title", "howto_title",
    "faq_title", "design_title", "synopsis", "q_howto", "q_what", "q_problem", "howto_x_howto", "howto_x_ref",
    "parent_len", "q_terms",
)


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s"):
        if len(w) > len(suf) + 3 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def terms(text: str) -> set[str]:
    """Content words of ``text``, lower-cased and crudely stemmed (codes stay whole)."""
    return {_stem(t) for t in tokenize(text) if t not in _QSTOP and len(t) > 1}


def _stage(c: _Chunk, name: str) -> tuple[int, float] | None:
    stages = getattr(c, "stages", None)
    s = stages.get(name) if stages else None
    if s is None:
        return None
    if isinstance(s, (list, tuple)):
        return int(s[0]), float(s[1])
    return int(s.rank), float(s.score)


def page_features(query: str, chunks: Sequence[_Chunk], *, depth: int = 2,
                  blend_k: float = 1.0) -> tuple[list[str], list[list[float]]]:
    """Pages in order of their best chunk, and one feature row per page (``FEATURES``)."""
    q = terms(query)
    nq = max(1, len(q))
    top = {name: max((st[1] for c in chunks if (st := _stage(c, name))), default=0.0)
           for name in ("bm25", "vector", "rerank")}
    pages: dict[str, list[tuple[int, _Chunk]]] = {}
    for pos, c in enumerate(chunks):
        pages.setdefault(c.document, []).append((pos, c))
    q_howto = 1.0 if _Q_HOWTO.search(query) else 0.0
    q_what = 1.0 if _Q_WHAT.search(query) else 0.0
    q_problem = 1.0 if _Q_PROBLEM.search(query) else 0.0
    docs: list[str] = []
    rows: list[list[float]] = []
    for doc, items in pages.items():
        first_pos, first = items[0]
        title = getattr(first, "title", "") or ""
        t_terms = terms(title)
        best: dict[str, tuple[int, float]] = {}
        for _, c in items:
            for name in ("bm25", "vector", "rerank", "fused"):
                st = _stage(c, name)
                if st is not None and (name not in best or st[0] < best[name][0]):
                    best[name] = st
        vec_best = max((st[1] for _, c in items if (st := _stage(c, "vector"))), default=0.0)
        rr_best = max((st[1] for _, c in items if (st := _stage(c, "rerank"))), default=0.0)
        bm_best = max((st[1] for _, c in items if (st := _stage(c, "bm25"))), default=0.0)
        head_hit = max((len(q & terms(" ".join((getattr(c, "title_path", None) or [])[1:]))) / nq for _, c in items),
                       default=0.0)
        text_hit = max(len(q & terms((getattr(c, "text", "") or "")[:1200])) / nq for _, c in items)
        ref = 1.0 if _REF_TITLE.search(title) else 0.0
        howto = 1.0 if _HOWTO_TITLE.search(title) else 0.0
        docs.append(doc)
        rows.append([
            1.0 / (1 + first_pos),
            sum(1.0 / (blend_k + pos + 1) for pos, _ in items[:depth]),
            float(min(len(items), 10)),
            1.0 / best["bm25"][0] if "bm25" in best else 0.0,
            bm_best / top["bm25"] if top["bm25"] > 0 else 0.0,
            1.0 / best["vector"][0] if "vector" in best else 0.0,
            vec_best,
            vec_best - top["vector"] if vec_best else -1.0,
            1.0 / best["rerank"][0] if "rerank" in best else 0.0,
            rr_best,
            rr_best - top["rerank"] if rr_best else -1.0,
            1.0 / best["fused"][0] if "fused" in best else 0.0,
            len(q & t_terms) / nq,
            len(q & t_terms) / max(1, len(t_terms)),
            head_hit,
            text_hit,
            ref,
            howto,
            1.0 if _FAQ_TITLE.search(title) else 0.0,
            1.0 if _DESIGN_TITLE.search(title) else 0.0,
            1.0 if any(_SYNOPSIS.search((getattr(c, "text", "") or "")[:1200]) for _, c in items) else 0.0,
            q_howto, q_what, q_problem,
            q_howto * howto, q_howto * ref,
            math.log1p(max(len(getattr(c, "parent_text", "") or "") or int(getattr(c, "parent_len", 0) or 0)
                           for _, c in items)),
            float(len(q)),
        ])
    return docs, rows


@dataclass(frozen=True)
class TreeEnsemble:
    """Gradient-boosted regression trees: ``init + rate * sum(tree(x))``. Each tree is four parallel
    lists as scikit-learn keeps them (``feature`` < 0 marks a leaf)."""

    features: tuple[str, ...]
    init: float
    rate: float
    trees: tuple[tuple[tuple[int, ...], tuple[float, ...], tuple[int, ...], tuple[int, ...], tuple[float, ...]], ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TreeEnsemble:
        names = tuple(d["features"])
        unknown = [f for f in names if f not in FEATURES]
        if unknown:
            raise ValueError(f"page ranker uses unknown features: {', '.join(unknown)}")
        trees = tuple((tuple(t["feature"]), tuple(t["threshold"]), tuple(t["left"]), tuple(t["right"]), tuple(t["value"]))
                      for t in d["trees"])
        return cls(names, float(d["init"]), float(d["rate"]), trees)

    def predict(self, row: Sequence[float]) -> float:
        # scikit-learn compares float32 features with its thresholds: so do we, or a value on a split flips
        x = [float(np.float32(row[FEATURES.index(f)])) for f in self.features]
        total = 0.0
        for feature, threshold, left, right, value in self.trees:
            node = 0
            while feature[node] >= 0:
                node = left[node] if x[feature[node]] <= threshold[node] else right[node]
            total += value[node]
        return self.init + self.rate * total


class LearnedPageRanker:
    """Pages best first by the ensemble's score (ties: the page's best chunk first)."""

    name = "learned"

    def __init__(self, model: TreeEnsemble, meta: dict[str, Any] | None = None) -> None:
        self.model = model
        self.meta = meta or {}

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> LearnedPageRanker | None:
        """The shipped ranker, or None when the file is missing (today's blend is used then)."""
        if not path.exists():
            return None
        d = json.loads(path.read_text())
        return cls(TreeEnsemble.from_dict(d), d.get("meta"))

    def rank(self, query: str, chunks: Sequence[_Chunk]) -> list[tuple[str, float]]:
        docs, rows = page_features(query, chunks)
        scored = [(doc, self.model.predict(row), i) for i, (doc, row) in enumerate(zip(docs, rows, strict=True))]
        scored.sort(key=lambda t: (-t[1], t[2]))
        return [(d, s) for d, s, _ in scored]
