"""Calibration of answer confidence: does "80% sure" mean right 80% of the time?

    python bench/confidence.py [--json]                     # reliability, ECE, disclaimer rates
    python bench/confidence.py --fit                        # refit routing/data/calibration.json
    python bench/confidence.py --collect --org ORG [--ingest]   # re-produce answers and signals

The labelled set is ``bench/data/confidence/items.jsonl`` (see the README there): questions asked
the way callers ask them over the Python 3.11 tutorial, SQLite and git manual pages from Debian's
doc packages and the Orbitly sample KB (including questions the corpus cannot answer and off-topic
ones), each with the passages the real retriever returned, the answer the real extractive answerer
produced, its signals, and a right/wrong judgement. ``split`` (a hash of the id) halves it: the
model and its operating points are fitted on ``fit``; every rate below is on ``heldout``.

Printed: the reliability table (predicted probability bins against the observed share of right
answers) and expected calibration error, for the calibrated probability and for the raw cosine the
router used before; on the held-out half, the share of right answers that get the disclaimer and of
wrong answers that do (caught), at the fitted threshold and at the old 0.8 bar on the raw cosine.
``--collect`` needs the corpus ingested into ``--org`` (``--ingest`` does it: the Debian pages listed
in ``bench/data/confidence/corpus.txt`` plus ``examples/kb``); it keeps existing labels whose
answer did not change, and marks changed answers unlabelled.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from callwise.routing.calibration import EXTRACTIVE_FEATURES, PARAMS_PATH, LogisticModel, extractive_features  # noqa: E402
from callwise.routing.types import SourceDoc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "confidence"
QUESTIONS = DATA / "questions.jsonl"
ITEMS = DATA / "items.jsonl"
CORPUS = DATA / "corpus.txt"
OLD_BAR = 0.8
#: the operating point: the disclaimer threshold is the highest one that disclaims at most this
#: share of the fit half's right answers (the target on held-out is 10%)
MAX_RIGHT_DISCLAIMED = 0.08
#: the escalation floor: the highest threshold under which at most this share of right answers falls
MAX_RIGHT_ESCALATED = 0.02


def split_of(item_id: str) -> str:
    return "heldout" if int(hashlib.sha1(item_id.encode()).hexdigest(), 16) % 2 else "fit"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def features(item: dict[str, Any]) -> dict[str, float]:
    sources = [SourceDoc(i + 1, s["document"], s.get("title", ""), s["text"], score=s.get("score"))
               for i, s in enumerate(item["sources"])]
    return extractive_features(item["question"], item["answer"], sources, item["signals"],
                               abstained=bool(item["abstained"]))


# ------------------------------------------------------------------ metrics
def reliability(probs: list[float], labels: list[int], bins: int = 10) -> tuple[list[dict[str, Any]], float]:
    rows, ece, n = [], 0.0, len(probs)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, p in enumerate(probs) if (lo <= p < hi) or (b == bins - 1 and p == 1.0)]
        if not idx:
            rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": 0, "mean_p": None, "right": None})
            continue
        mean_p = sum(probs[i] for i in idx) / len(idx)
        acc = sum(labels[i] for i in idx) / len(idx)
        ece += len(idx) / n * abs(mean_p - acc)
        rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": len(idx), "mean_p": round(mean_p, 3), "right": round(acc, 3)})
    return rows, round(ece, 4)


def rates(probs: list[float], labels: list[int], threshold: float) -> dict[str, Any]:
    right = [p for p, y in zip(probs, labels, strict=False) if y == 1]
    wrong = [p for p, y in zip(probs, labels, strict=False) if y == 0]
    return {
        "threshold": round(threshold, 4), "right": len(right), "wrong": len(wrong),
        "right_disclaimed": round(sum(p < threshold for p in right) / len(right), 3) if right else None,
        "wrong_caught": round(sum(p < threshold for p in wrong) / len(wrong), 3) if wrong else None,
    }


# ------------------------------------------------------------------ fitting
def fit(items: list[dict[str, Any]], *, halves: tuple[str, ...] = ("fit",), c: float = 1.0) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = [it for it in items if it["split"] in halves and it.get("right") is not None]
    if len(train) < 30:
        raise SystemExit(f"only {len(train)} labelled items in the fit half")
    X = np.array([[features(it)[f] for f in EXTRACTIVE_FEATURES] for it in train])
    y = np.array([1 if it["right"] else 0 for it in train])
    scaler = StandardScaler().fit(X)
    model = LogisticRegression(C=c, max_iter=1000).fit(scaler.transform(X), y)
    lm = LogisticModel(EXTRACTIVE_FEATURES, tuple(map(float, scaler.mean_)), tuple(map(float, scaler.scale_)),
                       tuple(map(float, model.coef_[0])), float(model.intercept_[0]))
    probs = [lm.probability(features(it)) for it in train]
    right = sorted(p for p, t in zip(probs, y, strict=False) if t == 1)
    # the highest threshold disclaiming at most MAX_RIGHT_DISCLAIMED of the right answers (a threshold
    # sits halfway between two right answers' probabilities)
    k = int(MAX_RIGHT_DISCLAIMED * len(right))
    disclaim = (right[k] + right[k - 1]) / 2 if k > 0 else right[0]
    j = int(MAX_RIGHT_ESCALATED * len(right))
    escalate = (right[j] + right[j - 1]) / 2 if j > 0 else right[0] * 0.999
    return {
        "version": 1,
        "methods": {
            "extractive": {
                "kind": "logistic", "features": list(lm.features),
                "mean": [round(v, 6) for v in lm.mean], "scale": [round(v, 6) for v in lm.scale],
                "coef": [round(v, 6) for v in lm.coef], "intercept": round(lm.intercept, 6),
                "disclaim_below": round(disclaim, 4), "escalate_below": round(min(escalate, disclaim), 4),
                "fitted_on": {"items": len(train), "right": int(y.sum()), "wrong": int(len(y) - y.sum()),
                              "data": "bench/data/confidence/items.jsonl (split=fit)",
                              "how": "sklearn StandardScaler + LogisticRegression(C=1.0), features and C chosen by 5-fold CV on the fit half "
                                     "(C 0.3/1/3; with or without type_missing, heading_sim, top_score, margin: within one or "
                                     "two wrong answers of each other, all features kept); thresholds: at most "
                                     f"{MAX_RIGHT_DISCLAIMED:.0%} of right answers disclaimed, "
                                     f"{MAX_RIGHT_ESCALATED:.0%} escalated, on the fit half"},
            },
        },
    }


# ------------------------------------------------------------------ a corpus it was not fitted on
def loco(items: list[dict[str, Any]], c: float = 1.0) -> dict[str, Any]:
    """Each manual left out in turn: fitted (model and thresholds) on every labelled answer of the
    other sources, both halves, and reported on every labelled answer of the one left out, so the
    rates say what a manual nobody fitted on gets. Questions no corpus answers (``none``) stay in
    every fit and are not a fold."""
    from callwise.routing.calibration import LogisticModel

    out: dict[str, Any] = {}
    labelled = [it for it in items if it.get("right") is not None]
    for src in sorted({it["source"] for it in labelled} - {"none"}):
        train = [it for it in labelled if it["source"] != src]
        test = [it for it in labelled if it["source"] == src]
        spec = fit(train, halves=("fit", "heldout"), c=c)["methods"]["extractive"]
        model = LogisticModel(tuple(spec["features"]), tuple(spec["mean"]), tuple(spec["scale"]), tuple(spec["coef"]),
                              spec["intercept"])
        probs = [model.probability(features(it)) for it in test]
        out[src] = {"n": len(test), **rates(probs, [1 if it["right"] else 0 for it in test], spec["disclaim_below"])}
    right = sum(v["right"] for v in out.values())
    wrong = sum(v["wrong"] for v in out.values())
    out["all"] = {"n": right + wrong, "right": right, "wrong": wrong,
                  "right_disclaimed": round(sum(v["right_disclaimed"] * v["right"] for v in out.values()
                                                if v["right"]) / right, 3) if right else None,
                  "wrong_caught": round(sum(v["wrong_caught"] * v["wrong"] for v in out.values()
                                            if v["wrong"]) / wrong, 3) if wrong else None}
    return out


# ------------------------------------------------------------------ report
def report(items: list[dict[str, Any]]) -> dict[str, Any]:
    from callwise.routing.calibration import load_calibration

    cal = load_calibration(str(PARAMS_PATH))
    spec = cal.methods.get("extractive")
    if spec is None or not isinstance(spec.model, LogisticModel):
        raise SystemExit(f"no fitted extractive calibration in {PARAMS_PATH}: run with --fit")
    out: dict[str, Any] = {"items": len(items), "labelled": sum(it.get("right") is not None for it in items),
                           "params": str(PARAMS_PATH.relative_to(ROOT)),
                           "disclaim_below": spec.disclaim_below, "escalate_below": spec.escalate_below}
    for half in ("fit", "heldout"):
        sub = [it for it in items if it["split"] == half and it.get("right") is not None]
        labels = [1 if it["right"] else 0 for it in sub]
        probs = [spec.model.probability(features(it)) for it in sub]
        raw = [float(it["raw_confidence"]) for it in sub]
        table, ece = reliability(probs, labels)
        raw_table, raw_ece = reliability(raw, labels)
        floor = spec.escalate_below if spec.escalate_below is not None else 0.0
        escalated_right = sum(p < floor for p, y in zip(probs, labels, strict=False) if y == 1)
        escalated_wrong = sum(p < floor for p, y in zip(probs, labels, strict=False) if y == 0)
        out[half] = {
            "n": len(sub), "right": sum(labels), "accuracy": round(sum(labels) / len(sub), 3) if sub else None,
            "calibrated": {"ece": ece, "reliability": table, **rates(probs, labels, spec.disclaim_below),
                           "escalated_right": escalated_right, "escalated_wrong": escalated_wrong},
            "raw_cosine_at_0.8": {"ece": raw_ece, "reliability": raw_table, **rates(raw, labels, OLD_BAR)},
            "by_source": {src: {"n": len(g), "right": sum(1 for it in g if it["right"]),
                                **rates([spec.model.probability(features(it)) for it in g],
                                        [1 if it["right"] else 0 for it in g], spec.disclaim_below)}
                          for src in sorted({it["source"] for it in sub})
                          for g in [[it for it in sub if it["source"] == src]]},
        }
    return out


def print_report(r: dict[str, Any]) -> None:
    print(f"{r['labelled']} labelled items of {r['items']}; parameters {r['params']}; "
          f"disclaimer under p={r['disclaim_below']}, escalation under p={r['escalate_below']}")
    for half in ("heldout", "fit"):
        h = r[half]
        c, o = h["calibrated"], h["raw_cosine_at_0.8"]
        print(f"\n== {half}: {h['n']} answers, {h['right']} right ({h['accuracy']:.0%})")
        print(f"calibrated probability: ECE {c['ece']:.3f}; right answers disclaimed {c['right_disclaimed']:.0%}, "
              f"wrong answers caught {c['wrong_caught']:.0%} (threshold {c['threshold']}); "
              f"escalated: {c['escalated_right']} right, {c['escalated_wrong']} wrong")
        print(f"before (raw cosine, 0.8 bar): ECE {o['ece']:.3f}; right answers disclaimed "
              f"{o['right_disclaimed']:.0%}, wrong answers caught {o['wrong_caught']:.0%}")
        print(f"{'bin':9} {'n':>4} {'mean p':>7} {'right':>6}   | raw cosine {'n':>4} {'mean':>6} {'right':>6}")
        for a, b in zip(c["reliability"], o["reliability"], strict=False):
            fa = f"{a['n']:>4} {'-' if a['mean_p'] is None else format(a['mean_p'], '.2f'):>7} " \
                 f"{'-' if a['right'] is None else format(a['right'], '.2f'):>6}"
            fb = f"{b['n']:>4} {'-' if b['mean_p'] is None else format(b['mean_p'], '.2f'):>6} " \
                 f"{'-' if b['right'] is None else format(b['right'], '.2f'):>6}"
            print(f"{a['bin']:9} {fa}   |            {fb}")
        print("by source: " + "; ".join(
            f"{s}: {v['right']}/{v['n']} right, disclaimed {v['right_disclaimed'] if v['right_disclaimed'] is None else format(v['right_disclaimed'], '.0%')} "
            f"of right, caught {v['wrong_caught'] if v['wrong_caught'] is None else format(v['wrong_caught'], '.0%')} of wrong"
            for s, v in h["by_source"].items()))


# ------------------------------------------------------------------ collecting answers
async def collect(org: str, ingest: bool) -> None:
    from callwise.routing.providers.extractive import NOT_FOUND
    from callwise.routing.types import Grounding, sources_from
    from callwise.wiring.knowledge import build_knowledge
    from callwise.wiring.routing import build_router
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import load_settings

    settings = load_settings()
    questions = read_jsonl(QUESTIONS)
    old = {it["id"]: it for it in read_jsonl(ITEMS)} if ITEMS.exists() else {}
    async with open_runtime(settings) as rt:
        org_id = await rt.org_id(org)
        kn = build_knowledge(settings, rt.pool)
        if ingest:
            with tempfile.TemporaryDirectory() as tmp:
                for line in CORPUS.read_text().splitlines():
                    if line.strip() and not line.startswith("#"):
                        src = Path(line.strip())
                        dest = Path(tmp) / src.parent.name / src.name
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy(src, dest)
                shutil.copytree(ROOT / "examples" / "kb", Path(tmp) / "orbitly")
                print(await kn.ingestor.ingest(Path(tmp), org_id), file=sys.stderr)
        router = build_router(settings, rt.pool, kn.embedder)
        provider = next(t.provider for t in router.tiers if t.provider.name == "extractive")
        out = []
        for q in questions:
            result = await kn.retriever.retrieve(q["question"], org_id, top_k=settings.retrieval_top_k)
            sources = sources_from(result.chunks)
            gen = await provider.generate([], grounding=Grounding(q["question"], tuple(sources)))
            item = {**q, "split": split_of(q["id"]), "answer": gen.text, "abstained": gen.text == NOT_FOUND,
                    "raw_confidence": gen.confidence, "signals": gen.signals,
                    "sources": [{"document": s.document, "title": s.title, "score": s.score, "text": s.text}
                                for s in sources[: getattr(provider, "max_sources", 3)]]}
            prev = old.get(q["id"]) or {}
            keep = prev.get("answer") == gen.text
            item["right"] = prev.get("right") if keep else None
            item["label_note"] = prev.get("label_note", "") if keep else ""
            out.append(item)
            print(f"{q['id']} {gen.confidence:.2f} {gen.text[:100]!r}", file=sys.stderr)
        await router.aclose()
    ITEMS.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in out), encoding="utf-8")
    print(f"{len(out)} items -> {ITEMS.relative_to(ROOT)}; "
          f"{sum(it['right'] is None for it in out)} need a label", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--fit", action="store_true", help=f"fit on the fit half and write {PARAMS_PATH.name}")
    ap.add_argument("--loco", action="store_true",
                    help="also fit on every manual but one and report the one left out, for each manual")
    ap.add_argument("--c", type=float, default=1.0, help="with --loco: the logistic regression's C")
    ap.add_argument("--collect", action="store_true", help="re-produce answers and signals for every question")
    ap.add_argument("--ingest", action="store_true", help="with --collect: ingest the corpus into --org first")
    ap.add_argument("--org", default=None, help="organization slug for --collect")
    args = ap.parse_args()
    if args.collect:
        asyncio.run(collect(args.org, args.ingest))
        return
    items = read_jsonl(ITEMS)
    if args.fit:
        params = fit(items)
        PARAMS_PATH.parent.mkdir(parents=True, exist_ok=True)
        PARAMS_PATH.write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {PARAMS_PATH.relative_to(ROOT)}: {params['methods']['extractive']['fitted_on']}")
        from callwise.routing.calibration import load_calibration
        load_calibration.cache_clear()
    r = report(items)
    if args.loco:
        r["loco"] = loco(items, args.c)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_report(r)
        for src, v in r.get("loco", {}).items():
            print(f"left out {src:8} n={v['n']:3}: right answers disclaimed {v['right_disclaimed']}, "
                  f"wrong answers caught {v['wrong_caught']} ({v['right']} right, {v['wrong']} wrong)")


if __name__ == "__main__":
    main()
