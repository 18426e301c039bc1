"""Settings -> the objects a support call or a meeting needs (shared by worker, simulate and bench)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from callwise.calls import SupportDeps
from callwise.calls.meeting import MeetingDeps
from callwise.calls.stages.send_offer import CommandSender
from callwise.handoff.escalation import EscalationPolicy, EscalationRules
from callwise.handoff.judge import EscalationJudge
from callwise.wiring.integrations import caller_service, credential_store, handoff_escalator
from callwise.wiring.runtime import Runtime, open_runtime
from callwise.wiring.settings import Settings


@dataclass
class Components:
    settings: Settings
    runtime: Runtime
    knowledge: Any  # callwise.wiring.knowledge.Knowledge
    router: Any  # callwise.routing.router.CascadingRouter
    warmed_org: str | None = None  # the organization whose answer path ran once before any call (the worker)
    warmup_answer_s: float | None = None

    @property
    def pool(self) -> Any:
        return self.runtime.pool

    def support_deps(self) -> SupportDeps:
        s = self.settings
        return SupportDeps(retriever=self.knowledge.retriever, router=self.router, pool=self.pool,
                           rules=EscalationRules.with_embedder(EscalationPolicy.from_settings(s),
                                                               self.knowledge.embedder.encode),
                           top_k=s.retrieval_top_k,
                           redact_pii=s.pii_redaction, escalator=handoff_escalator(s, self.pool),
                           judge=EscalationJudge.cheapest(getattr(self.router, "tiers", [])),
                           callers=self._callers(),
                           # a command the voice answer leaves out is offered by text or email (issue 21)
                           sender=CommandSender(self.pool, credential_store(s, self.pool), region=s.default_phone_region))

    def _callers(self) -> Any:
        if not hasattr(self, "_caller_service"):  # one per process: its customer cache is shared by calls
            self._caller_service = caller_service(self.settings, self.pool)
        return self._caller_service

    def meeting_deps(self) -> MeetingDeps:
        s = self.settings
        return MeetingDeps(retriever=self.knowledge.retriever, router=self.router, pool=self.pool,
                           competitors=list(s.competitors), rep_prefix=s.rep_identity_prefix,
                           top_k=min(3, s.retrieval_top_k))


async def open_components_in(stack: AsyncExitStack, settings: Settings) -> Components:
    """Open the database, knowledge and router; closed when ``stack`` closes."""
    from callwise.wiring.knowledge import build_knowledge, close_vector_stores
    from callwise.wiring.routing import build_router

    runtime = await stack.enter_async_context(open_runtime(settings))
    knowledge = build_knowledge(settings, runtime.pool)
    stack.callback(close_vector_stores)
    router = build_router(settings, runtime.pool, knowledge.embedder)
    stack.push_async_callback(router.aclose)
    shared = getattr(router, "shared_breakers", None)
    if shared is not None:  # before the pool closes: the last openings written, the reading loop stopped
        stack.push_async_callback(shared.aclose)
    return Components(settings=settings, runtime=runtime, knowledge=knowledge, router=router)


@asynccontextmanager
async def open_components(settings: Settings) -> AsyncIterator[Components]:
    async with AsyncExitStack() as stack:
        yield await open_components_in(stack, settings)
