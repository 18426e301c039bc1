"""Callers in six languages (issue 25): speech (WER, language detection, decode time) and retrieval over the
English sample knowledge base (right page first, nDCG@10) with the English and the multilingual embedder.

    OMP_NUM_THREADS=1 python bench/languages.py                 # everything, a table per part
    python bench/languages.py --part timing --limit 4           # seconds per utterance, detection vs told vs tiny.en
    python bench/languages.py --json                            # one JSON object
    python bench/languages.py --part speech --limit 5           # a quick look

Questions: ``bench/data/languages/queries.jsonl`` (20 Orbitly questions, each in en/es/fr/de/ja/zh; judged by
``bench/data/orbitly/qrels/test.tsv``). Spoken versions: espeak-ng in the language's voice
(``callwise.calls.languages.ESPEAK_VOICES``), 16 kHz, cached under ``--cache-dir``; transcribed by the
multilingual Whisper base with language detection (what the first utterance of a call gets), and the English
ones also by tiny.en. WER is word-level for en/es/fr/de and character-level for ja/zh (no spaces between
words), after lower-casing and dropping punctuation.

Retrieval runs the product path (``build_knowledge``: hybrid BM25 + vector, RRF, the local re-score, page
ranking) over ``examples/kb`` ingested into a fresh organization per embedder, plus vector-only and BM25-only
rows to show what lexical search contributes for a question that shares no words with the English page.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import unicodedata
import wave
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _harness import cpu_note  # noqa: E402

DATA = ROOT / "bench" / "data" / "languages" / "queries.jsonl"
QRELS = ROOT / "bench" / "data" / "orbitly" / "qrels" / "test.tsv"
LANGS = ("en", "es", "fr", "de", "ja", "zh")


def load_queries(limit: int | None) -> list[dict[str, Any]]:
    rows = [json.loads(ln) for ln in DATA.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if limit:
        keep = sorted({r["source_id"] for r in rows}, key=lambda s: int(s[1:]))[:limit]
        rows = [r for r in rows if r["source_id"] in keep]
    return rows


def load_qrels() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for ln in QRELS.read_text().splitlines()[1:]:
        q, d, g = ln.split("\t")
        out.setdefault(q, {})[d] = int(g)
    return out


# ----------------------------------------------------------------------------------------------- speech
ESPEAK_GAP = ["-g", "0"]  # word gap in 10 ms units (--espeak-gap); examples/calls/make_calls.py speaks with 4


def speak(text: str, lang: str, cache: Path) -> Path:
    from callwise.calls.languages import ESPEAK_VOICES

    cache.mkdir(parents=True, exist_ok=True)
    voice = ESPEAK_VOICES[lang]
    key = f"{lang}-{voice}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"
    out = cache / f"{key}.wav"
    if not out.exists():
        raw = cache / f"{key}.raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", *ESPEAK_GAP, "-w", str(raw), text],
                       check=True)
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True)
        raw.unlink()
    return out


def read_wav(path: Path) -> Any:
    import numpy as np

    with wave.open(str(path), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def normalise(text: str, lang: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    t = re.sub(r"[^\w\s-]", " ", t).replace("-", "")  # "E-2001" and "E2001" alike
    if lang in ("ja", "zh"):
        return " ".join(ch for ch in t if not ch.isspace())
    return " ".join(t.split())


def error_rate(ref: str, hyp: str, lang: str) -> float:
    import jiwer

    r, h = normalise(ref, lang), normalise(hyp, lang)
    if not r:
        return 0.0
    return float(jiwer.wer(r, h or "<empty>"))


def run_speech(rows: list[dict[str, Any]], cache: Path) -> dict[str, Any]:
    from callwise.agent.plugins.stt_multilingual import MultilingualWhisperSTT
    from callwise.agent.plugins.stt_whisper import WhisperSTT

    models = cache / "models"
    tiny = WhisperSTT(model="tiny.en", cpu_threads=2)
    per: dict[str, dict[str, list[float]]] = {}
    items = []
    for r in rows:
        wav = speak(r.get("speech") or r["text"], r["language"], cache / f"audio-g{ESPEAK_GAP[1]}")
        audio = read_wav(wav)
        stt = MultilingualWhisperSTT(cache_dir=models, cpu_threads=2)  # one call per question: detection each time
        t = stt.transcribe_call(audio)
        lang = r["language"]
        d = per.setdefault(lang, {"err": [], "detect_ok": [], "decode_s": [], "audio_s": [], "prob": []})
        d["err"].append(error_rate(r["text"], t.text, lang))
        # the call's language as the product settles it (the most likely served language), and Whisper's own top
        d["detect_ok"].append(1.0 if stt.choice and stt.choice.code == lang and stt.choice.supported else 0.0)
        d.setdefault("raw_ok", []).append(1.0 if stt.raw_detection and stt.raw_detection[0] == lang else 0.0)
        d["decode_s"].append(t.decode_s)
        d["audio_s"].append(t.audio_s)
        d["prob"].append(stt.choice.probability or 0.0 if stt.choice else 0.0)
        item = {"id": r["_id"], "language": lang, "detected": stt.choice.detected if stt.choice else None,
                "settled": stt.choice.code if stt.choice else None, "whisper_top": stt.raw_detection,
                "probability": round(stt.choice.probability or 0.0, 3) if stt.choice else None,
                "transcript": t.text, "error": round(d["err"][-1], 3), "decode_s": round(t.decode_s, 2)}
        if lang == "en":
            e = tiny.transcribe(audio, "en")
            forced = stt.transcribe(audio, "en")
            d.setdefault("tiny_err", []).append(error_rate(r["text"], e.text, lang))
            d.setdefault("tiny_decode_s", []).append(e.decode_s)
            d.setdefault("base_en_decode_s", []).append(forced.decode_s)
            item["tiny_en"] = {"transcript": e.text, "decode_s": round(e.decode_s, 2)}
        items.append(item)
    table = {}
    for lang, d in per.items():
        row = {"n": len(d["err"]), "error_rate": round(statistics.mean(d["err"]), 3),
               "metric": "CER" if lang in ("ja", "zh") else "WER",
               "detection_accuracy": round(statistics.mean(d["detect_ok"]), 3),
               "whisper_top_language_accuracy": round(statistics.mean(d["raw_ok"]), 3),
               "decode_s_median": round(statistics.median(d["decode_s"]), 2),
               "audio_s_median": round(statistics.median(d["audio_s"]), 2)}
        if "tiny_err" in d:
            row["tiny_en_wer"] = round(statistics.mean(d["tiny_err"]), 3)
            row["tiny_en_decode_s_median"] = round(statistics.median(d["tiny_decode_s"]), 2)
            row["base_forced_en_decode_s_median"] = round(statistics.median(d["base_en_decode_s"]), 2)
        table[lang] = row
    all_ok = [x for d in per.values() for x in d["detect_ok"]]
    raw_ok = [x for d in per.values() for x in d["raw_ok"]]
    return {"per_language": table, "detection_accuracy": round(statistics.mean(all_ok), 3) if all_ok else None,
            "whisper_top_language_accuracy": round(statistics.mean(raw_ok), 3) if raw_ok else None,
            "items": items}


def run_timing(rows: list[dict[str, Any]], cache: Path, repeats: int = 2) -> dict[str, Any]:
    """Seconds one utterance costs each way, measured back to back on the same audio in both orders (the
    timings of ``run_speech`` follow each other in one order only): the multilingual base with language
    detection (a call's first utterance), base told the language (every later one), tiny.en (English)."""
    from callwise.agent.plugins.stt_multilingual import multilingual_model_dir
    from callwise.agent.plugins.stt_whisper import load_whisper, whisper_model_dir

    base = load_whisper(str(multilingual_model_dir(cache / "models")), "int8", 2)
    tiny = load_whisper(str(whisper_model_dir("tiny.en")), "int8", 2)
    kw: dict[str, Any] = {"beam_size": 1, "without_timestamps": True, "condition_on_previous_text": False}
    took: dict[str, list[float]] = {"detect_and_decode": [], "told_the_language": [], "tiny_en": [], "audio": []}
    for rep in range(repeats):
        for r in rows:
            audio = read_wav(speak(r.get("speech") or r["text"], r["language"], cache / f"audio-g{ESPEAK_GAP[1]}"))
            order = [("detect_and_decode", base, None), ("told_the_language", base, r["language"])]
            if r["language"] == "en":
                order.append(("tiny_en", tiny, "en"))
            for name, model, lang in (order if rep % 2 == 0 else list(reversed(order))):
                t = time.perf_counter()
                list(model.transcribe(audio, language=lang, **kw)[0])
                took[name].append(time.perf_counter() - t)
            took["audio"].append(audio.size / 16000)
    return {k: {"n": len(v), "median_s": round(statistics.median(v), 2)} for k, v in took.items() if v}


# -------------------------------------------------------------------------------------------- retrieval
def page_metrics(ranked: list[str], rel: dict[str, int], k: int = 10) -> dict[str, float]:
    top = ranked[:k]
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(top))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    best = max(rel.values())
    return {"ndcg": dcg / idcg if idcg else 0.0, "first": 1.0 if top and rel.get(top[0], 0) == best else 0.0}


