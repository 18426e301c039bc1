"""Boundary dataclasses of the routing package (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
Modality = Literal["voice", "video", "screen_share", "text"]
Purpose = Literal["answer", "self_eval", "summary", "judge", "gap_outline", "insight"]


@dataclass(frozen=True)
class Message:
    """One chat message. ``cache`` marks a stable prefix a provider may cache (Anthropic cache_control)."""

    role: Role
    content: str
    cache: bool = False


@dataclass(frozen=True)
class SourceDoc:
    """A retrieved passage as the router sees it; ``index`` is the 1-based number cited in answers."""

    index: int
    document: str
    title: str
    text: str
    #: the matched child chunk inside ``text`` (small2big); the context budget keeps it first
    passage: str = ""
    #: the retriever's score for this passage (fused or reranked); a confidence signal
    score: float | None = None


def sources_from(chunks: Iterable[Any]) -> list[SourceDoc]:
    """Number retrieved chunks as sources, giving the router each chunk's parent text (small2big).

    Takes anything shaped like ``knowledge``'s ``RetrievedChunk`` (``document``, ``title``, ``text``,
    ``parent_text``), so routing stays free of a knowledge import.
    """
    return [SourceDoc(i, c.document, c.title or "", c.parent_text or c.text, c.text if c.parent_text else "",
                      getattr(c, "score", None))
            for i, c in enumerate(chunks, start=1)]


@dataclass
class CustomerContext:
    name: str | None = None
    plan: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        if self.name:
            out.append(f"name: {self.name}")
        if self.plan:
            out.append(f"plan: {self.plan}")
        for key in sorted(self.extra):
            out.append(f"{key}: {self.extra[key]}")
        return out


@dataclass(frozen=True)
class Grounding:
    """The question and sources behind a prompt, for providers that answer from them directly
    (extractive) or need their own prompt shape (the local base model)."""

    query: str
    sources: tuple[SourceDoc, ...] = ()
    #: the answer will be spoken (voice, video): no code, paths or option lists read out
    spoken: bool = False


@dataclass
class Generation:
    """What one provider call produced, with its accounting."""

    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    logprobs: list[float] | None = None
    confidence: float | None = None  # provider-native confidence (extractive similarity)
    #: the raw signals behind ``confidence`` (extractive: best and runner-up sentence similarity),
    #: mapped to a probability of being right by ``callwise.routing.calibration``
    signals: dict[str, float] | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    finish_reason: str | None = None


@dataclass
class RoutedAnswer:
    text: str
    tier: str | None
    provider: str | None
    model: str | None
    confidence: float | None
    low_confidence: bool
    escalate: bool
    cascade_path: list[str]
    sources: list[SourceDoc]
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    complexity: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    interaction_id: str | None = None
    confidence_method: str | None = None
    #: the final answer's ``callwise.routing.confidence.Confidence.as_dict()`` (value, method, signals), stored with the turn
    confidence_detail: dict[str, Any] | None = None
    #: per attempted tier, what the context budget kept and cut (callwise.routing.budget.FitReport.as_dict)
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
