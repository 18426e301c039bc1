"""The parts a command opens together, assembled in one place: the database, the knowledge base, the router.

Commands and benches take these instead of building the runtime, the knowledge store and the router by
hand, so every entry point gets the same parts with the same settings, and closes them in the same order
(the router's HTTP clients and the vector-store clients before the database pool).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from callwise.wiring.knowledge import Knowledge, build_knowledge, close_vector_stores
from callwise.wiring.runtime import Runtime, open_runtime
from callwise.wiring.settings import Settings


@dataclass
class KnowledgeStack:
    runtime: Runtime
    knowledge: Knowledge


@dataclass
class AnsweringStack(KnowledgeStack):
    router: Any  # CascadingRouter


@asynccontextmanager
async def open_knowledge(settings: Settings) -> AsyncIterator[KnowledgeStack]:
    """The database (migrated) and the organization-scoped knowledge base."""
    async with open_runtime(settings) as rt:
        try:
            yield KnowledgeStack(rt, build_knowledge(settings, rt.pool))
        finally:
            close_vector_stores()


@asynccontextmanager
async def open_answering(settings: Settings) -> AsyncIterator[AnsweringStack]:
    """The knowledge stack and the tiered router over it (``RoutingConfigError`` on a bad tier setup)."""
    from callwise.wiring.routing import build_router

    async with open_knowledge(settings) as kb:
        router = build_router(settings, kb.runtime.pool, kb.knowledge.embedder)
        try:
            yield AnsweringStack(kb.runtime, kb.knowledge, router)
        finally:
            await router.aclose()
