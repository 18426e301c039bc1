"""Learning to rank pages: leave-one-corpus-out, then the model the product ships.

    python bench/rank_data.py --cache-dir /tmp/embcache --out /tmp/rankdump      # once: the retrievals
    python bench/learn_rank.py --dump /tmp/rankdump [--write] [--json]

Features are the product's own (``callwise.knowledge.ranking.page_features``: per page, its chunks'
ranks and scores in BM25, vector, fusion and the re-score, how the question's words meet the page's
title, headings and text, the page's kind and the question's form). Labels are the graded
judgements (2 the page that answers, 1 a page that helps, 0 any other retrieved page). The model
is scikit-learn's gradient-boosted regression trees on the grade (pointwise).

Leave one corpus out: for each set, train on the **dev** questions (typed and spoken) of every other
set and rank every question of the held-out set; reported against today's blend
(``knowledge/pages.py`` DEFAULT) as right page first and nDCG@10 per group. The configuration
(trees, depth, learning rate) is chosen by the LOCO mean over the sets, never by one set's figures.
``--write`` trains the chosen configuration on the dev questions of every set and writes
``src/callwise/knowledge/data/page_ranker.json`` (read by ``callwise.knowledge.ranking``); the
held-out questions of each set are then reported before and after with the shipped model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETS = ("apache", "orbitly", "pydoc", "sqlite", "git")
GROUPS = ("typed", "spoken")
CONFIGS = {
    "gbr100d3": {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.05},
    "gbr200d3": {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05},
    "gbr150d2": {"n_estimators": 150, "max_depth": 2, "learning_rate": 0.1},
    "gbr300d4": {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.03},
}


def _chunks(raw: list[dict[str, Any]]) -> list[Any]:
    return [SimpleNamespace(document=c["doc"], **c) for c in raw]


def load(dump: Path, sets: list[str]) -> list[dict[str, Any]]:
    from callwise.knowledge.ranking import page_features

    rows = []
    for s in sets:
        path = dump / f"{s}.json"
        if not path.exists():
            print(f"no dump for {s}", file=sys.stderr)
            continue
        for q in json.loads(path.read_text())["questions"]:
            if q["group"] not in GROUPS or not q["qrels"]:
                continue
            chunks = _chunks(q["chunks"])
            docs, X = page_features(q["text"], chunks)
            rows.append({"set": s, "group": q["group"], "split": q["split"], "id": q["id"], "qrels": q["qrels"],
                         "docs": docs, "X": X, "chunks": chunks, "text": q["text"]})
    return rows


def metrics(ranked: list[str], rel: dict[str, int], k: int = 10) -> dict[str, float]:
    top = ranked[:k]
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(top))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return {"ndcg": dcg / idcg if idcg else 0.0, "first": 1.0 if top and rel.get(top[0], 0) == max(rel.values()) else 0.0}


def blend_ranking(r: dict[str, Any]) -> list[str]:
    from callwise.knowledge.pages import DEFAULT, rank_pages

    return [h.document for h in rank_pages(r["chunks"], DEFAULT)]


def model_ranking(model: Any, r: dict[str, Any]) -> list[str]:
    import numpy as np

    if not r["docs"]:
        return []
    s = model.predict(np.asarray(r["X"], dtype=np.float64))
    order = sorted(range(len(r["docs"])), key=lambda i: (-s[i], i))
    return [r["docs"][i] for i in order]


def train(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Any:
    import numpy as np
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = [], []
    for r in rows:
        for doc, x in zip(r["docs"], r["X"], strict=True):
            X.append(x)
            y.append(float(r["qrels"].get(doc, 0)))
    return GradientBoostingRegressor(subsample=0.8, min_samples_leaf=20, random_state=0, **cfg).fit(
        np.asarray(X, dtype=np.float64), np.asarray(y))


def tally(rows: list[dict[str, Any]], rank: Any) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for g in GROUPS:
        sel = [r for r in rows if r["group"] == g]
        if sel:
            ms = [metrics(rank(r), r["qrels"]) for r in sel]
            out[g] = {"n": len(sel), "first": round(sum(m["first"] for m in ms) / len(ms), 4),
                      "ndcg": round(sum(m["ndcg"] for m in ms) / len(ms), 4)}
    return out


def loco(rows: list[dict[str, Any]], sets: list[str], cfg: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for held in sets:
        test = [r for r in rows if r["set"] == held]
        fit = [r for r in rows if r["set"] != held and r["split"] == "dev"]
        if not test or not fit:
            continue
        model = train(fit, cfg)
        table[held] = {"blend": tally(test, blend_ranking), "learned": tally(test, lambda r, m=model: model_ranking(m, r))}
    return table


def mean_first(table: dict[str, Any], which: str) -> float:
    vals = [v[which][g]["first"] for v in table.values() for g in GROUPS if g in v[which]]
    return round(sum(vals) / len(vals), 4) if vals else 0.0


def export(model: Any, meta: dict[str, Any]) -> dict[str, Any]:
    from callwise.knowledge.ranking import FEATURES

    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        trees.append({"feature": [int(f) for f in t.feature], "threshold": [float(x) for x in t.threshold],
                      "left": [int(x) for x in t.children_left], "right": [int(x) for x in t.children_right],
                      "value": [float(v) for v in t.value[:, 0, 0]]})
    return {"features": list(FEATURES), "init": float(model.init_.constant_[0][0]), "rate": float(model.learning_rate),
            "trees": trees, "meta": meta}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path, required=True)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--write", action="store_true", help="train the chosen configuration on every dev question and ship it")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    sets = [s for s in args.sets.split(",") if (args.dump / f"{s}.json").exists()]
    rows = load(args.dump, sets)
    result: dict[str, Any] = {"sets": sets, "loco": {}}
    best, best_score = None, -1.0
    for name in args.configs.split(","):
        table = loco(rows, sets, CONFIGS[name])
        score = mean_first(table, "learned")
        result["loco"][name] = {"table": table, "mean_first": score, "mean_first_blend": mean_first(table, "blend")}
        print(f"{name}: LOCO mean right page first {score:.3f} (blend {mean_first(table, 'blend'):.3f})", file=sys.stderr)
        if score > best_score:
            best, best_score = name, score
    result["chosen"] = best
    if args.write and best is not None:
        from callwise.knowledge.ranking import MODEL_PATH, LearnedPageRanker, TreeEnsemble

        model = train([r for r in rows if r["split"] == "dev"], CONFIGS[best])
        meta = {"config": best, **CONFIGS[best], "trained_on": "dev questions (typed, spoken) of " + ", ".join(sets),
                "loco_mean_first": best_score, "made_by": "bench/learn_rank.py",
                "reranker": "embedding"}  # the stage scores it was trained on: the product's local re-score
        d = export(model, meta)
        ens = TreeEnsemble.from_dict(d)
        for r in rows[:50]:  # the shipped evaluator must agree with scikit-learn
            import numpy as np

            ref = model.predict(np.asarray(r["X"], dtype=np.float64))
            ours = [ens.predict(x) for x in r["X"]]
            assert all(abs(a - b) < 1e-4 for a, b in zip(ref, ours, strict=True)), (ref[:3], ours[:3])
        MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
        MODEL_PATH.write_text(json.dumps(d, separators=(",", ":")))
        ranker = LearnedPageRanker.load()
        assert ranker is not None
        shipped: dict[str, Any] = {}
        for s in sets:
            for split in ("dev", "heldout"):
                sel = [r for r in rows if r["set"] == s and r["split"] == split]
                shipped[f"{s}|{split}"] = {"blend": tally(sel, blend_ranking),
                                           "learned": tally(sel, lambda r: [d for d, _ in ranker.rank(r["text"], r["chunks"])])}
        result["shipped"] = shipped
        print(f"wrote {MODEL_PATH} ({MODEL_PATH.stat().st_size} bytes, {best})", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for name, v in result["loco"].items():
        print(f"\n== {name} (LOCO: train on the other sets' dev questions)")
        for s, t in v["table"].items():
            for g in GROUPS:
                if g in t["blend"]:
                    b, lrn = t["blend"][g], t["learned"][g]
                    print(f"{s:8} {g:7} n={b['n']:3}  first {b['first']:.3f} -> {lrn['first']:.3f}   "
                          f"nDCG@10 {b['ndcg']:.3f} -> {lrn['ndcg']:.3f}")
    for key, t in result.get("shipped", {}).items():
        for g in GROUPS:
            if g in t["blend"]:
                b, lrn = t["blend"][g], t["learned"][g]
                print(f"shipped {key:16} {g:7} n={b['n']:3} first {b['first']:.3f} -> {lrn['first']:.3f}  "
                      f"nDCG@10 {b['ndcg']:.3f} -> {lrn['ndcg']:.3f}")


if __name__ == "__main__":
    main()
