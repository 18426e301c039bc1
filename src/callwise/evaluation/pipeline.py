"""What the nightly run needs from the answering side: "answer this question" (``Pipeline``).

evaluation/ may not import agent/ (DESIGN.md), so it defines the protocol and its output here;
``callwise.wiring.evaluation`` passes the support turn's own stages (guard, escalation rules, query
understanding, retrieval, the router, the rules on the answer), so golden questions are answered
the way a live turn answers them, not by a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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
    retrieved: bool = True  # False when the turn ended before retrieval (an escalation, a statement)
    kind: str = "answer"  # the turn kind: answer, escalation, acknowledgement ...


class Pipeline(Protocol):
    """Answers one question for an organization; ``router`` (optional attribute) is the cascading
    router, whose cost sink the nightly run swaps so evaluation traffic is not production cost."""

    router: Any

    async def run(self, query: str, organization_id: str, *, interaction_id: str) -> PipelineOutput: ...
