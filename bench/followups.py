"""Follow-up questions: does retrieval keep the topic of the question they follow?

    python bench/followups.py [--data-dir DIR] [--org ORG] [--limit N] [--json]

Pairs: every first question of ``bench/data/orbitly/queries.jsonl`` (questions the team wrote for
retrieval, not for this) that has a primary page (grade 2 in ``qrels/test.tsv``), followed by each of
the generic pronoun-led follow-ups below (written for this bench; they name no topic, so only the
conversation can supply one). For each pair the follow-up is retrieved (top 3, the product's
retriever over ``examples/kb``) twice: as heard (no memory) and as the turn pipeline's query
understanding makes it standalone (``callwise.calls.stages.understand.understand`` with the first question as
the last question). ``topic kept`` = the first question's primary page is in the follow-up's top 3.
This measures topic continuity, not whether the page answers the follow-up. Also reported: how
often the standalone form differs from the words heard (``rewritten``), and the statement detector:
how many of the orbitly questions (typed, mostly without a question mark, and spoken) it would
acknowledge instead of answering, and which turns of the sample calls (``examples/calls/scripts.json``)
it acknowledges.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FOLLOW_UPS = [
    "How do I turn it off?",
    "And how long does that take?",
    "Can I undo that later?",
    "Who is allowed to do that?",
    "Does it cost anything?",
    "What happens to our data then?",
    "Is that on every plan?",
    "How do I stop one of them?",
]
SET = ROOT / "bench" / "data" / "orbitly"


def pairs(limit: int | None) -> list[tuple[str, str, str, str]]:
    """(query id, first question, its primary page, follow-up)."""
    primary: dict[str, str] = {}
    for line in (SET / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, doc, grade = line.split("\t")
        if grade.strip() == "2":
            primary.setdefault(qid, doc)
    firsts = [json.loads(x) for x in (SET / "queries.jsonl").read_text().splitlines() if x.strip()]
    firsts = [q for q in firsts if q["_id"] in primary][: limit or None]
    return [(q["_id"], q["text"], primary[q["_id"]], f) for q in firsts for f in FOLLOW_UPS]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from _harness import ensure_example_kb  # bench-local helper

    from callwise.calls.stages.understand import is_statement, understand
    from callwise.wiring.agent import open_components
    from callwise.wiring.settings import Settings

    settings = Settings(**({"data_dir": Path(args.data_dir)} if args.data_dir else {}))
    out: dict[str, Any] = {"pairs": 0, "follow_ups": FOLLOW_UPS}
    async with open_components(settings) as comp:
        org_id = await comp.runtime.org_id(args.org)
        ingest_s = await ensure_example_kb(comp, org_id)
        if ingest_s is not None:
            out["ingest_s"] = ingest_s
        retriever = comp.knowledge.retriever
        kept = {"as_heard": 0, "standalone": 0}
        rewritten = 0
        per_follow_up: dict[str, dict[str, int]] = {f: {"as_heard": 0, "standalone": 0, "n": 0} for f in FOLLOW_UPS}
        examples = []
        todo = pairs(args.limit)
        for _qid, first, page, follow in todo:
            u = understand(follow, last_question=first, facts=[])
            heard = [c.document for c in (await retriever.retrieve(follow, org_id, top_k=3)).chunks]
            alone = heard if u.query == follow else [c.document for c in
                                                     (await retriever.retrieve(u.query, org_id, top_k=3)).chunks]
            rewritten += u.query != follow
            stats = per_follow_up[follow]
            stats["n"] += 1
            for key, docs in (("as_heard", heard), ("standalone", alone)):
                hit = page in docs
                kept[key] += hit
                stats[key] += hit
            if len(examples) < 6:
                examples.append({"first": first, "follow_up": follow, "standalone": u.query, "page": page,
                                 "top3_as_heard": heard, "top3_standalone": alone})
        n = len(todo)
        out.update(pairs=n, first_questions=n // len(FOLLOW_UPS),
                   topic_kept_as_heard=round(kept["as_heard"] / n, 3) if n else None,
                   topic_kept_standalone=round(kept["standalone"] / n, 3) if n else None,
                   rewritten=round(rewritten / n, 3) if n else None,
                   per_follow_up={f: {"n": s["n"], "as_heard": round(s["as_heard"] / s["n"], 3),
                                      "standalone": round(s["standalone"] / s["n"], 3)}
                                  for f, s in per_follow_up.items() if s["n"]},
                   examples=examples)
    calls = json.loads((ROOT / "examples" / "calls" / "scripts.json").read_text())
    out["sample_call_statements"] = [u["text"] for c in calls if c["kind"] == "support"
                                     for u in c["utterances"] if is_statement(u["text"])]
    # every orbitly query is a question (typed mostly without "?"; spoken as Whisper heard it): a
    # statement here would be acknowledged instead of answered
    for name in ("queries", "spoken"):
        texts = [json.loads(x)["text"] for x in (SET / f"{name}.jsonl").read_text().splitlines() if x.strip()]
        wrong = [t for t in texts if is_statement(t)]
        out[f"questions_taken_for_statements_{name}"] = {"n": len(texts), "statements": len(wrong), "turns": wrong}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="CALLWISE data dir (embedded Postgres; the KB is ingested once)")
    parser.add_argument("--org", default="bench-followups")
    parser.add_argument("--limit", type=int, help="first questions to use (default: all with a primary page)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    res = asyncio.run(run(args))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{res['pairs']} follow-ups after {res['first_questions']} first questions")
    print(f"topic kept in top 3: as heard {res['topic_kept_as_heard']:.1%}, "
          f"standalone (query understanding) {res['topic_kept_standalone']:.1%}; rewritten {res['rewritten']:.1%}")
    for f, s in res["per_follow_up"].items():
        print(f"  {f:<34} as heard {s['as_heard']:.1%}  standalone {s['standalone']:.1%}")
    for name in ("queries", "spoken"):
        q = res[f"questions_taken_for_statements_{name}"]
        print(f"orbitly {name}: {q['statements']} of {q['n']} questions taken for statements {q['turns']}")
    print("sample-call turns acknowledged as statements:")
    for t in res["sample_call_statements"]:
        print(f"  - {t}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
