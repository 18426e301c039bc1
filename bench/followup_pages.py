"""Spoken follow-ups on the retrieval sets: is the page that answers the follow-up first?

    python bench/rank_data.py --cache-dir /tmp/embcache --out /tmp/rankdump      # once: the retrievals
    python bench/followup_pages.py --dump /tmp/rankdump [--fit] [--json]

Each set's ``followups.jsonl`` holds a first question and a spoken follow-up that leans on it
without naming its subject ("and how do I add another person to it later on?"), judged in
``qrels/followups.tsv`` (the page that answers the follow-up in the context of the first).
``bench/rank_data.py`` retrieved, with the product's retriever, the first question, the follow-up as
heard and the follow-up as query understanding makes it standalone today (the first question's key
terms carried in). Compared here, as right page first and nDCG@10 over the follow-up's pages:

* ``heard``: the follow-up's words alone;
* ``standalone``: today's product (carried terms);
* ``heard+prior`` / ``standalone+prior``: the follow-up's page ranking fused with a prior on the
  previous turn's pages (``callwise.knowledge.pages.fuse_prior``), weighted by how elliptical the
  follow-up is (``callwise.calls.stages.retrieve.prior_weight``).

``--fit`` picks the prior weights on the dev pairs (a grid) and prints them; held-out pairs are
reported, never fitted. Page rankings use the product's page ranker (the learned one when it ships).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETS = ("apache", "orbitly", "pydoc", "sqlite", "git")


def _chunks(raw: list[dict[str, Any]]) -> list[Any]:
    return [SimpleNamespace(document=c["doc"], **c) for c in raw]


def metrics(ranked: list[str], rel: dict[str, int], k: int = 10) -> dict[str, float]:
    top = ranked[:k]
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(top))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return {"ndcg": dcg / idcg if idcg else 0.0, "first": 1.0 if top and rel.get(top[0], 0) == max(rel.values()) else 0.0}


def load(dump: Path, sets: list[str]) -> list[dict[str, Any]]:
    from callwise.knowledge.pages import page_ranking

    rows = []
    for s in sets:
        path = dump / f"{s}.json"
        if not path.exists():
            continue
        for q in json.loads(path.read_text())["questions"]:
            if q["group"] != "followup":
                continue
            first = page_ranking(q["first"], _chunks(q["first_chunks"]))
            heard = page_ranking(q["text"], _chunks(q["chunks"]))
            sa = page_ranking(q["standalone"], _chunks(q["standalone_chunks"])) if q.get("standalone_chunks") else heard
            rows.append({"set": s, "split": q["split"], "text": q["text"], "first_text": q["first"], "qrels": q["qrels"],
                         "first": first, "heard": heard, "standalone": sa})
    return rows


def evaluate(rows: list[dict[str, Any]], weights: tuple[float, float, float]) -> dict[str, Any]:
    from callwise.calls.stages.retrieve import prior_weight
    from callwise.knowledge.pages import fuse_prior, prior_from

    out: dict[str, Any] = {}
    for r in rows:
        w = prior_weight(r["text"], weights, previous=r["first_text"])
        prior = prior_from(r["first"])
        ranks = {"heard": r["heard"], "standalone": r["standalone"],
                 "heard+prior": fuse_prior(r["heard"], prior, w), "standalone+prior": fuse_prior(r["standalone"], prior, w)}
        for key in (f"{r['set']}|{r['split']}", f"{r['set']}|all", f"all|{r['split']}", "all|all"):
            t = out.setdefault(key, {"n": 0})
            t["n"] += 1
            for name, ranked in ranks.items():
                m = metrics(ranked, r["qrels"])
                for k, v in m.items():
                    t[f"{name}.{k}"] = t.get(f"{name}.{k}", 0.0) + v
    for t in out.values():
        for k in list(t):
            if k != "n":
                t[k] = round(t[k] / t["n"], 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path, required=True)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--fit", action="store_true", help="choose the prior weights on the dev pairs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from callwise.calls.stages.retrieve import PRIOR_WEIGHTS

    rows = load(args.dump, args.sets.split(","))
    weights = PRIOR_WEIGHTS
    if args.fit:
        grid = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
        dev = [r for r in rows if r["split"] == "dev"]
        best = max((w for w in itertools.product(grid, repeat=3) if w[0] >= w[1] >= w[2]),
                   key=lambda w: (evaluate(dev, w)["all|dev"]["standalone+prior.first"],
                                  evaluate(dev, w)["all|dev"]["standalone+prior.ndcg"], -sum(w)))
        print(f"fitted prior weights (short, middle, long follow-ups): {best}", file=sys.stderr)
        weights = best
    res = {"weights": weights, "results": evaluate(rows, weights)}
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"prior weights {weights}")
    names = ("heard", "standalone", "heard+prior", "standalone+prior")
    print(f"{'':18} {'n':>3} " + " ".join(f"{n:>18}" for n in names) + "   (right page first / nDCG@10)")
    for key, t in sorted(res["results"].items()):
        print(f"{key:18} {t['n']:3} " + " ".join(f"{t[n + '.first']:8.2f} / {t[n + '.ndcg']:.2f}" for n in names))


if __name__ == "__main__":
    main()
