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

    python bench/voice_turn.py --live [--turn-detection audio,vad] [--only paused] [--json]

``--live`` plays every support call in real time into the framework's own ``AgentSession``
(``callwise.agent.live``: the caller waits for each answer, as a person would) once per turn
detection mode, after warming every model, and reports p50/p95 of each agent turn's
``last_word_to_first_audio``, ``end_of_turn_delay``, ``transcription_delay``, ``llm_ttft`` and
``tts_ttfb``, the cut-ins (agent audio starting inside a caller's sentence; the ``paused-*`` calls
hold 0.4-0.8 s pauses inside sentences), holding lines, generations the framework discarded, and
whether every stored turn is one the caller heard, and the drafted replies (preemptive generation: drafted,
committed, discarded, and the seconds the discarded ones ran). Real time: about 1.5 minutes a call and mode.

The defaults are the product's: Whisper decoding at the caller's first pause, preemptive generation on, Silero's
0.55 s silence. To compare: ``--stt-after-speech`` (one decode after the end of speech), ``--no-preemptive``,
``--min-silence S``, ``--min-delay S`` / ``--max-delay S`` (the framework's endpointing); ``--out FILE`` writes
the JSON after each mode.
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


TARGET_LIVE_P50_MS = 800.0
TARGET_LIVE_P95_MS = 1300.0
LIVE_KEYS = ("last_word_to_first_audio", "end_of_turn_delay", "transcription_delay", "llm_ttft", "tts_ttfb")


async def run_live(args: argparse.Namespace) -> dict[str, Any]:
    from _harness import ensure_example_kb  # bench-local helper

    from callwise.agent.live import simulate_live
    from callwise.agent.voice import build_stt, build_tts, build_turn_handling, build_vad, stt_choice, turn_detection_choice
    from callwise.agent.warm import warm_up
    from callwise.routing.resilience import HOLDING_LINE
    from callwise.wiring.agent import open_components
    from callwise.wiring.settings import Settings

    calls_dir = Path(args.calls)
    manifest = json.loads((calls_dir / "manifest.json").read_text())
    only = [o for o in (args.only or "").split(",") if o]
    calls = [c for c in manifest["calls"] if c["kind"] == "support" and (not only or any(o in c["file"] for o in only))]
    overrides: dict[str, Any] = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    settings = Settings(**overrides)
    out: dict[str, Any] = {"stt": stt_choice(settings), "cpu_count": os.cpu_count(), "load_before": os.getloadavg(),
                           "calls": [c["file"] for c in calls], "modes": {}}
    async with open_components(settings) as comp:
        org_id = await comp.runtime.org_id(args.org)
        await ensure_example_kb(comp, org_id)
        vad = build_vad(settings, min_silence_s=args.min_silence)
        stt, tts = build_stt(settings, streaming=not args.stt_after_speech, vad=vad), build_tts(settings)
        if tts is None:
            raise SystemExit("--live needs espeak-ng (apt-get install espeak-ng)")
        out.update(preemptive_tts=args.preemptive_tts, min_silence_s=args.min_silence, min_delay_s=args.min_delay, max_delay_s=args.max_delay,
                   stt_streaming=not args.stt_after_speech)
        for mode in args.turn_detection.split(","):
            handling = build_turn_handling(settings, mode, preemptive=not args.no_preemptive,
                                           preemptive_tts=args.preemptive_tts,
                                           min_delay=args.min_delay, max_delay=args.max_delay)
            name = turn_detection_choice(settings, mode)
            warm = await warm_up(comp, stt=stt, vad=vad, tts=tts, turn_detector=handling["turn_detection"],
                                 org_id=org_id)
            values: dict[str, list[float]] = {k: [] for k in LIVE_KEYS}
            per_call = []
            for call in calls:
                report = await simulate_live(calls_dir / call["file"], deps=comp.support_deps(), stt=stt, vad=vad,
                                             tts=tts, organization_id=org_id, turn_handling=handling,
                                             stt_name=out["stt"], turn_detection_name=name)
                data = report.as_dict()
                for t in data["turns"]:
                    for k in LIVE_KEYS:
                        v = t["latencies_ms"][k]
                        if v is not None:
                            values[k].append(v)
                stored = await comp.pool.fetch("select role, text from turns where organization_id = $1 and "
                                               "session_id = $2 order by seq", org_id, report.session_id)
                heard = [t["agent_said"].strip() for t in data["turns"] if t["agent_said"]]
                kept = [r["text"].strip() for r in stored if r["role"] == "assistant"]
                per_call.append({
                    "file": call["file"], "agent_turns": len(data["turns"]), "cut_ins": data["cut_ins"],
                    "interrupted": sum(1 for t in data["turns"] if t["interrupted"]),
                    "holding_lines": sum(1 for t in data["turns"] if t["agent_said"].startswith(HOLDING_LINE)),
                    "discarded_generations": data["discarded_generations"],
                    "premature_turns": data["premature_turns"],
                    "stored_answers": len(kept), "stored_but_not_heard": len([k for k in kept if k not in heard]),
                    "last_word_to_first_audio_ms": [t["latencies_ms"]["last_word_to_first_audio"]
                                                    for t in data["turns"]],
                    "drafts": data.get("drafts"),
                    "wall_s": data["wall_s"]})
                print(f"  [{name}] {call['file']}: {per_call[-1]}", file=sys.stderr, flush=True)
            paused = [c for c in per_call if c["file"].startswith("paused-")]
            out["modes"][name] = {
                "warmup_s": warm, "preemptive_generation": not args.no_preemptive,
                "load_after_pass": os.getloadavg(),
                "drafts": {k: sum((c.get("drafts") or {}).get(k, 0) for c in per_call)
                           for k in ("drafted", "committed", "discarded", "discarded_busy_s")},
                **{f"{k}_ms": pct(v) for k, v in values.items()},
                "cut_ins": sum(c["cut_ins"] for c in per_call),
                "cut_ins_paused_calls": sum(c["cut_ins"] for c in paused),
                "holding_lines": sum(c["holding_lines"] for c in per_call),
                "discarded_generations": sum(c["discarded_generations"] for c in per_call),
                "premature_turns": sum(c["premature_turns"] or 0 for c in per_call),
                "premature_turns_paused_calls": sum(c["premature_turns"] or 0 for c in paused),
                "stored_but_not_heard": sum(c["stored_but_not_heard"] for c in per_call),
                "calls": per_call,
            }
            if args.out:  # after each mode: a long run stopped early keeps what it measured
                Path(args.out).write_text(json.dumps(out, indent=2))
    out["load_after"] = os.getloadavg()
    out["targets"] = {"last_word_to_first_audio_p50_ms": TARGET_LIVE_P50_MS,
                      "last_word_to_first_audio_p95_ms": TARGET_LIVE_P95_MS}
    return out


def print_live(result: dict[str, Any]) -> None:
    print(f"live mode, STT {result['stt']}, load average before {result['load_before'][0]:.1f} "
          f"after {result['load_after'][0]:.1f}")
    for name, m in result["modes"].items():
        print(f"turn detection {name} (preemptive generation {'on' if m['preemptive_generation'] else 'off'}):")
        for k in LIVE_KEYS:
            p = m[f"{k}_ms"]
            print(f"  {k:<26} p50 {p['p50']} ms  p95 {p['p95']} ms  (n={p['n']})")
        print(f"  turns ended mid-sentence {m['premature_turns']} (paused calls {m['premature_turns_paused_calls']}), "
              f"cut-ins {m['cut_ins']} (paused calls {m['cut_ins_paused_calls']}), holding lines "
              f"{m['holding_lines']}, discarded generations {m['discarded_generations']}, stored answers "
              f"not heard {m['stored_but_not_heard']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default=str(ROOT / "examples" / "calls"))
    parser.add_argument("--org", default="bench-voice")
    parser.add_argument("--data-dir", default=None, help="callwise data dir (default: CALLWISE_DATA_DIR or .callwise)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--live", action="store_true", help="through the framework's AgentSession, in real time")
    parser.add_argument("--turn-detection", default="audio,vad", help="--live: modes to compare (audio,vad)")
    parser.add_argument("--out", default=None, help="--live: also write the JSON here after each mode")
    parser.add_argument("--no-preemptive", action="store_true", help="--live: the framework's preemptive generation off")
    parser.add_argument("--preemptive-tts", action="store_true",
                        help="--live: the drafted reply is synthesized before the turn is committed too")
    parser.add_argument("--stt-after-speech", action="store_true",
                        help="--live: Whisper decodes each utterance after the end of speech (no decode at the pause)")
    parser.add_argument("--min-silence", type=float, default=0.55, help="--live: Silero's silence that ends speech (s)")
    parser.add_argument("--min-delay", type=float, default=None, help="--live: the framework's endpointing min_delay (s)")
    parser.add_argument("--max-delay", type=float, default=None, help="--live: the framework's endpointing max_delay (s)")
    parser.add_argument("--only", default=None, help="--live: only the calls whose file name holds one of these (comma-separated)")
    args = parser.parse_args()
    if args.live:
        live = asyncio.run(run_live(args))
        if args.json:
            print(json.dumps(live, indent=2))
        else:
            print_live(live)
        return 0
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
