"""Call pickup: from the job accepted to the greeting's first audio frame, in a job process as the framework
runs one (``ProcJobExecutor``: a fresh process, the setup hook, an idle wait in the pool, then the job).

    python bench/pickup.py --json [--sizes 10000 100000] [--runs 3] [--data-dir DIR]

For each size an organization gets that many chunks with random unit MiniLM-sized vectors (384
dimensions; real texts are not needed for timing) in the embedded Postgres under ``--data-dir`` (kept
between runs), and is the worker's default organization. Two ways a job is served:

* ``before``: what the worker did until issue 20. Its setup hook loads the models; the job opens the
  pool, the knowledge store, the router and an outbox dispatcher, and its first retrieval loads the
  org's vectors from Postgres (exact search, no index file);
* ``after``: ``callwise.agent.worker.prewarm`` as the worker runs it: the parts open on the job loop while
  the process idles, one answer has run for the org, and vectors come from the memory-mapped index file.

Both then run the worker's own call path (``open_support_session``: the call record, the CRM lookup, the
TTS and the ``AgentSession``) with an audio output that records each frame. ``pickup_s`` is job accepted
to the greeting's first frame; ``first_answer_s`` adds one question asked at once (retrieval and answer,
not spoken). The room connection is not in these figures (no LiveKit server here); a job connects to
its room while the parts are awaited.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import ROOT  # noqa: E402

DIM = 384
QUESTION = "How do I reset my password?"


# ------------------------------------------------------------------------------ the bench org
async def prepare(settings: Any, size: int) -> dict[str, Any]:
    """An org with ``size`` chunks (made once) and its index file (refreshed when stale)."""
    import numpy as np

    from callwise.infra.db import ensure_organization
    from callwise.knowledge.embedders.reembed import model_name
    from callwise.knowledge.pgstore import PgKnowledgeStore
    from callwise.knowledge.types import ChunkRecord
    from callwise.wiring.knowledge import get_embedder, vector_indexes
    from callwise.wiring.runtime import open_runtime

    slug = f"pickup-{size}"
    async with open_runtime(settings) as rt:
        org = await ensure_organization(rt.pool, slug)
        store = PgKnowledgeStore(rt.pool, DIM, model_name(get_embedder(settings)), ann=vector_indexes(settings))
        have = await rt.pool.fetchval("select count(*) from chunks where organization_id = $1 and kind = 'child'",
                                      org)
        rng = np.random.default_rng(size)
        words = [f"w{i}" for i in range(3000)] + QUESTION.lower().strip("?").split()
        t = time.perf_counter()
        batch = 2000
        while have < size:
            n = min(batch, size - have)
            async with rt.pool.acquire() as conn, conn.transaction():
                doc = str(await conn.fetchval(
                    "insert into documents (organization_id, source, title, mime_type, content_hash, size_bytes)"
                    " values ($1, $2, 'synthetic', 'text/plain', $3, 1) returning id", org,
                    f"synthetic/{uuid.uuid4().hex}.md", uuid.uuid4().hex))
                parents, children, texts = [], [], []
                for i in range(n):
                    if i % 4 == 0:
                        pid = str(uuid.uuid4())
                        parents.append(ChunkRecord(pid, doc, "parent", i // 4, "", 40, ("Synthetic",)))
                    text = " ".join(rng.choice(words, 40))
                    texts.append(text)
                    children.append(ChunkRecord(str(uuid.uuid4()), doc, "child", i, text, 40, ("Synthetic",),
                                                parent_id=pid))
                vecs = rng.standard_normal((n, DIM)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                pvecs = vecs[::4].copy()
                for p, c in zip(parents, range(0, n, 4), strict=True):
                    p.text = " ".join(texts[c:c + 4])
                await store.write_chunks(conn, org, "synthetic", parents, children, texts, vecs, pvecs)
            have += n
        synth_s = time.perf_counter() - t
        index = await store.refresh_index(org)
        return {"org": slug, "chunks": int(have), "synthesized_s": round(synth_s, 1), "index": index}


# ------------------------------------------------------------------------------ inside the job process
def before_setup(proc: Any) -> None:
    """The worker's setup hook until issue 20: the models only; no index files."""
    import callwise.wiring.knowledge as wk
    from callwise.agent.voice import build_stt, build_turn_handling, build_vad
    from callwise.agent.warm import warm_models
    from callwise.wiring.settings import Settings

    wk.vector_indexes = lambda settings: None  # type: ignore[assignment,return-value]  # exact search, per-call load
    settings = Settings()
    proc.userdata.update(settings=settings, vad=build_vad(settings), stt=build_stt(settings),
                         turn_handling=build_turn_handling(settings, settings.turn_detection))
    warm_models(stt=proc.userdata["stt"], vad=proc.userdata["vad"], embedder=wk.get_embedder(settings),
                turn_detector=proc.userdata["turn_handling"]["turn_detection"])


