"""What a command or worker needs at run time: settings, logging and an open database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from callwise.infra.db import Database, ensure_organization
from callwise.wiring.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    db: Database

    async def org_id(self, slug: str | None = None) -> str:
        return await ensure_organization(self.pool, slug or self.settings.default_org)


@asynccontextmanager
async def open_runtime(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Runtime]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(
        url=settings.database_url.get_secret_value() if settings.database_url else None,
        data_dir=settings.data_dir,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        connect_timeout=settings.db_connect_timeout_s,
    )
    try:
        pool = await db.open(migrate=migrate)
        sweeper = _start_sweeper(settings, pool) if migrate else None
        try:
            yield Runtime(settings=settings, pool=pool, db=db)
        finally:
            await _stop_sweeper(sweeper, pool)
    finally:
        await db.close()


def _start_sweeper(settings: Settings, pool: asyncpg.Pool) -> asyncio.Task[None]:
    """Close sessions that dead workers left active: now, then every ``reaper_interval_s``."""
    from callwise.calls.reaper import run_periodically

    return asyncio.ensure_future(run_periodically(
        pool, interval_s=settings.reaper_interval_s, dead_after_s=settings.worker_dead_after_s,
        inactive_after_s=settings.session_inactive_after_s))


async def _stop_sweeper(sweeper: asyncio.Task[None] | None, pool: asyncpg.Pool) -> None:
    from callwise.calls.reaper import unregister_worker

    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(BaseException):
            await sweeper
    await unregister_worker(pool)
