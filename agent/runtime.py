"""What a command or worker needs at run time: settings, logging and an open database."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator

import asyncpg

from agent.db import Database, ensure_organization
from agent.settings import Settings


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
        yield Runtime(settings=settings, pool=pool, db=db)
    finally:
        await db.close()