async def run_retrieval(rows: list[dict[str, Any]], spoken: dict[str, str], data_dir: Path,
                        embedders: list[str]) -> dict[str, Any]:
    from callwise.wiring.knowledge import build_knowledge
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    qrels = load_qrels()
    out: dict[str, Any] = {}
    settings = Settings(data_dir=data_dir)
    async with AsyncExitStack() as stack:
        rt = await stack.enter_async_context(open_runtime(settings))
        for name in embedders:
            if name == "e5":
                from callwise.knowledge.embedders.e5 import E5Embedder

                embedder: Any = E5Embedder()
            else:
                from callwise.knowledge.embeddings import Embedder

                embedder = Embedder()
            org = await rt.org_id(f"bench-languages-{name}")
            kb = build_knowledge(settings, rt.pool, embedder=embedder)
            t0 = time.perf_counter()
            if not await rt.pool.fetchval("select count(*) from documents where organization_id = $1", org):
                cwd = os.getcwd()
                os.chdir(ROOT)
                try:
                    await kb.ingestor.ingest("examples/kb", org)
                finally:
                    os.chdir(cwd)
            ingest_s = time.perf_counter() - t0
            res: dict[str, Any] = {"ingest_s": round(ingest_s, 1)}
            for mode in ("hybrid+rerank", "vector", "bm25"):
                cells: dict[str, dict[str, list[float]]] = {}
                ms: list[float] = []
                for r in rows:
                    rel = qrels[r["source_id"]]
                    for kind, text in (("typed", r["text"]), ("spoken", spoken.get(r["_id"]))):
                        if not text:
                            continue
                        t = time.perf_counter()
                        result = await kb.retriever.retrieve(text, org, top_k=10, mode=mode)
                        ms.append((time.perf_counter() - t) * 1000)
                        ranked = list(dict.fromkeys(c.document for c in result.chunks))
                        m = page_metrics(ranked, rel)
                        c = cells.setdefault(f"{r['language']}/{kind}", {"ndcg": [], "first": []})
                        c["ndcg"].append(m["ndcg"])
                        c["first"].append(m["first"])
                res[mode] = {k: {"first": round(statistics.mean(v["first"]), 3),
                                 "ndcg10": round(statistics.mean(v["ndcg"]), 3), "n": len(v["first"])}
                             for k, v in sorted(cells.items())}
                res[mode]["ms_per_query_median"] = round(statistics.median(ms), 1) if ms else None
            out[name] = res
    return out


