"""Close the sessions a dead worker left ``active``: status ``abandoned``, with what was said.

Every process that starts a session registers itself in ``workers`` (id ``host:pid:nonce``) the
first time it does (``register_worker``, called by ``ConversationStore.start_session``), writes its
id on the session and beats a heartbeat every ``heartbeat_s``. A sweep (``reap_once``) closes the
active sessions whose worker is gone:

* the worker's row is missing (it shut down cleanly but left a session open), or
* it runs on this host and its pid no longer exists (found at once, e.g. at the next start), or
* it runs on another host and its heartbeat is older than ``dead_after_s`` (crash, lost machine);

and sessions with no worker recorded (written before migration 0005) once nothing happened in
them for ``inactive_after_s``. An abandoned session keeps its turns; ``ended_at`` is its last turn
and ``metadata.abandoned`` says why, how many turns were stored, the customer's last words and
whether they were left unanswered. ``open_runtime`` sweeps at start and every ``interval_s``.

The sweep is an operator job across organizations: each row is updated in place, nothing is read
from one organization into another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from callwise.infra.db import pid_alive

log = logging.getLogger("callwise.reaper")

HEARTBEAT_S = 10.0
DEAD_AFTER_S = 60.0
INACTIVE_AFTER_S = 4 * 3600.0


@dataclass(frozen=True)
class Reaped:
    session_id: str
    organization_id: str
    kind: str
    reason: str
    turns: int
    unanswered: bool


class WorkerRegistration:
    """This process's row in ``workers`` and its heartbeat task."""

    def __init__(self, pool: Any, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.pool = pool
        self.heartbeat_s = heartbeat_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._ready: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None

    async def _upsert(self) -> None:
        await self.pool.execute(
            "insert into workers (id, host, pid) values ($1, $2, $3) "
            "on conflict (id) do update set heartbeat_at = now()", self.id, self.host, self.pid)

    async def ensure(self) -> str:
        if self._ready is None:
            self._ready = asyncio.ensure_future(self._upsert())
        await asyncio.shield(self._ready)
        if self._beat is None or self._beat.done():
            self._beat = asyncio.ensure_future(self._heartbeat())
        return self.id

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if getattr(self.pool, "_closing", False) or getattr(self.pool, "_closed", False):
                return  # the process is shutting down its pool
            try:
                await self._upsert()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried on the next tick
                log.warning("worker heartbeat failed: %s", exc)

    async def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(BaseException):
                await self._beat
        if self._ready is not None and self._ready.done() and not self._ready.exception():
            with contextlib.suppress(Exception):
                await self.pool.execute("delete from workers where id = $1", self.id)


_REGISTRATIONS: dict[int, WorkerRegistration] = {}


async def register_worker(pool: Any) -> str:
    """This process's worker id for sessions started on ``pool`` (registered on first use)."""
    reg = _REGISTRATIONS.get(id(pool))
    if reg is None or reg.pool is not pool:
        reg = _REGISTRATIONS[id(pool)] = WorkerRegistration(pool)
    return await reg.ensure()


async def unregister_worker(pool: Any) -> None:
    reg = _REGISTRATIONS.pop(id(pool), None)
    if reg is not None and reg.pool is pool:
        await reg.close()


async def dead_workers(pool: Any, *, dead_after_s: float = DEAD_AFTER_S) -> list[str]:
    """Ids of workers that hold active sessions but are gone (never this process's own)."""
    own = {r.id for r in _REGISTRATIONS.values()}
    rows = await pool.fetch(
        "select s.worker_id, w.host, w.pid, extract(epoch from now() - w.heartbeat_at)::float8 as age "
        "from (select distinct worker_id from sessions where status = 'active' and worker_id is not null) s "
        "left join workers w on w.id = s.worker_id")
    host = socket.gethostname()
    dead = []
    for r in rows:
        wid = r["worker_id"]
        if wid in own:
            continue
        if r["host"] is None:
            dead.append(wid)  # unregistered: shut down (or reaped) without closing the session
        elif r["host"] == host:
            if not pid_alive(r["pid"]):  # authoritative on this host: a busy loop is not a dead worker
                dead.append(wid)
        elif r["age"] is not None and r["age"] > dead_after_s:
            dead.append(wid)
    return dead


_ABANDON = """
with target as (
    select s.id from sessions s
    where s.status = 'active' and (
        s.worker_id = any($1::text[])
        or (s.worker_id is null and greatest(s.started_at, coalesce(
              (select max(t.created_at) from turns t where t.session_id = s.id), s.started_at))
            < now() - make_interval(secs => $2)))
    for update skip locked
), facts as (
    select tg.id,
           (select count(*) from turns t where t.session_id = tg.id) as n_turns,
           (select max(t.created_at) from turns t where t.session_id = tg.id) as last_at,
           (select t.text from turns t where t.session_id = tg.id and t.role = 'user'
             order by t.seq desc limit 1) as last_words,
           coalesce((select t.role = 'user' from turns t where t.session_id = tg.id
             order by t.seq desc limit 1), false) as unanswered
    from target tg
)
update sessions s set
    status = 'abandoned',
    resolved_by_ai = false,
    ended_at = greatest(s.started_at, coalesce(f.last_at, s.started_at)),
    metadata = s.metadata || jsonb_build_object('abandoned', jsonb_build_object(
        'reason', case when s.worker_id is null then 'inactive' else 'worker_gone' end,
        'worker_id', s.worker_id, 'reaped_at', now(), 'turns', f.n_turns,
        'last_customer_words', f.last_words, 'unanswered', f.unanswered))
from facts f
where s.id = f.id and s.status = 'active'
returning s.id, s.organization_id, s.kind, s.worker_id, f.n_turns, f.unanswered
"""


async def reap_once(pool: Any, *, dead_after_s: float = DEAD_AFTER_S,
                    inactive_after_s: float = INACTIVE_AFTER_S) -> list[Reaped]:
    """One sweep: close the sessions of dead workers (and long-inactive unowned ones) as abandoned."""
    dead = await dead_workers(pool, dead_after_s=dead_after_s)
    rows = await pool.fetch(_ABANDON, dead, float(inactive_after_s))
    if dead:
        await pool.execute("delete from workers where id = any($1::text[])", dead)
    reaped = [Reaped(str(r["id"]), str(r["organization_id"]), r["kind"],
                     "inactive" if r["worker_id"] is None else "worker_gone", int(r["n_turns"]),
                     bool(r["unanswered"])) for r in rows]
    for r in reaped:
        log.warning("session %s abandoned (%s, %d turns%s)", r.session_id, r.reason, r.turns,
                    ", the customer's last words unanswered" if r.unanswered else "")
    return reaped


async def run_periodically(pool: Any, *, interval_s: float = 30.0, dead_after_s: float = DEAD_AFTER_S,
                           inactive_after_s: float = INACTIVE_AFTER_S) -> None:
    """Sweep now and then every ``interval_s`` until cancelled; a failed sweep is logged, not fatal."""
    while True:
        try:
            await reap_once(pool, dead_after_s=dead_after_s, inactive_after_s=inactive_after_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. migrations not applied yet, or the DB is restarting
            log.warning("session sweep failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(interval_s)