async def before_entry(ctx: Any) -> None:
    from contextlib import AsyncExitStack

    from callwise.agent.shutdown import OrderedShutdown
    from callwise.wiring.agent import open_components_in
    from callwise.wiring.integrations import running_dispatcher

    shutdown = OrderedShutdown()
    stack = AsyncExitStack()
    shutdown.closing(stack.aclose)
    comp = await open_components_in(stack, ctx.proc.userdata["settings"])
    await stack.enter_async_context(running_dispatcher(comp.settings, comp.pool))
    await _call(ctx, comp, shutdown)


async def after_entry(ctx: Any) -> None:
    from callwise.agent.shutdown import OrderedShutdown
    from callwise.agent.worker import process_parts

    parts = process_parts(ctx.proc)
    shutdown = OrderedShutdown()
    shutdown.closing(parts.release)
    comp = await parts.components()
    await _call(ctx, comp, shutdown, opened_s=parts.opened_s, before_job=parts.started_before_job)


async def _call(ctx: Any, comp: Any, shutdown: Any, **extra: Any) -> None:
    from callwise.agent.live import RecordingAudioOutput
    from callwise.agent.worker import open_support_session

    accepted = ctx.job.metadata and json.loads(ctx.job.metadata)
    out: dict[str, Any] = {"error": None, **extra}
    try:
        org_id = await comp.runtime.org_id(accepted["org"])
        caller = SimpleNamespace(identity="caller", attributes={}, metadata="", name="Caller", track_publications={})

        async def publish(_event: dict[str, Any]) -> None:
            return None

        call, session, agent = await open_support_session(
            comp, org_id, ctx.proc.userdata, caller, room_name=ctx.room.name, job_metadata=ctx.job.metadata,
            room_metadata="", on_event=publish, add_shutdown=shutdown.add)
        output = RecordingAudioOutput(session)
        session.output.audio = output
        await session.start(agent, record=False)
        while not output.segments:
            await asyncio.sleep(0.002)
        out["pickup_s"] = round(output.segments[0].started_wall - ctx._info.accepted_at, 3)
        await call.run_turn(QUESTION)
        out["first_answer_s"] = round(time.time() - ctx._info.accepted_at, 3)
        out["index_file"] = comp.knowledge.vectors.store.ann is not None
        out["vector_loads"] = comp.knowledge.vectors.store.reloads
    except Exception as exc:  # noqa: BLE001 - reported
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await shutdown.run("bench")
        Path(accepted["out"]).write_text(json.dumps(out))
        ctx.shutdown("bench done")


# ------------------------------------------------------------------------------ driver
async def one_run(mode: str, slug: str, idle_s: float) -> dict[str, Any]:
    from callwise.agent.worker import PREWARM_TIMEOUT_S, prewarm
    from tests.agent.job_process_probe import fake_job, run_one_job

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        setup, entry = (before_setup, before_entry) if mode == "before" else (prewarm, after_entry)
        await run_one_job(setup, entry, fake_job({"org": slug, "out": str(out)}), idle_s=idle_s, timeout_s=300,
                          initialize_timeout=PREWARM_TIMEOUT_S)
        return json.loads(out.read_text()) if out.exists() else {"error": "no result"}


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every size and mode, with the database up throughout (a deployment's Postgres does not start per
    call; the embedded one stops when its last user leaves, so this process stays one)."""
    from callwise.wiring.runtime import open_runtime
    from callwise.wiring.settings import Settings

    report: dict[str, Any] = {"load_before": os.getloadavg()[0], "sizes": {}}
    async with open_runtime(Settings()):
        for size in args.sizes:
            prep = await prepare(Settings(), size)
            print(f"{size:>7} chunks: {prep}", file=sys.stderr, flush=True)
            os.environ["CALLWISE_DEFAULT_ORG"] = prep["org"]  # the org the worker warms (one-org deployment)
            entry: dict[str, Any] = {"prepare": prep}
            for mode in args.modes:
                runs = [await one_run(mode, prep["org"], args.idle_s) for _ in range(args.runs)]
                ok = [r for r in runs if not r.get("error")]
                entry[mode] = {"pickup_s": sorted(r["pickup_s"] for r in ok),
                               "first_answer_s": sorted(r["first_answer_s"] for r in ok), "runs": runs}
                print(f"{size:>7} chunks {mode:>6}: pickup {entry[mode]['pickup_s']} s, "
                      f"first answer {entry[mode]['first_answer_s']} s", file=sys.stderr, flush=True)
            report["sizes"][str(size)] = entry
    report["load_after"] = os.getloadavg()[0]
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", nargs="+", default=["before", "after"], choices=["before", "after"])
    ap.add_argument("--idle-s", type=float, default=20.0, help="How long a job process idles before its job.")
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".callwise" / "bench-pickup")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ["CALLWISE_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ.setdefault("CALLWISE_TTS", "espeak")
    report = asyncio.run(run_all(args))
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
