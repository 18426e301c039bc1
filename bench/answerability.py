"""Answerability before composing: are off-topic and unanswerable questions refused, and what does it cost?

    python bench/rank_data.py --cache-dir /tmp/embcache --out /tmp/rankdump     # once: the retrievals
    python bench/answerability.py --dump /tmp/rankdump [--fit] [--json]

For every retrieval set, the questions the manual answers (typed and spoken, judged in
``qrels/test.tsv``) and the questions written as ones it does not (``unanswerable.jsonl``: small
talk, world knowledge, off-topic requests, account actions, and plausible questions the manual does
not cover) go through ``callwise.routing.answerability.decide`` with the product's retrieval
(``bench/rank_data.py`` dumps the chunks the product's retriever returned for each).

Reported per set and split: the share of unanswerable questions refused (by kind), the share of
answerable questions refused, and right page first before (every question answered) and after
(a refused question counts as not answered). ``--fit`` refits the relevance bar's logistic weights
on the dev halves of every set (answerable dev questions against unanswerable dev questions the
intent rules let through) and picks the bar as the highest that refuses at most ``--max-refused``
of the answerable dev questions; paste the printed ``RelevanceBar`` into
``callwise.routing.answerability.DEFAULT_BAR``. The held-out halves are never used to fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

SETS = ("apache", "orbitly", "pydoc", "sqlite", "git")


def _chunks(q: dict[str, Any], k: int = 5) -> list[Any]:
    """What the answerability stage sees: the product's first ``k`` chunks, regrouped page by page
    (``knowledge/pages.py``), as the retrieve stage hands them on."""
    from callwise.knowledge.pages import DEFAULT, page_order, page_ranking

    chunks = [SimpleNamespace(document=c["doc"], **c) for c in q["chunks"]]
    return [chunks[i] for i in page_order(chunks, DEFAULT, page_ranking(q["text"], chunks))][:k]


def _first_right(q: dict[str, Any]) -> bool:
    from callwise.knowledge.pages import page_ranking

    pages = page_ranking(q["text"], [SimpleNamespace(document=c["doc"], **c) for c in q["chunks"]])
    rel = q["qrels"]
    return bool(pages) and rel.get(pages[0], 0) == max(rel.values())


def load(dump: Path, sets: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for s in sets:
        path = dump / f"{s}.json"
        if not path.exists():
            print(f"no dump for {s} in {dump}", file=sys.stderr)
            continue
        d = json.loads(path.read_text())
        for q in d["questions"]:
            if q["group"] in ("typed", "spoken", "unanswerable"):
                rows.append({**q, "set": s})
    return rows


def fit(rows: list[dict[str, Any]], max_refused: float) -> Any:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from callwise.routing.answerability import RelevanceBar, intent_of, relevance_signals

    X, y, answerable = [], [], []
    for q in rows:
        if q["split"] != "dev" or intent_of(q["text"]) is not None:
            continue
        X.append(relevance_signals(q["text"], _chunks(q)))
        y.append(0 if q["group"] == "unanswerable" else 1)
    Xa, ya = np.array(X), np.array(y)
    lr = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced").fit(Xa, ya)
    p = lr.predict_proba(Xa)[:, 1]
    pos = np.sort(p[ya == 1])
    bar = float(pos[int(np.floor(max_refused * len(pos)))]) if len(pos) else 0.5
    answerable = p[ya == 1] >= bar
    caught = p[ya == 0] < bar
    print(f"fit on {len(ya)} dev questions ({int(ya.sum())} answerable): answerable kept {answerable.mean():.3f}, "
          f"unanswerable (past the intent rules) refused {caught.mean():.3f}", file=sys.stderr)
    return RelevanceBar(bias=round(float(lr.intercept_[0]), 4), weights=tuple(round(float(w), 4) for w in lr.coef_[0]),
                        bar=round(bar - 1e-4, 4))


def evaluate(rows: list[dict[str, Any]], bar: Any) -> dict[str, Any]:
    from callwise.routing.answerability import decide

    tallies: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    examples: list[dict[str, Any]] = []
    for q in rows:
        verdict, p = decide(q["text"], _chunks(q), bar)
        refused = verdict != "answer"
        for key in (f"{q['set']}|{q['split']}", f"{q['set']}|all", f"all|{q['split']}", "all|all"):
            t = tallies[key]
            if q["group"] == "unanswerable":
                t["unanswerable"] += 1
                t["unanswerable_refused"] += refused
                t[f"refused_{q.get('kind', '')}"] += refused
                t[f"n_{q.get('kind', '')}"] += 1
            else:
                right = _first_right(q)
                g = q["group"]
                t[f"{g}"] += 1
                t[f"{g}_refused"] += refused
                t[f"{g}_first_before"] += right
                t[f"{g}_first_after"] += right and not refused
                t[f"{g}_right_refused"] += right and refused
        if (q["group"] == "unanswerable") != refused:
            examples.append({"set": q["set"], "split": q["split"], "group": q["group"], "kind": q.get("kind"),
                             "text": q["text"], "verdict": verdict, "p": None if p is None else round(p, 3)})
    out: dict[str, Any] = {}
    for key, t in sorted(tallies.items()):
        r: dict[str, Any] = {}
        if t["unanswerable"]:
            r["unanswerable_refused"] = round(t["unanswerable_refused"] / t["unanswerable"], 3)
            r["unanswerable_n"] = int(t["unanswerable"])
            r["by_kind"] = {k[2:]: f"{int(t['refused_' + k[2:]])}/{int(v)}" for k, v in t.items() if k.startswith("n_")}
        for g in ("typed", "spoken"):
            if t[g]:
                n = t[g]
                r[g] = {"n": int(n), "refused": round(t[f"{g}_refused"] / n, 3),
                        "first_before": round(t[f"{g}_first_before"] / n, 3),
                        "first_after": round(t[f"{g}_first_after"] / n, 3),
                        "right_refused": int(t[f"{g}_right_refused"])}
        out[key] = r
    return {"results": out, "misses": examples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path, required=True, help="the folder bench/rank_data.py wrote")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--fit", action="store_true", help="refit the relevance bar on the dev halves")
    ap.add_argument("--max-refused", type=float, default=0.03, help="with --fit: answerable dev questions refused at most")
    ap.add_argument("--loco", action="store_true",
                    help="with --fit: also fit on the other sets' dev halves and report each set left out")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--misses", action="store_true", help="also list every wrong decision")
    args = ap.parse_args()

    from callwise.routing.answerability import DEFAULT_BAR

    rows = load(args.dump, args.sets.split(","))
    bar = fit(rows, args.max_refused) if args.fit else DEFAULT_BAR
    res = evaluate(rows, bar)
    res["bar"] = {"bias": bar.bias, "weights": list(bar.weights), "bar": bar.bar}
    if args.fit and args.loco:
        loco: dict[str, Any] = {}
        for s in args.sets.split(","):
            others = [q for q in rows if q["set"] != s]
            held = [q for q in rows if q["set"] == s]
            if others and held:
                loco[s] = evaluate(held, fit(others, args.max_refused))["results"].get(f"{s}|all", {})
        res["loco"] = loco
    if not args.misses:
        res.pop("misses")
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"bar: {bar}")
    for key, r in res["results"].items():
        line = f"{key:16}"
        if "unanswerable_refused" in r:
            line += f" unanswerable refused {r['unanswerable_refused']:.2f} (n {r['unanswerable_n']}) {r['by_kind']}"
        for g in ("typed", "spoken"):
            if g in r:
                x = r[g]
                line += (f" | {g} refused {x['refused']:.2f}, first {x['first_before']:.2f}->{x['first_after']:.2f}"
                         f" (n {x['n']})")
        print(line)
    for s, r in res.get("loco", {}).items():
        line = f"LOCO {s:11} unanswerable refused {r.get('unanswerable_refused', 0):.2f} {r.get('by_kind', {})}"
        for g in ("typed", "spoken"):
            if g in r:
                line += f" | {g} refused {r[g]['refused']:.2f}, right answers refused {r[g]['right_refused']}/{r[g]['n']}"
        print(line)
    for m in res.get("misses", []):
        print(m)


if __name__ == "__main__":
    main()
