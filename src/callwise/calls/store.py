"""Persistence of calls: sessions, turns, escalations, surveys, insights, unresolved questions.

One ``ConversationStore`` per organization: every statement is parameterised and filters or
writes ``organization_id``, so one tenant's store can never read or touch another's rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import asyncpg

SessionKind = Literal["support", "meeting"]
Modality = Literal["voice", "video", "screen_share", "text"]


@dataclass
class TurnRecord:
    """One stored turn. ``latencies`` are milliseconds per stage (stt, retrieval, ttft, ...)."""

    speaker: str
    role: Literal["user", "assistant", "system"]
    text: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    tier: str | None = None
    confidence: float | None = None
    low_confidence: bool = False
    escalated: bool = False
    latencies: dict[str, float] = field(default_factory=dict)
    cost_usd: float = 0.0
    error: str | None = None
    passages: list[dict[str, Any]] = field(default_factory=list)  # what the answering model saw
    #: why the confidence is what it is (callwise.routing.confidence.Confidence.as_dict: value, method, signals)
    confidence_detail: dict[str, Any] | None = None


@dataclass
class InsightRecord:
    transcript: list[dict[str, Any]]
    summary: str = ""
    topics: list[str] = field(default_factory=list)
    sentiment_scores: dict[str, float] = field(default_factory=dict)
    action_items: list[str] = field(default_factory=list)
    key_moments: list[dict[str, Any]] = field(default_factory=list)
    competitor_mentions: list[dict[str, Any]] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def normalize_question(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def question_hash(text: str) -> str:
    return hashlib.sha256(normalize_question(text).encode()).hexdigest()[:32]


def _clamp01(value: float | None) -> float | None:
    return None if value is None else max(0.0, min(1.0, float(value)))


class ConversationStore:
    def __init__(self, pool: asyncpg.Pool, organization_id: str) -> None:
        self.pool = pool
        self.organization_id = organization_id

    # --- sessions ---------------------------------------------------------------------
    async def start_session(self, *, room: str, kind: SessionKind, modality: Modality = "voice",
                            end_user_id: str | None = None, metadata: dict[str, Any] | None = None) -> str:
        from callwise.calls.reaper import register_worker  # the session names its process, for the reaper

        worker_id = await register_worker(self.pool)
        row = await self.pool.fetchrow(
            "insert into sessions (organization_id, room, kind, modality, end_user_id, metadata, worker_id) "
            "values ($1, $2, $3, $4, $5, $6::jsonb, $7) returning id",
            self.organization_id, room, kind, modality, end_user_id, json.dumps(metadata or {}), worker_id,
        )
        return str(row["id"])

    async def end_session(self, session_id: str, *, status: Literal["ended", "escalated", "failed"] = "ended",
                          resolved_by_ai: bool | None = None) -> None:
        await self.pool.execute(
            "update sessions set ended_at = greatest(now(), started_at), status = $3, resolved_by_ai = $4 "
            "where organization_id = $1 and id = $2",
            self.organization_id, session_id, status, resolved_by_ai,
        )

    async def tag_experiments(self, session_id: str, experiments: list[dict[str, Any]], *,
                              not_applied: list[str] | None = None, conflicts: list[str] | None = None) -> None:
        """Tag the session with its A/B assignments: ``ab_test_id``/``ab_variant_id`` carry the first
        (the column holds one), ``metadata.experiments`` all of them."""
        if not experiments:
            return
        first = experiments[0]
        await self.pool.execute(
            "update sessions set ab_test_id = $3, ab_variant_id = $4, metadata = metadata || $5::jsonb "
            "where organization_id = $1 and id = $2",
            self.organization_id, session_id, first["experiment_id"], first["variant"],
            json.dumps({"experiments": experiments, "ab_not_applied": not_applied or [],
                        "ab_conflicts": conflicts or []}, default=str))

    async def mark_escalated(self, session_id: str) -> None:
        await self.pool.execute(
            "update sessions set status = 'escalated', resolved_by_ai = false "
            "where organization_id = $1 and id = $2",
            self.organization_id, session_id,
        )

    # --- turns ------------------------------------------------------------------------
    async def add_turn(self, session_id: str, turn: TurnRecord, *, interaction_id: str | None = None) -> str:
        """Store a turn (next ``seq`` in the session) and link its cost events by ``interaction_id``."""
        async with self.pool.acquire() as conn, conn.transaction():
            # one writer per session at a time (concurrent finals of a meeting), so max(seq) + 1 is free
            await conn.execute("select 1 from sessions where organization_id = $1 and id = $2 for update",
                               self.organization_id, session_id)
            row = await conn.fetchrow(
                "insert into turns (organization_id, session_id, seq, speaker, role, text, sources, tier, "
                "confidence, low_confidence, escalated, latencies, cost_usd, error, passages, confidence_detail) "
                "select $1, $2, coalesce(max(seq) + 1, 0), $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11::jsonb, $12, $13, "
                "$14::jsonb, $15::jsonb "
                "from turns where organization_id = $1 and session_id = $2 returning id",
                self.organization_id, session_id, turn.speaker, turn.role, turn.text,
                json.dumps(turn.sources, default=str), turn.tier, _clamp01(turn.confidence),
                turn.low_confidence, turn.escalated, json.dumps({k: round(float(v), 2) for k, v in
                                                                 turn.latencies.items() if v is not None}),
                max(0.0, float(turn.cost_usd or 0.0)), turn.error, json.dumps(turn.passages, default=str),
                None if turn.confidence_detail is None else json.dumps(turn.confidence_detail, default=str),
            )
            turn_id = str(row["id"])
            if interaction_id:
                await conn.execute(
                    "update cost_events set turn_id = $3, session_id = coalesce(session_id, $4) "
                    "where organization_id = $1 and interaction_id = $2",
                    self.organization_id, interaction_id, turn_id, session_id,
                )
        return turn_id

    async def turns(self, session_id: str) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "select * from turns where organization_id = $1 and session_id = $2 order by seq",
            self.organization_id, session_id,
        )

    # --- escalations and unresolved questions ----------------------------------------------
    async def add_escalation(self, session_id: str, *, reason: str, handoff: str,
                             details: dict[str, Any] | None = None, turn_id: str | None = None) -> str:
        row = await self.pool.fetchrow(
            "insert into escalations (organization_id, session_id, turn_id, reason, details, handoff) "
            "values ($1, $2, $3, $4, $5::jsonb, $6) returning id",
            self.organization_id, session_id, turn_id, reason, json.dumps(details or {}, default=str), handoff,
        )
        await self.mark_escalated(session_id)
        return str(row["id"])

    async def record_unresolved(self, question: str, *, reason: Literal["escalated", "low_confidence", "no_sources"],
                                session_id: str | None = None) -> None:
        """Count a question the agent could not answer (feeds knowledge-gap clustering)."""
        await self.pool.execute(
            "insert into unresolved_problems (organization_id, question, normalized_hash, last_reason, "
            "session_id, escalated_count) values ($1, $2, $3, $4, $5, $6) "
            "on conflict (organization_id, normalized_hash) do update set "
            "occurrence_count = unresolved_problems.occurrence_count + 1, "
            "escalated_count = unresolved_problems.escalated_count + excluded.escalated_count, "
            "last_reason = excluded.last_reason, session_id = excluded.session_id, last_seen_at = now()",
            self.organization_id, question, question_hash(question), reason, session_id,
            1 if reason == "escalated" else 0,
        )

    # --- survey and insights ----------------------------------------------------------
    async def add_survey(self, session_id: str, *, rating: int, feedback_text: str | None,
                         channel_used: str = "voice", requires_followup: bool = False,
                         end_user_id: str | None = None) -> str:
        row = await self.pool.fetchrow(
            "insert into survey_responses (organization_id, session_id, end_user_id, rating, feedback_text, "
            "channel_used, requires_followup) values ($1, $2, $3, $4, $5, $6, $7) returning id",
            self.organization_id, session_id, end_user_id, rating, feedback_text, channel_used, requires_followup,
        )
        return str(row["id"])

    async def save_insights(self, session_id: str, insights: InsightRecord) -> str:
        data = asdict(insights)
        row = await self.pool.fetchrow(
            "insert into conversation_insights (organization_id, session_id, transcript, summary, topics, "
            "sentiment_scores, action_items, key_moments, competitor_mentions, next_steps) "
            "values ($1, $2, $3::jsonb, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb) "
            "on conflict (session_id) do update set transcript = excluded.transcript, summary = excluded.summary, "
            "topics = excluded.topics, sentiment_scores = excluded.sentiment_scores, "
            "action_items = excluded.action_items, key_moments = excluded.key_moments, "
            "competitor_mentions = excluded.competitor_mentions, next_steps = excluded.next_steps "
            "where conversation_insights.organization_id = excluded.organization_id returning id",
            self.organization_id, session_id, json.dumps(data["transcript"], default=str), data["summary"],
            json.dumps(data["topics"]), json.dumps(data["sentiment_scores"]), json.dumps(data["action_items"]),
            json.dumps(data["key_moments"], default=str), json.dumps(data["competitor_mentions"], default=str),
            json.dumps(data["next_steps"]),
        )
        return str(row["id"])
