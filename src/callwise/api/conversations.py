"""Support conversations over HTTP: the calls ``POST /v1/orgs/{org}/ask`` starts, continues and ends.

A conversation is a ``SupportCall`` with modality ``text``: each question runs the same turn stages as a
phone call (record, guard, escalation, retrieval, answerability, answer, persistence), so a follow-up keeps
its subject, an escalation opens one case, and every turn is stored in one session. The first question
starts the call and returns its id (the session id); a later one with that id continues it.

The calls live in the serving process. One ends when its client says so (``"end": true``), after ``idle_s``
without a turn (:meth:`Conversations.sweep`, run every ``sweep_s`` while the app runs), or when the server
stops; its session is then closed like a phone call's (status, insights). If the process dies, the
reaper (``callwise.calls.reaper``) closes its sessions as abandoned. A call id of another organization, or
one this process does not hold, is unknown; one whose session has ended is reported as ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from callwise.calls import SupportCall, SupportDeps, TurnContext

log = logging.getLogger("callwise.api.conversations")

IDLE_S = 15 * 60.0
SWEEP_S = 30.0
MAX_OPEN = 500


class ConversationError(Exception):
    """A conversation that cannot be used; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Conversation:
    call: SupportCall
    organization_id: str
    last_used: float
    turns: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def id(self) -> str:
        return self.call.session_id


class Conversations:
    """The open conversations of this process, by call id, each held by its organization."""

    def __init__(self, deps: SupportDeps, *, idle_s: float = IDLE_S, max_open: int = MAX_OPEN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.deps = deps
        self.idle_s = idle_s
        self.max_open = max_open
        self.clock = clock
        self._open: dict[str, Conversation] = {}

    def __len__(self) -> int:
        return len(self._open)

    async def start(self, organization_id: str, *, modality: str = "text",
                    metadata: dict[str, Any] | None = None) -> Conversation:
        if len(self._open) >= self.max_open:
            await self._make_room()
        call = await SupportCall.start(self.deps, organization_id=organization_id,
                                       room=f"api-{uuid.uuid4().hex[:12]}", modality=modality,
                                       metadata={"channel": "api", **(metadata or {})})
        conv = Conversation(call, organization_id, self.clock())
        self._open[conv.id] = conv
        return conv

    async def _make_room(self) -> None:
        """At ``max_open``: end the least recently used conversation that is not mid-turn; 429 if all are."""
        waiting = [c for c in self._open.values() if not c.lock.locked()]
        if not waiting:
            raise ConversationError(429, f"{self.max_open} conversations are answering in this server; retry later")
        oldest = min(waiting, key=lambda c: c.last_used)
        log.info("ending conversation %s (least recently used) to make room", oldest.id)
        await self.end(oldest)

    async def find(self, organization_id: str, call_id: str) -> Conversation:
        """The organization's open conversation; 404 when unknown here (or another org's), 410 once ended.
        ``call_id`` is a UUID (``AskRequest`` checks it)."""
        conv = self._open.get(call_id)
        if conv is not None and conv.organization_id == organization_id:
            return conv
        status = await self.deps.pool.fetchval(
            "select status from sessions where organization_id = $1 and id = $2::uuid and kind = 'support'",
            organization_id, call_id)
        if status is not None and status != "active":
            raise ConversationError(410, f"conversation {call_id} has ended ({status}); start a new one")
        raise ConversationError(404, f"no open conversation {call_id} in this organization")

    @contextlib.asynccontextmanager
    async def turn(self, conv: Conversation) -> AsyncIterator[SupportCall]:
        """Hold the conversation for one turn: its turns run one at a time, and it is not swept meanwhile."""
        async with conv.lock:
            if self._open.get(conv.id) is not conv:  # ended while this request waited for the lock
                raise ConversationError(410, f"conversation {conv.id} has ended; start a new one")
            try:
                yield conv.call
            finally:
                conv.turns += 1
                conv.last_used = self.clock()

    async def end(self, conv: Conversation) -> None:
        """Close the call (its session row, insights); a conversation already ended is left as it is."""
        async with conv.lock:
            await self._close(conv)

    async def _close(self, conv: Conversation) -> None:
        if self._open.pop(conv.id, None) is None:
            return
        try:
            await conv.call.end()
        except Exception:  # noqa: BLE001 - the turns are stored; a failed close is logged, the others still end
            log.exception("could not end conversation %s", conv.id)

    async def sweep(self) -> list[str]:
        """End the conversations idle for ``idle_s`` (not one whose turn is running); their ids."""
        now = self.clock()
        idle = [c for c in self._open.values() if now - c.last_used >= self.idle_s and not c.lock.locked()]
        for conv in idle:
            await self.end(conv)
        if idle:
            log.info("ended %d idle conversations", len(idle))
        return [c.id for c in idle]

    async def close(self) -> None:
        """End every open conversation (the server is stopping)."""
        for conv in list(self._open.values()):
            await self.end(conv)

    async def run_sweeper(self, interval_s: float = SWEEP_S) -> None:
        """Sweep every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed sweep is retried on the next tick
                log.exception("conversation sweep failed")


_ESCALATION_FIELDS = ("reason", "case", "case_id", "handoff", "handoff_status", "rule", "repeat_reason")


def turn_json(turn: TurnContext, *, index: int | None = None) -> dict[str, Any]:
    """What one turn gave the customer, as ``/ask`` and ``callwise ask --json`` print it. ``unsure``: the
    answer was low-confidence, or the turn offered a colleague instead of an answer. ``escalation``: the
    call's case (``repeat_reason`` when this turn triggered again after the case was opened). ``router``: which
    model answered and how (None when the stages answered without one)."""
    out = turn.outcome
    esc = out.escalation
    routed = turn.answer  # None when no model answered (an escalation, a refusal, a survey reply)
    return {
        "turn": index, "answer": out.answer, "kind": out.kind,
        "sources": [{k: s.get(k) for k in ("index", "document", "title")} for s in out.sources],
        "escalation": {k: esc[k] for k in _ESCALATION_FIELDS if esc.get(k) is not None} if esc else None,
        "unsure": out.low_confidence or out.offered_colleague, "offered_colleague": out.offered_colleague,
        "tier": out.tier, "confidence": out.confidence, "low_confidence": out.low_confidence,
        "query": out.query, "guard": {"injection_markers": list(turn.injection_markers)},
        "cost_usd": out.cost_usd, "latencies_ms": {k: round(v, 1) for k, v in out.latencies.items()},
        "error": out.error,
        "router": None if routed is None else {
            "provider": routed.provider, "model": routed.model, "cascade_path": list(routed.cascade_path),
            "confidence_method": routed.confidence_method, "input_tokens": routed.input_tokens,
            "output_tokens": routed.output_tokens, "cached_tokens": routed.cached_tokens,
            "interaction_id": routed.interaction_id},
    }
