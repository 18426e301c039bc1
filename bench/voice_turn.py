"""Voice turn benchmark over the sample calls, on the offline defaults.

    python bench/voice_turn.py [--calls examples/calls] [--org bench-voice] [--data-dir DIR] [--json]

Every support call in ``examples/calls/manifest.json`` is played through ``callwise.agent.simulate`` (the
worker's own VAD, STT plugin, escalation rules, retriever and router, driven directly; see that
module), after the sample KB is ingested into ``--org`` when it has no documents (once; about a
minute on 2 cores). The meeting call adds its utterances to the STT figures. Reported:

* STT real-time factor: decode time / duration of the VAD-cut utterances (and of the whole file,
  VAD included);
* WER (jiwer) of the transcripts against the scripts, case, punctuation and number formatting
  normalised (``callwise.evaluation.wer``);
* retrieval time, time to first answer token (router start -> first token), end of speech (VAD
  event) -> first answer token, and the same from the last spoken word (adds the VAD silence
  wait), p50 and p95 over answered turns (escalation and survey replies have no retrieval/router);

One warm-up turn runs first and is not counted. Wall-clock figures depend on the machine's load:
run it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]

TARGET_EOS_P50_MS = 1500.0
TARGET_WER = 0.15


def pct(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    a = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(a, 50)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "n": int(a.size)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import jiwer
    from _harness import ensure_example_kb  # bench-local helper

    from callwise.agent.simulate import simulate_support, transcribe, vad_utterances
    from callwise.agent.voice import build_stt, build_vad, stt_choice
    from callwise.calls import SupportCall
    from callwise.evaluation.wer import normalize_for_wer
    from callwise.infra.audio import load_audio, load_channels
    from callwise.wiring.agent import open_components
    from callwise.wiring.settings import Settings

    calls_dir = Path(args.calls)
    manifest = json.loads((calls_dir / "manifest.json").read_text())
    overrides: dict[str, Any] = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    settings = Settings(**overrides)
    out: dict[str, Any] = {"stt": stt_choice(settings), "cpu_count": os.cpu_count(), "calls": []}
    async with open_components(settings) as comp:
        org_id = await comp.runtime.org_id(args.org)
        ingest_s = await ensure_example_kb(comp, org_id)
        if ingest_s is not None:
            out["ingest_s"] = ingest_s
        stt, vad = build_stt(settings), build_vad(settings)
        deps = comp.support_deps()

        warm = await SupportCall.start(deps, organization_id=org_id, room="bench-warmup", modality="voice")
        await warm.run_turn("How do I reset my password?")
        await warm.end()
        await stt.recognize([])  # loads nothing new; the model was loaded by build_stt

        refs: list[str] = []
        hyps: list[str] = []
        decode_ms = utter_s = file_wall_s = file_audio_s = 0.0
        retrieval, ttft, eos, speech_end = [], [], [], []
        for call in manifest["calls"]:
            path = calls_dir / call["file"]
            t0 = time.perf_counter()
            if call["kind"] == "support":
                report = await simulate_support(path, deps=deps, stt=stt, vad=vad, organization_id=org_id,
                                                stt_name=out["stt"])
                texts = [t["transcript"] for t in report.turns]
                for t in report.turns:
                    lat = t["latencies_ms"]
                    decode_ms += lat.get("stt_ms", 0.0)
                    utter_s += t["end_s"] - t["start_s"]
                    if t["kind"] == "answer":
                        retrieval.append(lat["retrieval_ms"])
                        ttft.append(lat["ttft_ms"])
                        eos.append(lat["eos_to_first_token_ms"])
                        speech_end.append(lat["speech_end_to_first_token_ms"])
                kinds = [t["kind"] for t in report.turns]
                file_audio_s += load_audio(path).duration_s
            else:  # meeting: transcription only, per channel
                texts, kinds = [], []
                found = []
                for clip, name in zip(load_channels(path), call["channels"], strict=False):
                    async for utt in vad_utterances(clip, vad, name):
                        text, ms = await transcribe(stt, utt)
                        decode_ms += ms
                        utter_s += utt.end_s - utt.start_s
                        if text:
                            found.append((utt.start_s, text))
                    file_audio_s += clip.duration_s
                texts = [t for _, t in sorted(found)]
            file_wall_s += time.perf_counter() - t0
            ref = " ".join(normalize_for_wer(u["text"]) for u in call["utterances"])
            hyp = " ".join(normalize_for_wer(t) for t in texts)
            refs.append(ref)
            hyps.append(hyp)
            out["calls"].append({"file": call["file"], "kind": call["kind"], "utterances": len(call["utterances"]),
                                 "turns": len(texts), "turn_kinds": kinds, "wer": round(jiwer.wer(ref, hyp), 4)})
    out["stt_rtf"] = round(decode_ms / 1000 / utter_s, 3) if utter_s else None
    out["pipeline_rtf_whole_files"] = round(file_wall_s / file_audio_s, 3) if file_audio_s else None
    out["wer"] = round(jiwer.wer(refs, hyps), 4)
    out["retrieval_ms"] = pct(retrieval)
    out["ttft_ms"] = pct(ttft)
    out["eos_to_first_token_ms"] = pct(eos)
    out["speech_end_to_first_token_ms"] = pct(speech_end)
    out["targets"] = {"eos_to_first_token_p50_ms": TARGET_EOS_P50_MS, "wer": TARGET_WER,
                      "eos_p50_met": (out["eos_to_first_token_ms"]["p50"] or 1e9) < TARGET_EOS_P50_MS,
                      "wer_met": out["wer"] <= TARGET_WER}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default=str(ROOT / "examples" / "calls"))
    parser.add_argument("--org", default="bench-voice")
    parser.add_argument("--data-dir", default=None, help="callwise data dir (default: CALLWISE_DATA_DIR or .callwise)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"STT {result['stt']}: RTF {result['stt_rtf']} (utterances), whole files incl. VAD and pipeline "
          f"{result['pipeline_rtf_whole_files']}; WER {result['wer']:.1%} (target <= {TARGET_WER:.0%})")
    for c in result["calls"]:
        print(f"  {c['file']:<24} {c['kind']:<8} WER {c['wer']:.1%}  turns {c['turns']}/{c['utterances']} "
              f"{' '.join(c['turn_kinds'])}")
    for key, label in (("retrieval_ms", "retrieval"), ("ttft_ms", "time to first token"),
                       ("eos_to_first_token_ms", "end of speech (VAD) -> first token"),
                       ("speech_end_to_first_token_ms", "last word -> first token (incl. VAD wait)")):
        p = result[key]
        print(f"{label:<44} p50 {p['p50']} ms  p95 {p['p95']} ms  (n={p['n']})")
    print(f"target: end of speech -> first token p50 < {TARGET_EOS_P50_MS:.0f} ms: "
          f"{'met' if result['targets']['eos_p50_met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
