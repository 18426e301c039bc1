"""A job process as the framework runs one (``ProcJobExecutor``: a fresh process, the synchronous
setup hook, then the job loop), with a probe job that checks ``JobProcessParts`` opened an asyncpg pool
on that loop before the job came. Imported by the child process (module-level functions only)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from livekit.agents import JobContext, JobProcess
from livekit.agents.job import JobAcceptArguments, RunningJobInfo
from livekit.protocol import agent as agent_proto
from livekit.protocol import models

from callwise.agent.warm import JobProcessParts


def fake_job(metadata: dict[str, Any], room: str = "probe-room") -> RunningJobInfo:
    job = agent_proto.Job(id=f"job-{time.monotonic_ns()}", room=models.Room(name=room, sid="RM_probe"),
                          type=agent_proto.JobType.JT_ROOM, metadata=json.dumps(metadata))
    return RunningJobInfo(accept_arguments=JobAcceptArguments(identity="agent", name="", metadata=""), job=job,
                          url="", token="", worker_id="probe", fake_job=True, accepted_at=time.time())


async def run_one_job(setup: Callable[[JobProcess], Any], entry: Callable[[JobContext], Awaitable[None]],
                      info: RunningJobInfo, *, idle_s: float = 0.0, timeout_s: float = 120.0,
                      initialize_timeout: float = 60.0) -> None:
    """Start a job process, let it sit idle for ``idle_s`` (as the framework's idle pool does), give it the
    job, and wait for the process to end (it ends with its job)."""
    from livekit.agents.ipc.job_proc_executor import ProcJobExecutor

    proc = ProcJobExecutor(
        initialize_process_fnc=setup, job_entrypoint_fnc=entry, session_end_fnc=None, simulation_end_fnc=None,
        inference_executor=None, initialize_timeout=initialize_timeout, close_timeout=30, session_end_timeout=30,
        memory_warn_mb=0, memory_limit_mb=0, ping_interval=2.5, ping_timeout=60, high_ping_threshold=2.0,
        http_proxy=None, mp_ctx=multiprocessing.get_context("spawn"), loop=asyncio.get_running_loop())
    await proc.start()
    try:
        await proc.initialize()
        if idle_s:
            await asyncio.sleep(idle_s)
        info.accepted_at = time.time()
        await proc.launch_job(info)
        await asyncio.wait_for(proc.join(), timeout_s)
    finally:
        await proc.aclose()


# ------------------------------------------------------------------------------- the probe job
async def _open_pool(stack: AsyncExitStack, url: str, out: str) -> dict[str, Any]:
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)

    async def close() -> None:
        await pool.close()
        with open(out + ".closed", "w") as f:
            f.write("closed")

    stack.push_async_callback(close)
    return {"pool": pool, "opened_at": time.time(), "loop": id(asyncio.get_running_loop())}


def probe_setup(proc: JobProcess) -> None:
    import os

    url, out = os.environ["PROBE_PG_URL"], os.environ["PROBE_OUT"]
    parts = JobProcessParts(lambda stack: _open_pool(stack, url, out))
    parts.start_on_job_loop()
    proc.userdata["parts"] = parts
    proc.userdata["out"] = out


async def probe_entry(ctx: JobContext) -> None:
    started = time.time()
    parts: JobProcessParts = ctx.proc.userdata["parts"]
    ctx.add_shutdown_callback(parts.release)
    comp = await parts.components()
    value = await comp["pool"].fetchval("select 41 + 1")  # fails on a pool of another loop
    with open(ctx.proc.userdata["out"], "w") as f:
        json.dump({"started_before_job": parts.started_before_job, "opened_before_job": comp["opened_at"] < started,
                   "same_loop": comp["loop"] == id(asyncio.get_running_loop()), "value": value}, f)
    ctx.shutdown("probe done")
