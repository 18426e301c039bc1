"""Shared screens (issue 25): is the error-code page first when the caller shows the error and asks about it?

    OMP_NUM_THREADS=1 python bench/screens.py            # a table
    python bench/screens.py --json

Each screenshot of ``examples/screens/manifest.json`` (made from the sample KB's error-code pages by
``examples/screens/make_screens.py``: a dialog, a web-app banner, a terminal) is read with Tesseract
(``callwise.calls.screen``) and paired with each question below; retrieval runs the product path
(``build_knowledge`` over ``examples/kb``, default embedder) on ``screen_query(question, screen)``. The
baseline row is the question alone (what the agent had without the screen). Also: OCR milliseconds per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _harness import cpu_note  # noqa: E402

QUESTIONS = ["what does this error mean?", "can you see my screen? I keep getting this",
             "I got this message, how do I fix it?",
             # the same turn in the other served languages (the screen's words are English)
             "¿Puede ver mi pantalla? ¿Qué significa este error?", "Vous voyez mon écran ? Que veut dire cette erreur ?",
             "Sehen Sie meinen Bildschirm? Was bedeutet dieser Fehler?", "画面のこのエラーはどういう意味ですか？",
             "你能看到我的屏幕吗？这个错误是什么意思？"]


async def run(data_dir: Path) -> dict[str, Any]:
    from callwise.calls.screen import read_frame, refers_to_screen, screen_query
    from callwise.wiring.knowledge import build_knowledge
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    manifest = json.loads((ROOT / "examples" / "screens" / "manifest.json").read_text())
    settings = Settings(data_dir=data_dir)
    ocr_ms: list[float] = []
    live_ms: list[dict[str, float]] = []
    rows: list[dict[str, Any]] = []
    async with AsyncExitStack() as stack:
        rt = await stack.enter_async_context(open_runtime(settings))
        org = await rt.org_id("bench-screens")
        kb = build_knowledge(settings, rt.pool)
        if not await rt.pool.fetchval("select count(*) from documents where organization_id = $1", org):
            cwd = os.getcwd()
            os.chdir(ROOT)
            try:
                await kb.ingestor.ingest("examples/kb", org)
            finally:
                os.chdir(cwd)
        for shot in manifest:
            screen = read_frame(ROOT / "examples" / "screens" / shot["file"])
            ocr_ms.append(screen.ocr_ms)
            live_ms.append(live_frame_costs(ROOT / "examples" / "screens" / shot["file"]))
            for q in QUESTIONS:
                row: dict[str, Any] = {"file": shot["file"], "look": shot["look"], "question": q,
                                       "refers": refers_to_screen(q), "codes": list(screen.codes)}
                for label, text in (("screen", screen_query(q, screen)), ("question_only", q)):
                    t = time.perf_counter()
                    res = await kb.retriever.retrieve(text, org, top_k=10)
                    pages = list(dict.fromkeys(c.document for c in res.chunks))
                    row[label] = {"first": pages[0] if pages else None, "right": bool(pages) and pages[0] == shot["page"],
                                  "ms": round((time.perf_counter() - t) * 1000, 1)}
                rows.append(row)
    n = len(rows)
    looks = sorted({r["look"] for r in rows})
    return {
        "machine": cpu_note(), "screens": len(manifest), "turns": n,
        "right_first_with_screen": round(sum(r["screen"]["right"] for r in rows) / n, 3),
        "right_first_question_only": round(sum(r["question_only"]["right"] for r in rows) / n, 3),
        "by_look": {lk: round(statistics.mean(r["screen"]["right"] for r in rows if r["look"] == lk), 3) for lk in looks},
        "ocr_ms_median": round(statistics.median(ocr_ms), 1), "ocr_ms_max": round(max(ocr_ms), 1),
        "retrieval_ms_median": round(statistics.median(r["screen"]["ms"] for r in rows), 1),
        "by_question": {q: round(statistics.mean(r["screen"]["right"] for r in rows if r["question"] == q), 3)
                        for q in QUESTIONS},
        "questions_refer_to_screen": {q: refers_to_screen(q) for q in QUESTIONS},
        "live_frame_ms_median": {k: round(statistics.median(c[k] for c in live_ms), 1) for k in live_ms[0]},
        "misses": [r for r in rows if not r["screen"]["right"]],
    }


def live_frame_costs(path: Path) -> dict[str, float]:
    """What the live worker spends on one frame besides OCR (callwise.agent.screen_share): the track's I420 frame
    to an image, the change check against the last frame read, and the PNG a vision tier gets."""
    from livekit import rtc
    from PIL import Image

    from callwise.agent.screen_share import from_image, to_image
    from callwise.calls.screen import frame_change, frame_signature
    from callwise.calls.stages.screen import png_bytes

    i420 = from_image(Image.open(path)).convert(rtc.VideoBufferType.I420)
    t = time.perf_counter()
    img = to_image(i420)
    convert = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    frame_change(frame_signature(img), frame_signature(img))
    diff = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    png_bytes(img)
    png = (time.perf_counter() - t) * 1000
    return {"i420_to_image": convert, "change_check": diff, "png_for_vision": png}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".callwise" / "bench-languages" / "data")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = asyncio.run(run(args.data_dir))
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"{out['screens']} screenshots x {len(QUESTIONS)} questions = {out['turns']} turns; {out['machine']}")
    print(f"right page first: with the screen {out['right_first_with_screen']:.3f}, "
          f"question alone {out['right_first_question_only']:.3f}; by look {out['by_look']}")
    print(f"OCR per frame: median {out['ocr_ms_median']} ms, max {out['ocr_ms_max']} ms; "
          f"retrieval median {out['retrieval_ms_median']} ms; live frame costs (median ms) {out['live_frame_ms_median']}")
    for q, v in out["by_question"].items():
        print(f"  {v:.3f}  {q}  (refers to the screen: {out['questions_refer_to_screen'][q]})")
    for m in out["misses"]:
        print(f"  miss: {m['file']} / {m['question']!r} -> {m['screen']['first']}")


if __name__ == "__main__":
    main()
