"""An organization with some of the sample KB's error-code pages ingested, as ``callwise ingest examples/kb`` names
them (shared by the shared-screen tests in tests/calls and tests/agent)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ERROR_PAGES = ("e-1042-session-expired.md", "e-4290-rate-limit-exceeded.md", "e-5003-service-unavailable.md")


async def error_pages_org(knowledge: Any, pg_pool: Any, pages: tuple[str, ...] = ERROR_PAGES,
                          prefix: str = "screens") -> str:
    org = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id",
                                     f"{prefix}-{uuid.uuid4().hex[:8]}"))
    cwd = os.getcwd()
    os.chdir(ROOT)  # sources are named relative to the repository, as the CLI names them
    try:
        for page in pages:
            await knowledge.ingestor.ingest(f"examples/kb/error-codes/{page}", org)
    finally:
        os.chdir(cwd)
    return org
