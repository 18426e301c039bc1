"""Shared fixtures: one real Postgres for the whole test session.

With ``CALLWISE_TEST_DATABASE_URL`` set the tests use that server; otherwise they start the
embedded server (the same code path users get) under a temporary data directory.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from callwise.infra.db import EmbeddedPostgres, create_pool  # noqa: E402
from callwise.migrations.runner import migrate  # noqa: E402

# the support-call fixtures (knowledge base, router, deps) shared by calls/, handoff/, api/, cli/ and agent/ tests
pytest_plugins = ["tests.call_fixtures"]


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("CALLWISE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("callwise-data")))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def pg_pool(pg_url: str) -> AsyncIterator[object]:
    pool = await create_pool(pg_url, min_size=1, max_size=8)
    await migrate(pool)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def org_id(pg_pool) -> str:  # type: ignore[no-untyped-def]
    slug = "t-" + uuid.uuid4().hex[:12]
    row = await pg_pool.fetchrow("insert into organizations (slug, name) values ($1, $1) returning id", slug)
    return str(row["id"])


@pytest.fixture(scope="session")
def llama_gemma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """llama.cpp's own OpenAI-compatible server with the packaged Gemma 3 270M and a 1,024-token
    window, started once for the session (``tests.vendors.llama_server``); skips where the
    ``local-llm`` extra is missing. Tests that kill a server start their own."""
    from tests.vendors.llama_server import HAS_LLAMA_SERVER, SKIP_REASON, LlamaServer, gemma_path

    if not HAS_LLAMA_SERVER:
        pytest.skip(SKIP_REASON)
    model = gemma_path(tmp_path_factory.mktemp("models"))
    with LlamaServer.start(model, n_ctx=1024, log_dir=tmp_path_factory.mktemp("llama")) as srv:
        yield srv
