"""How many live calls one worker holds: N calls at once, each in its own job process, started the way the
framework starts them.

    python bench/concurrency.py [--levels 1,2,4] [--turns 2] [--json] [--data-dir DIR]

For each level N the framework's own process pool (``livekit.agents.ipc.proc_pool.ProcPool``, job processes
from a forkserver as ``AgentServer`` makes them) prewarms N processes with the worker's setup hook
(``callwise.agent.worker.prewarm``: the models, one dummy inference each, the pool, knowledge store and
router opened on the job loop, one answer for the org), then gets N jobs at once. Each job takes the
process's warm parts (``callwise.agent.worker.process_parts``) and plays one sample call
(``examples/calls``, its first ``--turns`` customer utterances) in real time into the framework's
``AgentSession`` with the worker's STT, VAD, turn detection, TTS and line handlers
(``callwise.agent.live.simulate_live``): the caller waits for each answer before going on. Once the jobs
run, the pool warms no replacement processes, so only the calls share the CPU.

Per level: last spoken word to the agent's first audio (p50, p95, from the audio timeline of every
answered turn), the turns played, answered and lost (a customer utterance with no answer, or no stored
answer row), cut-ins, and the load average. A level holds when p95 is under the target (1.3 s) and no
turn was lost; ``holds`` is the largest such N. Every figure is an upper bound on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import ROOT, cpu_note, open_org, percentile  # noqa: E402

TARGET_P95_MS = 1300.0
WAVS = ["refund.wav", "password-reset.wav", "sso-okta.wav", "rate-limit-error.wav", "outage-escalation.wav"]


# ------------------------------------------------------------------------------ inside the job process
async def live_call_entry(ctx: Any) -> None:
    """The job: one recorded call, live, on the process's warm parts; the report goes to ``out``."""
    from callwise.agent.line import LineTimeouts
    from callwise.agent.live import simulate_live
    from callwise.agent.shutdown import OrderedShutdown
    from callwise.agent.voice import build_tts, stt_choice
    from callwise.agent.worker import process_parts

    spec = json.loads(ctx.job.metadata)
    out: dict[str, Any] = {"error": None, "pid": os.getpid()}
    parts = process_parts(ctx.proc)
    shutdown = OrderedShutdown()
    shutdown.closing(parts.release)
    try:
        comp = await parts.components()
        userdata = ctx.proc.userdata
        settings = userdata["settings"]
        org_id = await comp.runtime.org_id(spec["org"])
        out["parts_before_job"] = parts.started_before_job
        report = await simulate_live(spec["file"], deps=comp.support_deps(), stt=userdata["stt"], vad=userdata["vad"],
                                     tts=build_tts(settings), organization_id=org_id,
                                     turn_handling=userdata["turn_handling"], stt_name=stt_choice(settings),
                                     turn_detection_name=settings.turn_detection,
                                     timeouts=LineTimeouts.from_settings(settings), settings=settings)
        out.update(report.as_dict())
    except Exception as exc:  # noqa: BLE001 - reported with the level
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await shutdown.run("bench")
        Path(spec["out"]).write_text(json.dumps(out, default=str))
        ctx.shutdown("call played")


# ------------------------------------------------------------------------------ the calls
def trimmed_calls(dest: Path, turns: int) -> list[tuple[Path, int]]:
    """Each sample call cut to its first ``turns`` customer utterances, with a manifest beside them."""
    from callwise.infra.audio import load_audio, write_wav

    manifest = json.loads((ROOT / "examples" / "calls" / "manifest.json").read_text())
    entries, out = [], []
    for name in WAVS:
        entry = next(c for c in manifest["calls"] if c["file"] == name)
        utts = entry["utterances"][:turns]
        clip = load_audio(ROOT / "examples" / "calls" / name)
        end = utts[-1]["end_s"] + 1.0
        write_wav(dest / name, clip.samples[:int(end * clip.sample_rate)])
        entries.append({**entry, "utterances": utts, "duration_s": round(end, 3)})
        out.append((dest / name, len(utts)))
    (dest / "manifest.json").write_text(json.dumps({"sample_rate": 16000, "calls": entries}))
    return out


def fake_job(metadata: dict[str, Any], room: str) -> Any:
    from livekit.agents.job import JobAcceptArguments, RunningJobInfo
    from livekit.protocol import agent as agent_proto
    from livekit.protocol import models

    job = agent_proto.Job(id=f"job-{time.monotonic_ns()}", room=models.Room(name=room, sid=f"RM_{room}"),
                          type=agent_proto.JobType.JT_ROOM, metadata=json.dumps(metadata))
    return RunningJobInfo(accept_arguments=JobAcceptArguments(identity="agent", name="", metadata=""), job=job,
                          url="", token="", worker_id="bench-concurrency", fake_job=True, accepted_at=time.time())


