"""Dataclasses at the boundaries of the knowledge package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

QueryType = Literal["conceptual", "technical", "conversational", "exact_match"]
Mode = Literal["bm25", "vector", "hybrid", "hybrid+rerank"]
MODES: tuple[str, ...] = ("bm25", "vector", "hybrid", "hybrid+rerank")


@dataclass(frozen=True)
class Section:
    """A run of document text under one heading path (a loader yields these in order)."""

    text: str
    title_path: tuple[str, ...] = ()


@dataclass
class ChunkRecord:
    """One chunk as stored: a parent (what the LLM gets) or a child (what is searched)."""

    id: str
    document_id: str
    kind: Literal["parent", "child"]
    seq: int
    text: str
    token_count: int
    title_path: tuple[str, ...]
    parent_id: str | None = None


@dataclass(frozen=True)
class StageScore:
    rank: int
    score: float

    def as_dict(self) -> dict[str, float]:
        return {"rank": self.rank, "score": self.score}


@dataclass
class RetrievedChunk:
    chunk_id: str
    document_id: str
    document: str
    title: str
    title_path: list[str]
    text: str
    parent_text: str
    score: float
    stages: dict[str, StageScore] = field(default_factory=dict)
    parent_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "document": self.document,
            "title": self.title,
            "title_path": list(self.title_path),
            "score": self.score,
            "text": self.text,
            "parent_text": self.parent_text,
            "stages": {k: v.as_dict() for k, v in self.stages.items()},
        }


@dataclass
class RetrievalResult:
    query: str
    query_type: QueryType
    chunks: list[RetrievedChunk]
    timings_ms: dict[str, float] = field(default_factory=dict)
    mode: str = "hybrid+rerank"
    reranker: str = "none"
    rerank_fallback: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "query": self.query,
            "query_type": self.query_type,
            "mode": self.mode,
            "reranker": self.reranker,
            "rerank_fallback": self.rerank_fallback,
            "timings_ms": self.timings_ms,
            "chunks": [c.as_dict() for c in self.chunks],
        }
