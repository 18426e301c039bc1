"""How many calls one worker process holds: simulated calls at once, text and audio.

    python bench/concurrency.py --calls 20 [--json] [--levels 1,5,10,20] [--no-audio]

For each level N (1, 5, 10, 20 up to --calls) N calls run at once in this one process, on the
offline defaults a worker uses (embedded Postgres, the Postgres knowledge store, MiniLM, the
extractive answerer) and the real support turn stages:

* text: each call plays a support script of examples/calls/scripts.json; time to first word is
  from the moment a customer turn is handed to the turn (its end of speech) to the first answer text;
* audio: each call plays one of the sample recordings through the worker's own Silero VAD and
  faster-whisper STT (`callwise.agent.simulate.simulate_support`, one STT model shared by every call as a
  worker shares it); time to first word is STT decode + turn to first answer text (the VAD's
  silence wait, a constant of the endpointing setting, is not included).

Printed per level: p50/p95 time to first word, turns, turns lost (started but not stored),
sequence collisions (a session whose turn seq is not 0..n-1), and wall time. The latency target
is the turn deadline, 2.5 s to the first word.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from _harness import ROOT, cpu_note, open_org, percentile, support_scripts  # noqa: I001 - bench-local helper

TARGET_MS = 2500.0
WAVS = ["refund.wav", "password-reset.wav", "sso-okta.wav", "rate-limit-error.wav", "outage-escalation.wav"]


async def _integrity(pool: Any, sessions: list[str]) -> tuple[int, int]:
    """(turn rows, sessions whose seq is not exactly 0..n-1)."""
    rows = await pool.fetch("select session_id, array_agg(seq order by seq) as seqs from turns "
                            "where session_id = any($1::uuid[]) group by session_id", sessions)
    bad = sum(1 for r in rows if list(r["seqs"]) != list(range(len(r["seqs"]))))
    return sum(len(r["seqs"]) for r in rows), bad


async def text_level(n: int, deps: Any, org_id: str, pool: Any) -> dict[str, Any]:
    from callwise.calls import SupportCall

    scripts = support_scripts()
    ttfw: list[float] = []
    started = 0
    sessions: list[str] = []

    async def one(i: int) -> None:
        nonlocal started
        call = await SupportCall.start(deps, organization_id=org_id, room=f"conc-text-{n}-{i}", modality="voice")
        sessions.append(call.session_id)
        try:
            for text in scripts[i % len(scripts)]:
                started += 1
                eos = time.perf_counter()
                first = None
                stream = call.turn(text, eos_at=eos)
                async for _ in stream:
                    if first is None:
                        first = (time.perf_counter() - eos) * 1000
                if first is not None:
                    ttfw.append(first)
        finally:
            await call.end()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    rows, bad = await _integrity(pool, sessions)
    return {"calls": n, "turns": started, "turns_lost": 2 * started - rows, "seq_collisions": bad,
            "ttfw_p50_ms": percentile(ttfw, 0.5), "ttfw_p95_ms": percentile(ttfw, 0.95), "wall_s": round(wall, 1)}


async def audio_level(n: int, deps: Any, org_id: str, pool: Any, stt: Any, vad: Any) -> dict[str, Any]:
    from callwise.agent.simulate import simulate_support

    t0 = time.perf_counter()
    reports = await asyncio.gather(*(simulate_support(ROOT / "examples" / "calls" / WAVS[i % len(WAVS)], deps=deps,
                                                      stt=stt, vad=vad, organization_id=org_id)
                                     for i in range(n)))
    wall = time.perf_counter() - t0
    ttfw = []
    turns = 0
    for r in reports:
        for t in r.turns:
            turns += 1
            lat = t.get("latencies_ms") or {}
            if "stt_ms" in lat and "first_token_ms" in lat:
                ttfw.append(lat["stt_ms"] + lat["first_token_ms"])
    rows, bad = await _integrity(pool, [r.session_id for r in reports if r.session_id])
    return {"calls": n, "turns": turns, "turns_lost": 2 * turns - rows, "seq_collisions": bad,
            "ttfw_p50_ms": percentile(ttfw, 0.5), "ttfw_p95_ms": percentile(ttfw, 0.95), "wall_s": round(wall, 1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from callwise.calls import SupportDeps
    from callwise.handoff.escalation import EscalationPolicy, EscalationRules
    from callwise.wiring.routing import build_router

    levels = [x for x in (int(v) for v in args.levels.split(",")) if x <= args.calls]
    out: dict[str, Any] = {"machine": cpu_note(), "target_ms": TARGET_MS, "text": [], "audio": []}
    async with AsyncExitStack() as stack:
        settings, pool, knowledge, org_id = await open_org(stack, Path(args.data_dir), "concurrency")
        router = build_router(settings, pool, knowledge.embedder)
        deps = SupportDeps(retriever=knowledge.retriever, router=router, pool=pool,
                           rules=EscalationRules(EscalationPolicy.from_settings(settings)))
        await text_level(1, deps, org_id, pool)  # warm-up: model caches, prepared statements
        for n in levels:
            out["text"].append(await text_level(n, deps, org_id, pool))
            _progress(args, "text", out["text"][-1])
        if not args.no_audio:
            from callwise.agent.voice import build_stt, build_vad

            stt, vad = build_stt(settings), build_vad(settings)
            await audio_level(1, deps, org_id, pool, stt, vad)  # warm-up
            for n in levels:
                out["audio"].append(await audio_level(n, deps, org_id, pool, stt, vad))
                _progress(args, "audio", out["audio"][-1])
        await router.aclose()
    for kind in ("text", "audio"):
        within = [r["calls"] for r in out[kind] if r["ttfw_p95_ms"] is not None and r["ttfw_p95_ms"] <= TARGET_MS]
        out[f"{kind}_calls_within_target"] = max(within) if within else 0
    return out


def _progress(args: argparse.Namespace, kind: str, r: dict[str, Any]) -> None:
    if not args.json:
        print(f"  {kind:5s} {r['calls']:3d} calls  {r['turns']:4d} turns  p50 {r['ttfw_p50_ms']} ms  "
              f"p95 {r['ttfw_p95_ms']} ms  lost {r['turns_lost']}  seq collisions {r['seq_collisions']}  "
              f"wall {r['wall_s']} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--levels", default="1,5,10,20")
    ap.add_argument("--no-audio", action="store_true")
    ap.add_argument("--data-dir", default="/tmp/callwise-concurrency")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.json:
        print("time to first word (p50/p95) with N simulated calls at once in one worker process")
    res = asyncio.run(run(args))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"machine: {res['machine']}; target p95 <= {TARGET_MS:.0f} ms: text holds "
          f"{res['text_calls_within_target']} calls, audio {res['audio_calls_within_target']}")


if __name__ == "__main__":
    main()
