"""Train the learned escalation detector (``callwise.handoff.detector``) and write its shipped files.

    OMP_NUM_THREADS=1 python bench/escalation_train.py [--c 2.0] [--folds 5] [--json]

Data: the generated corpus (``bench/data/escalation/corpus.jsonl``, from ``make_corpus.py``) and the
dev split of ``bench/data/escalation/turns.jsonl``. Never the heldout or fresh splits, never the blind
folder. Every customer turn is one example, featurised exactly as at run time
(``callwise.handoff.detector.features`` over the call so far); the last turn of a conversation carries its
label, earlier turns "none".

Steps: grouped K-fold (a seed's variants stay on one side) gives out-of-fold probabilities; a
temperature is fitted on them (calibration); per reason, ``high`` is the largest threshold whose
out-of-fold recall meets the reason's target and ``low`` the one for 99% recall; the final model is
refit on everything and written with the example bank (the labelled turns' vectors, for naming the
nearest examples of a decision).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from callwise.handoff.detector import (  # noqa: E402
    CLASSES,
    MODEL_INFO,
    MODEL_PATH,
    REASONS,
    Conversation,
    answer_sounds_unsure,
    features,
)

CORPUS = ROOT / "bench" / "data" / "escalation" / "corpus.jsonl"
TURNS = ROOT / "bench" / "data" / "escalation" / "turns.jsonl"
#: recall wanted per reason on out-of-fold turns: a missed security report costs most
TARGETS = {"security_privacy": 0.92, "legal_refund": 0.90, "explicit_request": 0.90, "outage": 0.90,
           "billing_dispute": 0.90, "frustration": 0.85, "repeated_failure": 0.88}


def load_conversations() -> list[dict]:
    rows = [r for r in (json.loads(x) for x in CORPUS.read_text().splitlines() if x.strip())
            if r["kind"] != "billing_under_threshold"]
    dev = [json.loads(x) for x in TURNS.read_text().splitlines() if x.strip()]
    for d in dev:
        if d["split"] == "dev":
            rows.append({**d, "group": d["id"], "agent": d.get("agent", []), "dev": True})
    return rows


def examples(convs: list[dict], vec_of: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, list, list]:
    X, y, groups, meta = [], [], [], []
    for c in convs:
        conv = Conversation()
        turns, agent = c["turns"], c.get("agent") or []
        for i, t in enumerate(turns):
            v = vec_of[t]
            X.append(features(v, conv))
            last = i == len(turns) - 1
            y.append(CLASSES.index(c["reason"]) if last and c["reason"] else 0)
            groups.append(c["group"])
            meta.append({"text": t, "dev": bool(c.get("dev")), "last": last, "conv": c["id"]})
            conv.vectors.append(v)
            if i < len(agent):
                conv.answered(unsure=answer_sounds_unsure(agent[i]))
    return np.stack(X), np.array(y), groups, meta


CACHE = Path(os.environ.get("ESCALATION_EMBED_CACHE", "/tmp/escalation-embed-cache.npz"))


def embed_cached(texts: list[str], encode: object) -> dict[str, np.ndarray]:
    """Unit vectors of ``texts``; a local cache (not shipped) saves re-embedding between runs."""
    cached: dict[str, np.ndarray] = {}
    if CACHE.exists():
        z = np.load(CACHE)
        cached = dict(zip((str(t) for t in z["texts"]), z["vecs"], strict=True))
    todo = [t for t in texts if t not in cached]
    if todo:
        emb = np.asarray(encode(todo), dtype=np.float32)  # type: ignore[operator]
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        cached.update(zip(todo, emb, strict=True))
        keys = list(cached)
        np.savez(CACHE, texts=np.array(keys), vecs=np.stack([cached[k] for k in keys]))
    return {t: cached[t] for t in texts}


def conversation_scores(P: np.ndarray, meta: list[dict], convs: list[dict], high: np.ndarray) -> dict:
    """Conversation-level figures as the bench counts them: the first turn that passes a threshold
    decides; a negative conversation with any firing turn is a false alarm."""
    first: dict[str, int] = {}
    for i, m in enumerate(meta):
        if m["conv"] in first:
            continue
        r = P[i, 1:] / high
        if r.max() >= 1:
            first[m["conv"]] = int(r.argmax()) + 1
    out: dict[str, dict[str, int]] = {}
    for c in convs:
        key = "dev" if c.get("dev") else "corpus"
        o = out.setdefault(key, {"pos": 0, "right": 0, "detected": 0, "neg": 0, "fa": 0})
        got = first.get(c["id"], 0)
        if c["reason"]:
            o["pos"] += 1
            o["detected"] += got > 0
            o["right"] += got == CLASSES.index(c["reason"])
        else:
            o["neg"] += 1
            o["fa"] += got > 0
    return {k: {"recall": round(v["detected"] / max(v["pos"], 1), 3), "right_reason": round(v["right"] / max(v["pos"], 1), 3),
                "false_alarms": round(v["fa"] / max(v["neg"], 1), 3), "n": v["pos"] + v["neg"]} for k, v in out.items()}


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--c", type=float, default=8.0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from callwise.knowledge.embeddings import Embedder

    convs = load_conversations()
    texts = sorted({t for c in convs for t in c["turns"]})
    t0 = time.perf_counter()
    vec_of = embed_cached(texts, Embedder().encode)
    embed_s = time.perf_counter() - t0
    X, y, groups, meta = examples(convs, vec_of)
    weight = np.array([3.0 if m["dev"] else 1.0 for m in meta])

    def fit(Xa: np.ndarray, ya: np.ndarray, wa: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=args.c, max_iter=3000).fit(Xa, ya, sample_weight=wa)

    logits = np.zeros((len(y), len(CLASSES)))
    for tr, te in GroupKFold(n_splits=args.folds).split(X, y, groups):
        m = fit(X[tr], y[tr], weight[tr])
        logits[te] = m.decision_function(X[te])
    temps = np.linspace(0.3, 3.0, 28)
    nll = [float(-np.log(softmax(logits / t)[np.arange(len(y)), y] + 1e-12).mean()) for t in temps]
    temperature = float(temps[int(np.argmin(nll))])
    P = softmax(logits / temperature)
    high, low = [], []
    for k, r in enumerate(REASONS, start=1):
        pos = np.sort(P[y == k, k])
        target = TARGETS[r]
        h = float(pos[int(np.floor((1 - target) * len(pos)))]) if len(pos) else 0.5
        lo = float(pos[int(np.floor(0.03 * len(pos)))]) if len(pos) else 0.25
        high.append(min(max(h, 0.05), 0.9))
        low.append(min(max(lo, 0.4 * high[-1]), high[-1]))  # unsure: between low and high
    H, L = np.array(high), np.array(low)
    ratio = P[:, 1:] / H
    fired = ratio.max(axis=1) >= 1
    pred = np.where(fired, ratio.argmax(axis=1) + 1, 0)
    last_pos = np.array([m["last"] for m in meta]) & (y > 0)
    negs = y == 0
    dev = np.array([m["dev"] for m in meta])
    summary = {
        "examples": int(len(y)), "conversations": len(convs), "texts": len(texts), "embed_s": round(embed_s, 1),
        "C": args.c, "temperature": temperature,
        "oof_recall_right_reason": round(float((pred[last_pos] == y[last_pos]).mean()), 3),
        "oof_false_alarm_turns": round(float(fired[negs].mean()), 3),
        "oof_dev_recall": round(float((pred[last_pos & dev] == y[last_pos & dev]).mean()), 3),
        "oof_dev_false_alarm_turns": round(float(fired[negs & dev].mean()), 3),
        "oof_conversations": conversation_scores(P, meta, convs, H),
        "per_reason_oof_recall": {r: round(float((pred[y == k] == k).mean()), 3) for k, r in enumerate(REASONS, 1)},
        "high": dict(zip(REASONS, [round(h, 4) for h in high], strict=True)),
        "low": dict(zip(REASONS, [round(x, 4) for x in low], strict=True)),
        "targets": TARGETS,
    }
    final = fit(X, y, weight)
    # the bank: each labelled turn once (the label of its last occurrence as a labelled example)
    bank: dict[str, str | None] = {}
    for m, label in zip(meta, y, strict=True):
        if label > 0 or m["text"] not in bank:
            bank[m["text"]] = CLASSES[label] if label > 0 else None
    bank_texts = list(bank)
    np.savez_compressed(MODEL_PATH, W=final.coef_.astype(np.float32), b=final.intercept_.astype(np.float32),
                        temperature=np.float32(temperature), high=H.astype(np.float32), low=L.astype(np.float32),
                        bank=np.round(np.stack([vec_of[t] for t in bank_texts]) * 127).astype(np.int8))
    MODEL_INFO.write_text(json.dumps({"summary": summary, "classes": list(CLASSES), "bank_texts": bank_texts,
                                      "bank_labels": [bank[t] for t in bank_texts]}) + "\n")
    print(json.dumps(summary, indent=None if args.json else 1))
    print(f"-> {MODEL_PATH.relative_to(ROOT)} ({MODEL_PATH.stat().st_size // 1024} kB), "
          f"{MODEL_INFO.relative_to(ROOT)} ({MODEL_INFO.stat().st_size // 1024} kB)", file=sys.stderr)


if __name__ == "__main__":
    main()
