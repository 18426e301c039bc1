"""Sessions a dead worker left active are closed as `abandoned`, with what was said; live ones are not.

The crash test kills a real process mid-call: it runs a SupportCall whose router waits on a local
OpenAI-wire server that never answers, and gets SIGKILL after the customer's turn is stored."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from callwise.calls.reaper import reap_once, register_worker
from tests.vendors._http import Reply
from tests.vendors.openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]

CALL = textwrap.dedent("""
    import asyncio, os, sys
    from callwise.infra.db import create_pool
    from callwise.calls import SupportCall, SupportDeps
    from callwise.routing.providers.openai import OpenAIProvider
    from callwise.routing.router import CascadingRouter, Tier

    async def main():
        pool = await create_pool(os.environ["T_PG"], min_size=1, max_size=2)
        router = CascadingRouter([Tier("tier1", OpenAIProvider("m", api_key="x", base_url=os.environ["T_LLM"]))],
                                 first_word_s=None, timeout_s=120)
        call = await SupportCall.start(SupportDeps(retriever=None, router=router, pool=pool),
                                       organization_id=os.environ["T_ORG"], room="crash")
        print(call.session_id, flush=True)
        await call.run_turn("How long does a refund take to reach my card?")  # the model never answers
    asyncio.run(main())
""")


async def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await predicate():
        assert loop.time() < end, "timed out waiting"
        await asyncio.sleep(0.1)


async def test_worker_killed_mid_call_leaves_an_abandoned_session(pg_url, pg_pool, org_id) -> None:
    fake = FakeOpenAI().start()
    for _ in range(3):
        fake.enqueue(Reply(200, {}, delay_s=60))
    env = {**os.environ, "T_PG": pg_url, "T_LLM": fake.base_url, "T_ORG": org_id, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CALL], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=120)  # type: ignore[union-attr]
        session_id = line.strip()
        assert session_id, proc.stderr.read() if proc.poll() is not None else "no session id"  # type: ignore[union-attr]

        async def mid_call() -> bool:
            return bool(fake.chat_requests) and await pg_pool.fetchval(
                "select count(*) from turns where session_id = $1", session_id) == 1
        await _wait_for(mid_call)
        assert not [r for r in await reap_once(pg_pool) if r.session_id == session_id], "a live call is left alone"
        assert await pg_pool.fetchval("select status from sessions where id = $1", session_id) == "active"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fake.stop()

    reaped = [r for r in await reap_once(pg_pool) if r.session_id == session_id]
    assert len(reaped) == 1 and reaped[0].reason == "worker_gone" and reaped[0].turns == 1 and reaped[0].unanswered
    row = await pg_pool.fetchrow("select * from sessions where id = $1", session_id)
    assert row["status"] == "abandoned" and row["ended_at"] is not None and row["resolved_by_ai"] is False
    meta = json.loads(row["metadata"])["abandoned"]
    assert meta["last_customer_words"] == "How long does a refund take to reach my card?" and meta["unanswered"]
    turns = await pg_pool.fetch("select role, text from turns where session_id = $1", session_id)
    assert [t["role"] for t in turns] == ["user"], "what was said is kept"
    assert not await reap_once(pg_pool) or session_id not in {r.session_id for r in await reap_once(pg_pool)}


async def _session(pool, org_id: str, worker_id: str | None, age_s: float = 0.0) -> str:  # type: ignore[no-untyped-def]
    return str(await pool.fetchval(
        "insert into sessions (organization_id, room, kind, worker_id, started_at) "
        "values ($1, 'r', 'support', $2, now() - make_interval(secs => $3)) returning id", org_id, worker_id, age_s))


async def test_which_sessions_the_sweep_closes(pg_pool, org_id) -> None:
    own = await _session(pg_pool, org_id, await register_worker(pg_pool))
    tag = uuid.uuid4().hex[:8]
    await pg_pool.execute("insert into workers (id, host, pid, heartbeat_at) values "
                          "($1, 'elsewhere', 4242, now()), ($2, 'elsewhere', 4243, now() - interval '5 minutes')",
                          f"fresh-{tag}", f"stale-{tag}")
    fresh = await _session(pg_pool, org_id, f"fresh-{tag}")
    stale = await _session(pg_pool, org_id, f"stale-{tag}")
    unknown = await _session(pg_pool, org_id, f"unregistered-{tag}")
    old_unowned = await _session(pg_pool, org_id, None, age_s=5 * 3600)
    new_unowned = await _session(pg_pool, org_id, None)
    reaped = {r.session_id: r for r in await reap_once(pg_pool, dead_after_s=60)}
    assert stale in reaped and unknown in reaped and old_unowned in reaped
    assert reaped[old_unowned].reason == "inactive" and reaped[stale].reason == "worker_gone"
    assert own not in reaped and fresh not in reaped and new_unowned not in reaped
    status = {str(r["id"]): r["status"] for r in await pg_pool.fetch(
        "select id, status from sessions where organization_id = $1", org_id)}
    assert status[own] == status[fresh] == status[new_unowned] == "active"
    assert await pg_pool.fetchval("select count(*) from workers where id = $1", f"stale-{tag}") == 0
