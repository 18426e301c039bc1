"""Fixtures of the support-call tests (calls, handoff, api, cli, agent): heavy models load once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CALLS = Path(__file__).resolve().parents[1] / "examples" / "calls"


@pytest.fixture(scope="session")
def whisper_stt():  # type: ignore[no-untyped-def]
    from callwise.agent.plugins.stt_whisper import WhisperSTT

    return WhisperSTT(model="tiny.en", cpu_threads=2)


@pytest.fixture(scope="session")
def calls_manifest() -> dict:
    return json.loads((CALLS / "manifest.json").read_text())


# a few articles of the sample KB: enough for the agent tests, ingested once (the whole KB takes minutes)
KB_SUBSET = ["billing/refunds.md", "accounts/reset-password.md", "sso/okta-setup.md", "plans/sla-and-service-credits.md"]


@pytest.fixture(scope="session")
def agent_settings(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from callwise.wiring.settings import Settings

    return Settings(data_dir=tmp_path_factory.mktemp("agent-data"), _env_file=None)


@pytest.fixture(scope="session")
async def knowledge(agent_settings, pg_pool):  # type: ignore[no-untyped-def]
    from callwise.wiring.knowledge import build_knowledge, close_vector_stores

    kn = build_knowledge(agent_settings, pg_pool)
    yield kn
    close_vector_stores()


@pytest.fixture(scope="session")
async def kb_org(knowledge, pg_pool) -> str:  # type: ignore[no-untyped-def]
    """An organization with the KB subset ingested, sources named as `callwise ingest examples/kb` names them."""
    import os
    import uuid

    root = Path(__file__).resolve().parents[1]
    slug = "kb-" + uuid.uuid4().hex[:10]
    org = str(await pg_pool.fetchval("insert into organizations (slug, name) values ($1, $1) returning id", slug))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for rel in KB_SUBSET:
            report = await knowledge.ingestor.ingest(f"examples/kb/{rel}", org)
            assert report.counts["added"] == 1
    finally:
        os.chdir(cwd)
    return org


@pytest.fixture(scope="session")
def router(agent_settings, pg_pool, knowledge):  # type: ignore[no-untyped-def]
    from callwise.wiring.routing import build_router

    return build_router(agent_settings, pg_pool, knowledge.embedder)


@pytest.fixture
def support_deps(knowledge, router, pg_pool, agent_settings):  # type: ignore[no-untyped-def]
    from callwise.calls import SupportDeps
    from callwise.handoff.escalation import EscalationPolicy, EscalationRules

    return SupportDeps(retriever=knowledge.retriever, router=router, pool=pg_pool,
                       rules=EscalationRules(EscalationPolicy.from_settings(agent_settings)))
