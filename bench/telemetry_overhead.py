"""The cost of metrics and tracing on a support turn: p50 of a turn's wall time with telemetry on and off.

Plays the support scripts of examples/calls/scripts.json as text turns through the real stages (Postgres,
MiniLM, the offline router) with the Prometheus reader and every span exported (a batch span processor, as
OTLP export uses, into an in-memory exporter that keeps them all). ``--simple`` exports each span
synchronously as it ends instead (``SimpleSpanProcessor``: a debugging set-up, measured far slower). Telemetry is switched on and off between rounds of the same calls
(on, off, on, off ...), so both sides see the same machine load. One warm-up call runs first.

    OMP_NUM_THREADS=1 python bench/telemetry_overhead.py --rounds 6 --json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import KB_SUBSET, ROOT, cpu_note, percentile, support_scripts  # noqa: E402


async def main(args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from callwise.calls import SupportCall
    from callwise.infra import telemetry
    from callwise.wiring.agent import open_components_in
    from callwise.wiring.settings import Settings

    note = cpu_note()
    spans = InMemorySpanExporter()
    processor = SimpleSpanProcessor(spans) if args.simple else BatchSpanProcessor(spans)
    telemetry.setup_telemetry(span_processor=processor)
    async with AsyncExitStack() as stack:
        comp = await open_components_in(stack, Settings(data_dir=args.data_dir))
        org = await comp.runtime.org_id("bench-telemetry")
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            for rel in KB_SUBSET:
                await comp.knowledge.ingestor.ingest(f"examples/kb/{rel}", org)
        finally:
            os.chdir(cwd)
        deps = comp.support_deps()
        scripts = support_scripts()[: args.calls]

        async def one_round() -> list[float]:
            times = []
            for lines in scripts:
                call = await SupportCall.start(deps, organization_id=org, room="bench-telemetry", modality="voice")
                try:
                    for text in lines:
                        t = time.perf_counter()
                        await call.run_turn(text, eos_at=t)
                        times.append((time.perf_counter() - t) * 1000)
                finally:
                    await call.end()
            return times

        await one_round()  # warm-up (models, caches, prepared statements)
        on: list[float] = []
        off: list[float] = []
        for r in range(args.rounds):
            enabled = r % 2 == 0
            telemetry._state.enabled = enabled  # the providers stay installed; recording is what is switched
            (on if enabled else off).extend(await one_round())
        telemetry._state.enabled = True
        # the telemetry work alone, on a finished turn (no stage work): what it adds per turn
        call = await SupportCall.start(deps, organization_id=org, room="bench-telemetry", modality="voice")
        ctx = call.new_turn("How long does a refund take?")
        await call.pipeline.run(ctx)
        n = 2000
        t = time.perf_counter()
        for _ in range(n):
            telemetry.start_turn(ctx)
            for stage in call.pipeline.stages:
                with telemetry.stage(ctx, stage.name):
                    pass
            telemetry.end_turn(ctx)
        per_turn_us = (time.perf_counter() - t) / n * 1e6
        await call.end()
        processor.force_flush()
    p50_on, p50_off = statistics.median(on), statistics.median(off)
    return {"turns_per_side": len(on), "p50_on_ms": round(p50_on, 1), "p50_off_ms": round(p50_off, 1),
            "p95_on_ms": percentile(on, 0.95), "p95_off_ms": percentile(off, 0.95),
            "p50_overhead_ms": round(p50_on - p50_off, 2),
            "telemetry_alone_per_turn_us": round(per_turn_us, 1), "stages_per_turn": len(call.pipeline.stages) + 1,
            "span_processor": "simple" if args.simple else "batch", "spans_exported": len(spans.get_finished_spans()),
            "machine": note, "load_after": round(os.getloadavg()[0], 1)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds (even: on, odd: off)")
    ap.add_argument("--calls", type=int, default=6, help="support scripts per round")
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".callwise" / "bench-telemetry")
    ap.add_argument("--simple", action="store_true", help="export each span as it ends (SimpleSpanProcessor)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    result = asyncio.run(main(a))
    print(json.dumps(result) if a.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
