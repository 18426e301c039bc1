"""A call's shutdown runs in order: the call's writes finish before the pool closes (the framework
itself runs shutdown callbacks concurrently)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace

import asyncpg

from callwise.agent.shutdown import OrderedShutdown
from callwise.calls import SupportCall


async def test_steps_run_in_order_then_closing_steps_last_first() -> None:
    seen: list[str] = []
    shutdown = OrderedShutdown()

    def step(name: str, delay: float = 0.0, fail: bool = False):  # type: ignore[no-untyped-def]
        async def run() -> None:
            await asyncio.sleep(delay)
            if fail:
                raise RuntimeError(name)
            seen.append(name)
        return run

    shutdown.closing(step("pool"))
    shutdown.closing(step("dispatcher"))
    ctx = shutdown.job_context(SimpleNamespace(room="room-1"))
    ctx.add_shutdown_callback(step("call.end", delay=0.05))  # code written for a JobContext lands here
    shutdown.add(step("broken", fail=True))
    shutdown.add(step("survey"))
    assert ctx.room == "room-1"
    await shutdown.run("test")
    assert seen == ["call.end", "survey", "dispatcher", "pool"]  # a failing step does not stop the rest


async def test_call_end_writes_before_the_pool_closes(support_deps, kb_org, pg_url, pg_pool) -> None:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    deps = replace(support_deps, pool=pool)
    call = await SupportCall.start(deps, organization_id=kb_org, room="shutdown-order", modality="voice")
    await call.run_turn("How long does a refund take?")
    shutdown = OrderedShutdown()
    shutdown.closing(pool.close)
    shutdown.add(call.end)
    await shutdown.run()
    row = await pg_pool.fetchrow("select status, ended_at from sessions where id = $1", call.session_id)
    assert row["ended_at"] is not None and row["status"] == "ended"
    assert pool.is_closing()
