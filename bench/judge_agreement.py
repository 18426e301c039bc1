"""Agreement of the nightly run's LLM judge with hand labels (issue 14).

    python bench/judge_agreement.py [--tiers bench/data/tiers/llama-server.yaml] [--judge-tier tier2]
                                    [--labels bench/data/judge/labels.jsonl] [--limit N] [--json]

Each line of the labels file is a question, a passage of a public manual, an answer and a hand label:
``right`` (the passage supports it), ``wrong`` (the passage contradicts it) or ``unsupported`` (the
passage does not say it, true or not), with a one-line reason. The judge is built exactly as the
nightly run builds it (``callwise.wiring.evaluation.judge_config`` from the tiers file and the judge tier)
and scores every example with the nightly's ``RagasRunner`` (faithfulness and answer relevancy: the
metrics that judge an answer; the context metrics need a reference answer and judge retrieval, not
the answer). An example is judged ``right`` when faithfulness >= ``--threshold``; agreement and
Cohen's kappa (scikit-learn) compare that with the hand label (right vs wrong-or-unsupported).
Examples are judged one at a time, so the seconds per example are what one nightly example costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def load_labels(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def agreement(rows: list[dict[str, Any]], metric: str, threshold: float) -> dict[str, Any]:
    """Binary right vs not-right from ``metric`` against the hand labels; rows the judge failed on
    count as disagreement in ``agreement_all`` and are left out of kappa."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    scored = [r for r in rows if r["scores"].get(metric) is not None]
    human = [r["label"] == "right" for r in scored]
    judge = [r["scores"][metric] >= threshold for r in scored]
    out: dict[str, Any] = {"metric": metric, "threshold": threshold, "scored": len(scored),
                           "failed": len(rows) - len(scored)}
    if not scored:
        return out
    agree = sum(h == j for h, j in zip(human, judge, strict=True))
    out["agreement"] = round(agree / len(scored), 3)
    out["agreement_all"] = round(agree / len(rows), 3)
    out["cohen_kappa"] = round(float(cohen_kappa_score(human, judge)), 3) if len(set(human + judge)) > 1 else None
    tn, fp, fn, tp = confusion_matrix(human, judge, labels=[False, True]).ravel()
    out["confusion"] = {"right_judged_right": int(tp), "right_judged_not": int(fn),
                        "not_right_judged_right": int(fp), "not_right_judged_not": int(tn)}
    out["mean_by_label"] = {
        lab: round(statistics.mean(r["scores"][metric] for r in scored if r["label"] == lab), 3)
        for lab in ("right", "wrong", "unsupported") if any(r["label"] == lab for r in scored)}
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.tiers:
        os.environ["CALLWISE_TIERS_FILE"] = str(Path(args.tiers).resolve())
    os.environ["CALLWISE_JUDGE_TIER"] = args.judge_tier
    from callwise.evaluation.ragas_runner import RagasRunner, RagasSample
    from callwise.knowledge.embeddings import Embedder
    from callwise.wiring.evaluation import judge_config
    from callwise.wiring.settings import Settings

    judge, why = judge_config(Settings())
    if judge is None:
        raise SystemExit(f"no judge: {why}")
    if args.from_rows:  # summarise earlier runs (--verbose outputs, e.g. two halves judged side by side)
        return summary(judge.describe(), [r for f in args.from_rows for r in json.loads(Path(f).read_text())["rows"]],
                       args)
    labels = load_labels(Path(args.labels))[args.offset:][: args.limit or None]
    runner = RagasRunner(Embedder().encode, judge, concurrency=1, metric_timeout_s=args.metric_timeout)
    rows = []
    for i, ex in enumerate(labels, 1):
        sample = RagasSample(ex["id"], ex["question"], ex["answer"], [ex["context"]])
        t = time.perf_counter()
        rep = await runner.evaluate([sample])
        secs = time.perf_counter() - t
        scores = {m: rep.scores.get(ex["id"], {}).get(m) for m in ("faithfulness", "answer_relevancy")}
        rows.append({"id": ex["id"], "label": ex["label"], "scores": scores, "seconds": round(secs, 1),
                     "errors": rep.errors.get(ex["id"], {})})
        print(f"[{i}/{len(labels)}] {ex['id']}: {scores} {secs:.0f}s", file=sys.stderr)
    return summary(judge.describe(), rows, args)


def summary(judge: dict[str, Any], rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    secs = [r["seconds"] for r in rows]
    return {
        "judge": judge, "examples": len(rows),
        "labels": {lab: sum(r["label"] == lab for r in rows) for lab in ("right", "wrong", "unsupported")},
        "faithfulness": agreement(rows, "faithfulness", args.threshold),
        "answer_relevancy": agreement(rows, "answer_relevancy", args.threshold),
        "seconds_per_example": {"mean": round(statistics.mean(secs), 1) if secs else None,
                                "p50": round(statistics.median(secs), 1) if secs else None,
                                "max": max(secs) if secs else None},
        "load_average_at_end": os.getloadavg()[0],
        "rows": rows if args.verbose else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiers", default=str(ROOT / "bench/data/tiers/llama-server.yaml"),
                    help="tiers file with the judge tier (default: the local llama.cpp server as tier2)")
    ap.add_argument("--judge-tier", default="tier2")
    ap.add_argument("--labels", default=str(ROOT / "bench/data/judge/labels.jsonl"))
    ap.add_argument("--offset", type=int, default=0, help="skip the first N labelled examples")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--from-rows", nargs="+", default=None, metavar="JSON",
                    help="no judging: summarise the rows of earlier --verbose --json outputs")
    ap.add_argument("--threshold", type=float, default=0.5, help="a score at or above it counts as 'right'")
    ap.add_argument("--metric-timeout", type=float, default=600.0, help="seconds per metric per example")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="include per-example rows")
    args = ap.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for k, v in result.items():
        if k != "rows":
            print(f"{k:22s} {v}")


if __name__ == "__main__":
    main()