# ------------------------------------------------------------------------------ one level
async def run_level(n: int, calls: list[tuple[Path, int]], slug: str, tmp: Path, pool_db: Any,
                    timeout_s: float) -> dict[str, Any]:
    from livekit.agents.ipc.proc_pool import ProcPool
    from livekit.agents.job import JobExecutorType

    from callwise.agent.worker import PREWARM_TIMEOUT_S, prewarm

    ready: list[float] = []
    closed: list[float] = []
    procs = ProcPool(initialize_process_fnc=prewarm, job_entrypoint_fnc=live_call_entry, session_end_fnc=None,
                     simulation_end_fnc=None, num_idle_processes=n, initialize_timeout=PREWARM_TIMEOUT_S * 2,
                     close_timeout=60, session_end_timeout=30, inference_executor=None,
                     job_executor_type=JobExecutorType.PROCESS, mp_ctx=multiprocessing.get_context("forkserver"),
                     memory_warn_mb=0, memory_limit_mb=0, http_proxy=None, loop=asyncio.get_running_loop())
    procs.on("process_ready", lambda _p: ready.append(time.time()))
    procs.on("process_closed", lambda _p: closed.append(time.time()))
    t0 = time.perf_counter()
    await procs.start()
    while len(ready) < n and time.perf_counter() - t0 < PREWARM_TIMEOUT_S * 2 * n:
        await asyncio.sleep(0.2)
    prewarm_s = time.perf_counter() - t0
    procs.set_target_idle_processes(0)  # no replacement warms up beside the calls
    load_before = os.getloadavg()[0]
    outs = [tmp / f"level{n}-call{i}.json" for i in range(n)]
    expected = 0
    t1 = time.perf_counter()
    for i in range(n):
        path, turns = calls[i % len(calls)]
        expected += turns
        await procs.launch_job(fake_job({"org": slug, "file": str(path), "out": str(outs[i])}, f"bench-{n}-{i}"))
    while not all(o.exists() for o in outs) and time.perf_counter() - t1 < timeout_s:
        await asyncio.sleep(0.5)
    wall = time.perf_counter() - t1
    load_after = os.getloadavg()[0]
    await procs.aclose()
    reports = [json.loads(o.read_text()) if o.exists() else {"error": "no result (timed out)"} for o in outs]
    return summarize(n, reports, expected, await stored_answers(pool_db, reports), prewarm_s=prewarm_s, wall_s=wall,
                     load=(load_before, load_after), ready=len(ready))


async def stored_answers(pool_db: Any, reports: list[dict[str, Any]]) -> int:
    sessions = [r["session_id"] for r in reports if r.get("session_id")]
    if not sessions:
        return 0
    return int(await pool_db.fetchval(
        "select count(*) from turns where session_id = any($1::uuid[]) and role = 'assistant'", sessions))


def summarize(n: int, reports: list[dict[str, Any]], expected: int, stored: int, *, prewarm_s: float,
              wall_s: float, load: tuple[float, float], ready: int) -> dict[str, Any]:
    lat, answered, cut_ins = [], 0, 0
    parts: dict[str, list[float]] = {}
    for r in reports:
        for t in r.get("turns", []):
            if not (t.get("customer_said") or "").strip():
                continue  # a line the agent said on its own (a silence prompt), not an answer
            answered += 1
            cut_ins += bool(t.get("cut_in"))
            for key, v in (t.get("latencies_ms") or {}).items():
                if v is not None:
                    parts.setdefault(key, []).append(v)
            v = (t.get("latencies_ms") or {}).get("last_word_to_first_audio")
            if v is not None:
                lat.append(v)
    lost = max(0, expected - answered)  # a customer utterance no answer followed
    unstored = max(0, answered - stored)  # an answer heard but not stored
    p95 = percentile(lat, 0.95)
    return {"calls": n, "processes_ready": ready, "turns": expected, "answered": answered,
            "turns_lost": lost + unstored, "answers_not_stored": unstored, "cut_ins": cut_ins,
            "last_word_to_first_audio_p50_ms": percentile(lat, 0.5), "last_word_to_first_audio_p95_ms": p95,
            "samples": len(lat),
            "parts_p50_ms": {k: percentile(v, 0.5) for k, v in parts.items()},  # the framework's metrics per turn
            "within_target": p95 is not None and p95 < TARGET_P95_MS and lost + unstored == 0,
            "prewarm_s": round(prewarm_s, 1), "calls_wall_s": round(wall_s, 1),
            "load_before": round(load[0], 2), "load_after": round(load[1], 2),
            "errors": [r["error"] for r in reports if r.get("error")],
            "pids": sorted({r.get("pid") for r in reports if r.get("pid")})}


# ------------------------------------------------------------------------------ driver
async def run(args: argparse.Namespace) -> dict[str, Any]:
    levels = [int(x) for x in args.levels.split(",")]
    report: dict[str, Any] = {"target_p95_ms": TARGET_P95_MS, "cpu": cpu_note(), "turns_per_call": args.turns,
                              "levels": []}
    async with AsyncExitStack() as stack:
        settings, pool_db, _, _ = await open_org(stack, args.data_dir, args.org)  # the database stays up throughout
        os.environ["CALLWISE_DEFAULT_ORG"] = args.org  # the org each process warms an answer for
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            calls = trimmed_calls(tmp, args.turns)
            for n in levels:
                row = await run_level(n, calls, args.org, tmp, pool_db, args.timeout_s)
                report["levels"].append(row)
                print(f"N={n}: p50 {row['last_word_to_first_audio_p50_ms']} ms, p95 "
                      f"{row['last_word_to_first_audio_p95_ms']} ms over {row['samples']} turns, lost "
                      f"{row['turns_lost']}, cut-ins {row['cut_ins']}, load {row['load_before']}->{row['load_after']}"
                      f"{', errors ' + str(row['errors']) if row['errors'] else ''}", file=sys.stderr, flush=True)
    held = [r["calls"] for r in report["levels"] if r["within_target"]]
    report["holds"] = max(held) if held else 0
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1,2,4", help="Concurrent calls per level, comma-separated.")
    ap.add_argument("--turns", type=int, default=2, help="Customer utterances played per call.")
    ap.add_argument("--org", default="bench-concurrency")
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".callwise" / "bench-concurrency")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="Longest a level's calls may take.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ["CALLWISE_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ.setdefault("CALLWISE_TTS", "espeak")
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2) if args.json else
          f"one worker holds {report['holds']} concurrent call(s) within p95 < {TARGET_P95_MS:.0f} ms")


if __name__ == "__main__":
    main()