def print_tables(result: dict[str, Any]) -> None:
    sp = result.get("speech")
    if sp:
        print(f"\nspeech (espeak-ng -> Whisper base multilingual, detection on), {result['machine']}")
        print("lang  n   error  metric  detected  decode_s  audio_s   tiny.en")
        for lang in LANGS:
            r = sp["per_language"].get(lang)
            if not r:
                continue
            tiny = (f"WER {r['tiny_en_wer']:.3f} in {r['tiny_en_decode_s_median']:.2f} s "
                    f"(base forced en {r['base_forced_en_decode_s_median']:.2f} s)") if "tiny_en_wer" in r else ""
            print(f"{lang:4}  {r['n']:<3} {r['error_rate']:.3f}  {r['metric']:6}  {r['detection_accuracy']:.2f}      "
                  f"{r['decode_s_median']:.2f}      {r['audio_s_median']:.2f}     {tiny}")
        print(f"language detection overall: {sp['detection_accuracy']:.3f} (the call's settled language; Whisper's own "
              f"top language {sp['whisper_top_language_accuracy']:.3f})")
    for emb, res in (result.get("retrieval") or {}).items():
        print(f"\nretrieval with {emb} (ingest {res['ingest_s']} s): right page first / nDCG@10")
        for mode in ("hybrid+rerank", "vector", "bm25"):
            cells = res[mode]
            line = "  ".join(f"{k} {v['first']:.2f}/{v['ndcg10']:.2f}" for k, v in cells.items() if isinstance(v, dict))
            print(f"  {mode:14} {line}  ({cells['ms_per_query_median']} ms/query)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("all", "speech", "retrieval", "timing"), default="all")
    ap.add_argument("--limit", type=int, default=None, help="only the first N source questions")
    ap.add_argument("--embedders", default="minilm,e5")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".callwise" / "bench-languages")
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".callwise" / "bench-languages" / "data")
    ap.add_argument("--speech-from", type=Path, default=None,
                    help="the --json output of an earlier --part speech run: its transcripts are the spoken questions")
    ap.add_argument("--espeak-gap", type=int, default=0, help="espeak-ng -g: pause between words, 10 ms units")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ESPEAK_GAP[:] = ["-g", str(args.espeak_gap)]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = load_queries(args.limit)
    result: dict[str, Any] = {"machine": cpu_note(), "questions": len(rows), "espeak_gap": args.espeak_gap}
    spoken: dict[str, str] = {}
    if args.speech_from is not None:
        result["speech"] = json.loads(args.speech_from.read_text())["speech"]
    elif args.part in ("all", "speech"):
        result["speech"] = run_speech(rows, args.cache_dir)
    if "speech" in result:
        spoken = {i["id"]: i["transcript"] for i in result["speech"]["items"]}
    if args.part == "timing":
        result["timing"] = run_timing(rows, args.cache_dir)
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return
    if args.part in ("all", "retrieval"):
        result["retrieval"] = asyncio.run(run_retrieval(rows, spoken, args.data_dir, args.embedders.split(",")))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
