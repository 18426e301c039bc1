"""One set's dump (``bench/rank_data.py``) ranked by today's blend and by the shipped page ranker, and its
follow-ups with the carry-over and the blend against the learned ranker with the previous turn's pages as a prior.

    python bench/unseen_manual.py /tmp/rankdump/sqlite.json [...]

Right page first and nDCG@10 per group (typed, dev, heldout, spoken, followup), before -> after.
"""

from __future__ import annotations

import json
import math
import sys
from types import SimpleNamespace
from typing import Any


def metrics(ranked: list[str], rel: dict[str, int]) -> tuple[float, float]:
    top = ranked[:10]
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(top))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:10]))
    return dcg / idcg, 1.0 if top and rel.get(top[0], 0) == max(rel.values()) else 0.0


def chunks(raw: list[dict[str, Any]]) -> list[Any]:
    return [SimpleNamespace(document=c["doc"], **c) for c in raw]


def main() -> None:
    from callwise.calls.stages.retrieve import prior_weight
    from callwise.knowledge.pages import DEFAULT, fuse_prior, page_ranking, prior_from, rank_pages

    for path in sys.argv[1:]:
        d = json.load(open(path))
        out: dict[str, list[tuple[tuple[float, float], tuple[float, float]]]] = {}
        for q in d["questions"]:
            if q["group"] in ("typed", "spoken") and q["qrels"]:
                ch = chunks(q["chunks"])
                pair = (metrics([h.document for h in rank_pages(ch, DEFAULT)], q["qrels"]),
                        metrics(page_ranking(q["text"], ch), q["qrels"]))
                for g in [q["group"]] + ([q["split"]] if q["group"] == "typed" else []):
                    out.setdefault(g, []).append(pair)
            if q["group"] == "followup":
                sa = chunks(q["standalone_chunks"] or q["chunks"])
                first = page_ranking(q["first"], chunks(q["first_chunks"]))
                after = fuse_prior(page_ranking(q["standalone"], sa), prior_from(first),
                                   prior_weight(q["text"], previous=q["first"]))
                out.setdefault("followup", []).append(
                    (metrics([h.document for h in rank_pages(sa, DEFAULT)], q["qrels"]), metrics(after, q["qrels"])))
        for g, v in out.items():
            n = len(v)
            f = lambda i, j: sum(x[i][j] for x in v) / n  # noqa: E731, B023
            print(f"{d['set']:8} {g:8} n={n:3} first {f(0, 1):.3f}->{f(1, 1):.3f} nDCG {f(0, 0):.3f}->{f(1, 0):.3f}")


if __name__ == "__main__":
    main()
