"""Escalation on speech-style conversations: recall, false alarms and right reason, per reason and per set.

    OMP_NUM_THREADS=1 python bench/escalation.py [--split dev|heldout|fresh|fresh-1|all] [--file PATH ...]
                                                 [--no-misses] [--rules-only] [--json]

Sets: ``bench/data/escalation/turns.jsonl`` (splits ``dev``, ``heldout``, ``fresh``: the second fresh set,
``fresh-1``: the first, now part of dev) and any file given with ``--file`` in the same format (``turns``:
the customer's turns; ``agent``: the agent's answers between them; ``reason``: what should happen by the
last turn, or null). The learned detector (``callwise.handoff.detector``) was trained on ``dev`` and the
generated corpus: ``dev`` figures are training figures. ``heldout`` and ``fresh`` were never trained or
tuned on; the blind sets (``bench/data/escalation/blind/``) were written by people who never saw the
detector, and were run once, after it froze.

A conversation is played turn by turn through ``EscalationRules`` (a fresh ``CallState``; after each
customer turn the agent's answer is observed, unsure when it says so). The first escalation decides:
- **recall**: escalations that escalated at all; **right reason**: those that escalated with the labelled
  reason (both over the escalations); **false alarms**: conversations that should not escalate but did;
- per reason: recall and right reason with Wilson 95% intervals, and false alarms it caused;
- **asked**: conversations where the call would ask "would you like me to pass this to a colleague?"
  (an unsure answer to a first or second question, or an unsure detector on a troubled call), on the
  negatives (the cost) and on the missed escalations (a yes escalates them);
- ``--file`` on an amounts set (rows with ``amount_usd``): the share whose amount is read right.
``--no-misses`` prints figures only, never a conversation. Timed: the detector's added cost per turn
(median over the set's turns) and the rules on a 100 kB turn.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from callwise.handoff.amounts import amounts  # noqa: E402
from callwise.handoff.detector import Conversation, answer_sounds_unsure, features  # noqa: E402
from callwise.handoff.escalation import MAX_RULE_CHARS, CallState, EscalationRules  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "escalation" / "turns.jsonl"
REASONS = ["security_privacy", "legal_refund", "explicit_request", "outage", "billing_dispute", "frustration",
           "repeated_failure"]


def load(split: str) -> list[dict]:
    items = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    if split == "fresh-1":
        return [it for it in items if it.get("origin") == "fresh-1"]
    return [it for it in items if split == "all" or it["split"] == split]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return round(max(0.0, c - h), 3), round(min(1.0, c + h), 3)


def predict(rules: EscalationRules, it: dict, timings: list[float]) -> dict[str, Any]:
    state = CallState()
    agent = it.get("agent") or []
    asked = False
    for i, text in enumerate(it["turns"]):
        t = time.perf_counter()
        esc = rules.check_user_turn(text, state)
        timings.append(time.perf_counter() - t)
        if esc is not None:
            return {"reason": esc.reason, "at": i, "rule": esc.rule, "matched": esc.matched[:3],
                    "probability": esc.probability, "asked": asked}
        if i < len(agent):
            unsure = answer_sounds_unsure(agent[i])
            rules.observe_answer(state, unsure=unsure)
            if rules.wants_offer(state, answer_unsure=unsure):
                state.offered = asked = True
    det = state.last_detection
    return {"reason": None, "at": None, "asked": asked,
            "best": None if det is None else max(det.probabilities.items(), key=lambda kv: kv[1])}


def score(items: list[dict], rules: EscalationRules) -> dict[str, Any]:
    timings: list[float] = []
    per: dict[str, Counter[str]] = {r: Counter() for r in REASONS}
    pos = neg = detected = right = fa = asked_neg = asked_missed = 0
    misses = []
    for it in items:
        gold, p = it.get("reason"), predict(rules, it, timings)
        pred = p["reason"]
        if gold is None:
            neg += 1
            fa += pred is not None
            asked_neg += pred is None and p["asked"]
            if pred is not None:
                per[pred]["fp"] += 1
        else:
            pos += 1
            per[gold]["n"] += 1
            detected += pred is not None
            right += pred == gold
            per[gold]["detected"] += pred is not None
            per[gold]["right"] += pred == gold
            asked_missed += pred is None and p["asked"]
            if pred is not None and pred != gold:
                per[pred]["wrong_for_other"] += 1
        if pred != gold:
            misses.append({"id": it["id"], "gold": gold, **p, "turns": it["turns"], "agent": it.get("agent") or []})
    table = {}
    for r in REASONS:
        c = per[r]
        table[r] = {"n": c["n"], "recall": round(c["detected"] / c["n"], 3) if c["n"] else None,
                    "right_reason": round(c["right"] / c["n"], 3) if c["n"] else None,
                    "right_reason_ci95": wilson(c["right"], c["n"]), "false_alarms_caused": c["fp"],
                    "fired_for_other_reason": c["wrong_for_other"]}
    out: dict[str, Any] = {
        "conversations": len(items), "escalations": pos, "negatives": neg,
        "recall": round(detected / pos, 3) if pos else None, "recall_ci95": wilson(detected, pos),
        "right_reason": round(right / pos, 3) if pos else None, "right_reason_ci95": wilson(right, pos),
        "false_alarms": round(fa / neg, 3) if neg else None, "false_alarms_ci95": wilson(fa, neg),
        "asked_on_negatives": round(asked_neg / neg, 3) if neg else None,
        "asked_on_missed_escalations": asked_missed,
        "per_reason": table,
        "turn_ms_median": round(statistics.median(timings) * 1000, 2) if timings else None,
        "misses": misses,
    }
    if items and "amount_usd" in items[0]:
        ok = sum(any(abs(a - it["amount_usd"]) < 0.01 for t in it["turns"] for a in amounts(t)) for it in items)
        out["amounts_read_right"] = f"{ok}/{len(items)}"
    return out


def timing() -> dict[str, float]:
    rules = EscalationRules()
    big = ("I was wondering how billing works for our team of forty people and " * 1500)[:100_000]
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        rules.check_user_turn(big, CallState())
        best = min(best, time.perf_counter() - t)
    return {"max_rule_chars": MAX_RULE_CHARS, "rules_100kB_turn_ms": round(best * 1000, 2)}


def detector_cost(rules: EscalationRules, n: int = 60) -> dict[str, float] | None:
    """What the detector adds to a turn: rules with it minus rules alone, median over ``n`` turns."""
    if rules.detector is None:
        return None
    texts = [t for it in load("heldout") for t in it["turns"]][:n]
    alone = EscalationRules(rules.policy)
    with_d, without = [], []
    for t in texts:
        s = time.perf_counter()
        rules.check_user_turn(t, CallState())
        with_d.append(time.perf_counter() - s)
        s = time.perf_counter()
        alone.check_user_turn(t, CallState())
        without.append(time.perf_counter() - s)
    det = rules.detector
    embed, rest = [], []
    for t in texts:  # the two parts: one MiniLM encode, then features, classifier and nearest examples
        s = time.perf_counter()
        vec = det.embed(t)
        embed.append(time.perf_counter() - s)
        s = time.perf_counter()
        conv = Conversation()
        det.probabilities(features(vec, conv))
        det.nearest(vec)
        rest.append(time.perf_counter() - s)
    return {"turns": len(texts), "with_detector_ms": round(statistics.median(with_d) * 1000, 2),
            "rules_only_ms": round(statistics.median(without) * 1000, 2),
            "added_ms": round((statistics.median(with_d) - statistics.median(without)) * 1000, 2),
            "embed_ms": round(statistics.median(embed) * 1000, 2),
            "classifier_ms": round(statistics.median(rest) * 1000, 3),
            "torch_threads": _threads(), "load_average": os.getloadavg()[0]}


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def print_set(name: str, r: dict[str, Any], *, misses: bool) -> None:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    def ci(c: tuple[float, float] | None) -> str:
        return "" if c is None else f" [{c[0]:.0%}-{c[1]:.0%}]"

    print(f"== {name}: {r['conversations']} conversations ({r['escalations']} escalations, {r['negatives']} not)")
    print(f"recall {pct(r['recall'])}{ci(r['recall_ci95'])}   right reason {pct(r['right_reason'])}"
          f"{ci(r['right_reason_ci95'])}   false alarms {pct(r['false_alarms'])}{ci(r['false_alarms_ci95'])}")
    print(f"asks 'pass this to a colleague?' on {pct(r['asked_on_negatives'])} of negatives and on "
          f"{r['asked_on_missed_escalations']} missed escalations; median {r['turn_ms_median']} ms per turn")
    if "amounts_read_right" in r:
        print(f"amounts read right: {r['amounts_read_right']}")
    print(f"{'reason':18} {'n':>3} {'recall':>7} {'right':>7} {'95% CI':>12} {'FA caused':>9} {'as other':>8}")
    for reason, row in r["per_reason"].items():
        c = row["right_reason_ci95"]
        print(f"{reason:18} {row['n']:>3} {pct(row['recall']):>7} {pct(row['right_reason']):>7} "
              f"{'' if c is None else f'{c[0]:.0%}-{c[1]:.0%}':>12} {row['false_alarms_caused']:>9} "
              f"{row['fired_for_other_reason']:>8}")
    if misses:
        for m in r["misses"]:
            extra = f" {m['rule']}" if m.get("rule") else (f" best={m['best'][0]}:{m['best'][1]:.2f}" if m.get("best") else "")
            print(f"  {m['id']} gold={m['gold']} pred={m['reason']}{extra} asked={m['asked']} :: "
                  + " | ".join(m["turns"]))
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["dev", "heldout", "fresh", "fresh-1", "all"], default=None)
    ap.add_argument("--file", type=Path, action="append", default=[], help="score this JSONL set (repeatable)")
    ap.add_argument("--no-misses", action="store_true", help="aggregate figures only: never print a conversation")
    ap.add_argument("--rules-only", action="store_true", help="without the learned detector")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rules = EscalationRules()
    if not args.rules_only:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from callwise.knowledge.embeddings import Embedder

        rules = EscalationRules.with_embedder(None, Embedder().encode)
        if rules.detector is None:
            sys.exit("no shipped detector model: run bench/escalation_train.py")
    sets: dict[str, list[dict]] = {}
    for f in args.file:
        sets[f.name] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    if not args.file:
        for s in [args.split] if args.split else ["heldout", "fresh", "dev"]:
            sets[s if s != "fresh" else "fresh (fresh-2)"] = load(s)
    report: dict[str, Any] = {name: score(items, rules) for name, items in sets.items()}
    report["detector"] = None if rules.detector is None else {
        "cost": detector_cost(rules), "thresholds": rules.detector.high, "low": rules.detector.low,
        "training": rules.detector.info.get("summary", {}).get("oof_conversations")}
    report["timing"] = timing()
    if args.no_misses:
        for name in sets:
            del report[name]["misses"]
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for name in sets:
        print_set(name, report[name], misses=not args.no_misses)
    if report["detector"]:
        c = report["detector"]["cost"]
        print(f"detector adds {c['added_ms']} ms per turn (median of {c['turns']}: {c['with_detector_ms']} vs "
              f"{c['rules_only_ms']} ms; the MiniLM encode {c['embed_ms']} ms, the classifier and nearest examples "
              f"{c['classifier_ms']} ms; torch threads {c['torch_threads']}, load average {c['load_average']:.1f})")
    t = report["timing"]
    print(f"rules on a 100 kB turn: {t['rules_100kB_turn_ms']} ms (rules read at most {t['max_rule_chars']} characters)")


if __name__ == "__main__":
    main()
