"""The answering pipeline as the nightly run sees it: retrieval, then the router, for one question.

It composes the knowledge ``Retriever`` and the routing ``CascadingRouter`` the agent wires up; it
does not re-implement either. Retrieval asks for ``retrieve_k`` chunks (10, for the @10 metrics);
the router gets the first ``context_k`` (the production top-k) as sources, as a live turn does.
``pre_check`` is the agent's escalation rules on the user text (a callable returning a reason or
``None``), so escalation triggers in the golden set are scored the way production handles them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from routing.types import sources_from


@dataclass
class PipelineOutput:
    answer: str
    contexts: list[str]  # what the answering model saw, in order
    documents: list[str]  # ranked document sources of the retrieved chunks (up to retrieve_k)
    tier: str | None = None
    provider: str | None = None
    model: str | None = None
    confidence: float | None = None
    low_confidence: bool = False
    escalate: bool = False
    escalation_rule: str | None = None
    cascade_path: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    retrieval_ms: float = 0.0
    error: str | None = None


class Pipeline(Protocol):
    async def run(self, query: str, organization_id: str, *, interaction_id: str) -> PipelineOutput: ...


class RetrieverRouterPipeline:
    def __init__(self, retriever: Any, router: Any, *, context_k: int = 5, retrieve_k: int = 10,
                 modality: str = "text", pre_check: Callable[[str], str | None] | None = None) -> None:
        self.retriever = retriever
        self.router = router
        self.context_k = context_k
        self.retrieve_k = max(retrieve_k, context_k)
        self.modality = modality
        self.pre_check = pre_check

    async def run(self, query: str, organization_id: str, *, interaction_id: str) -> PipelineOutput:
        rule = self.pre_check(query) if self.pre_check else None
        t0 = time.perf_counter()
        result = await self.retriever.retrieve(query, organization_id, top_k=self.retrieve_k)
        retrieval_ms = (time.perf_counter() - t0) * 1000
        chunks = list(result.chunks)
        top = chunks[: self.context_k]
        sources = sources_from(top)
        routed = await self.router.answer(query, sources, modality=self.modality,
                                          organization_id=organization_id, interaction_id=interaction_id)
        return PipelineOutput(
            answer=routed.text or "", contexts=[s.text for s in sources], documents=[c.document for c in chunks],
            tier=routed.tier, provider=routed.provider, model=routed.model, confidence=routed.confidence,
            low_confidence=bool(routed.low_confidence), escalate=bool(routed.escalate) or rule is not None,
            escalation_rule=rule, cascade_path=list(routed.cascade_path or []),
            input_tokens=int(routed.input_tokens or 0), output_tokens=int(routed.output_tokens or 0),
            cost_usd=float(routed.cost_usd or 0.0), latency_ms=float(routed.latency_ms or 0.0),
            retrieval_ms=retrieval_ms, error=routed.error,
        )
