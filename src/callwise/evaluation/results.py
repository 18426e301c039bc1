"""What a nightly run produces: one result per golden example and the run's result. Their own module, so
the run (``nightly``) and its report (``report``) both import them and not each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExampleResult", "NightlyResult"]


@dataclass
class ExampleResult:
    id: str
    category: str
    query: str
    expected_answer: str
    expected_tier: str
    tags: list[str]
    relevant_documents: list[str]  # resolved to ingested sources
    missing_documents: list[str] = field(default_factory=list)  # golden references not in the KB
    answer: str = ""
    contexts: list[str] = field(default_factory=list)
    retrieved_documents: list[str] = field(default_factory=list)
    tier: str | None = None
    cascade_path: list[str] = field(default_factory=list)
    confidence: float | None = None
    escalate: bool = False
    escalation_rule: str | None = None
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    retrieval_ms: float = 0.0
    retrieval: dict[str, float | None] = field(default_factory=dict)
    ragas: dict[str, float] = field(default_factory=dict)
    ragas_errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    kind: str = "answer"  # how the turn ended: answer, escalation (before retrieval), acknowledgement ...
    retrieved: bool = True

    def score(self) -> float | None:
        """One number for ranking the worst examples: mean of every score this example has."""
        vals = [v for v in list(self.retrieval.values()) + list(self.ragas.values()) if v is not None]
        return sum(vals) / len(vals) if vals else None


@dataclass
class NightlyResult:
    run_id: str
    status: str
    metrics: dict[str, Any]
    examples: list[ExampleResult]
    alerts: list[dict[str, Any]]
    delivery: dict[str, Any]
    gaps: list[dict[str, Any]]
    report_path: str | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "seconds": round(self.seconds, 1),
                **self.metrics, "alerts": self.alerts, "alert_delivery": self.delivery,
                "knowledge_gaps": self.gaps, "report": self.report_path}
