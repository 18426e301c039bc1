"""The support turn, top to bottom.

One ``SupportCall`` per call. ``call.turn(text)`` is an async iterator of answer text deltas (what
the framework hands to TTS) and, once exhausted, ``.outcome``. For every customer turn:

1. store the customer's words (the original text; latency of STT if known);
2. guard: PII redaction (per setting) for everything that leaves for a model, injection markers logged;
3. survey: once the customer says goodbye, ask for a 1-5 rating and a comment (``agent.survey``);
4. escalation rules on the customer's words (``agent.escalation``) -> escalation row, room event,
   what happens next (live handoff inside service hours, callback outside);
5. retrieval (knowledge ``Retriever``), then the router streaming the answer (``answer_stream``);
6. escalation rules on the answer (router failure, low confidence, repeated non-answers);
7. store the answer turn: text, sources, tier, confidence, latencies per stage, cost (its cost events
   are linked by interaction id) and unresolved questions.

Step 7 runs even when a provider fails (the customer hears an apology and a handoff) or when the
customer barges in and the framework cancels the stream (the spoken part is stored, marked
``interrupted``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Literal, Protocol

from agent import survey
from agent.escalation import (CallState, Escalation, EscalationRules, already_escalated_message,
                              customer_message)
from agent.guard import guard
from agent.store import ConversationStore, TurnRecord
from routing.types import CustomerContext, RoutedAnswer, SourceDoc, sources_from

log = logging.getLogger("callwise.pipeline")

GREETING = "Hi, thanks for calling support. How can I help you today?"
RETRY_RATING = "Sorry, I didn't catch that. Could you give me a number from one to five?"
ESCALATION_TOPIC = "callwise.escalations"
_GOODBYE = re.compile(
    r"\b(?:that'?s all|that is all|that'?s everything|that'?s it for (?:now|today)|nothing else|"
    r"no (?:more|other|further) questions|good ?bye|bye(?: bye)?|have a (?:good|nice|great) (?:day|one))\b",
    re.IGNORECASE)
#: escalations that are about the call, not a knowledge question (not fed to gap clustering)
_NOT_QUESTIONS = {"explicit_request", "frustration"}

EventSink = Callable[[dict[str, Any]], Awaitable[None]]
TurnKind = Literal["answer", "escalation", "survey", "closing"]


class RetrieverLike(Protocol):
    async def retrieve(self, query: str, organization_id: str, top_k: int | None = None) -> Any: ...


class RouterLike(Protocol):
    def answer_stream(self, query: str, sources: Any = (), **kwargs: Any) -> Any: ...


@dataclass
class SupportDeps:
    """What a support call needs; built once per worker process (``agent.wiring.agent``)."""

    retriever: RetrieverLike | None
    router: RouterLike
    pool: Any
    rules: EscalationRules = field(default_factory=EscalationRules)
    top_k: int = 5
    redact_pii: bool = False
    live_stream: bool = False  # stream every tier at once (no cascade once words are spoken)


@dataclass
class TurnOutcome:
    transcript: str
    answer: str = ""
    kind: TurnKind = "answer"
    sources: list[dict[str, Any]] = field(default_factory=list)
    tier: str | None = None
    confidence: float | None = None
    low_confidence: bool = False
    escalated: bool = False
    escalation: dict[str, Any] | None = None
    latencies: dict[str, float] = field(default_factory=dict)
    cost_usd: float = 0.0
    error: str | None = None
    turn_id: str | None = None
    query_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript, "answer": self.answer, "kind": self.kind, "sources": self.sources,
            "tier": self.tier, "confidence": self.confidence, "low_confidence": self.low_confidence,
            "escalated": self.escalated, "escalation": self.escalation,
            "latencies_ms": {k: round(v, 1) for k, v in self.latencies.items()},
            "cost_usd": self.cost_usd, "error": self.error, "query_type": self.query_type,
        }


def is_goodbye(text: str) -> bool:
    return bool(_GOODBYE.search(text))


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


class TurnStream:
    """Async-iterates the reply's text deltas; ``outcome`` is set when the iteration ends."""

    def __init__(self, gen: AsyncIterator[str], holder: list[TurnOutcome]) -> None:
        self._gen = gen
        self._holder = holder

    def __aiter__(self) -> "TurnStream":
        return self

    async def __anext__(self) -> str:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()  # type: ignore[attr-defined]

    @property
    def outcome(self) -> TurnOutcome | None:
        return self._holder[0] if self._holder else None

    async def collect(self) -> TurnOutcome:
        async for _ in self:
            pass
        assert self.outcome is not None
        return self.outcome


class SupportCall:
    """One support conversation: its session row, escalation state and survey."""

    def __init__(self, deps: SupportDeps, *, organization_id: str, session_id: str, modality: str = "voice",
                 customer: CustomerContext | None = None, speaker: str = "customer",
                 on_event: EventSink | None = None) -> None:
        self.deps = deps
        self.organization_id = organization_id
        self.session_id = session_id
        self.modality = modality
        self.customer = customer
        self.speaker = speaker
        self.on_event = on_event
        self.store = ConversationStore(deps.pool, organization_id)
        self.state = CallState()
        self.survey_phase: Literal["off", "rating", "comment", "done"] = "off"
        self._survey_rating_text = ""
        self._rating_retries = 0
        self._escalation: dict[str, Any] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.outcomes: list[TurnOutcome] = []

    @classmethod
    async def start(cls, deps: SupportDeps, *, organization_id: str, room: str, modality: str = "voice",
                    customer: CustomerContext | None = None, speaker: str = "customer",
                    on_event: EventSink | None = None, metadata: dict[str, Any] | None = None) -> "SupportCall":
        store = ConversationStore(deps.pool, organization_id)
        session_id = await store.start_session(room=room, kind="support", modality=modality,  # type: ignore[arg-type]
                                               metadata=metadata)
        return cls(deps, organization_id=organization_id, session_id=session_id, modality=modality,
                   customer=customer, speaker=speaker, on_event=on_event)

    # ------------------------------------------------------------------ the turn
    def turn(self, text: str, *, eos_at: float | None = None, stt_ms: float | None = None) -> TurnStream:
        """``eos_at``: ``time.perf_counter()`` at the customer's end of speech, when known."""
        holder: list[TurnOutcome] = []
        return TurnStream(self._turn(text, eos_at, stt_ms, holder), holder)

    async def run_turn(self, text: str, **kwargs: Any) -> TurnOutcome:
        return await self.turn(text, **kwargs).collect()

    async def _turn(self, text: str, eos_at: float | None, stt_ms: float | None,
                    holder: list[TurnOutcome]) -> AsyncIterator[str]:
        started = time.perf_counter()
        out = TurnOutcome(transcript=text)
        if stt_ms is not None:
            out.latencies["stt_ms"] = stt_ms
        spoken: list[str] = []
        interaction_id = str(uuid.uuid4())
        answer: RoutedAnswer | None = None
        completed = False

        def first_token() -> None:
            if "first_token_ms" not in out.latencies:
                out.latencies["first_token_ms"] = _ms(started)
                if eos_at is not None:
                    out.latencies["eos_to_first_token_ms"] = _ms(eos_at)

        async def say(s: str) -> str:
            first_token()
            spoken.append(s)
            return s

        try:
            await self.store.add_turn(self.session_id, TurnRecord(
                speaker=self.speaker, role="user", text=text, latencies=dict(out.latencies)))
            guarded = guard(text, redact=self.deps.redact_pii)
            if guarded.injection_markers:
                log.warning("injection markers in a customer turn: %s", guarded.injection_markers)

            if self.survey_phase in ("rating", "comment"):
                out.kind = "survey"
                yield await say(await self._survey_step(text))
                completed = True
                return

            escalation = self.deps.rules.check_user_turn(text, self.state)
            if escalation is not None:
                out.kind = "escalation"
                yield await say(await self._escalate(escalation, out))
                completed = True
                return

            if is_goodbye(text) and self.survey_phase == "off":
                out.kind = "survey"
                self.survey_phase = "rating"
                yield await say(survey.RATING_QUESTION)
                completed = True
                return

            sources, retrieval_error = await self._retrieve(guarded.text, out)
            router_started = time.perf_counter()
            stream = self.deps.router.answer_stream(
                guarded.text, sources, modality=self.modality, customer=self.customer,
                organization_id=self.organization_id, session_id=self.session_id,
                interaction_id=interaction_id, live=self.deps.live_stream)
            try:
                async for delta in stream:
                    if "ttft_ms" not in out.latencies:
                        out.latencies["ttft_ms"] = _ms(router_started)
                    yield await say(delta)
                answer = stream.result
            except Exception as exc:  # noqa: BLE001 - the router promises not to raise; be safe anyway
                log.exception("router stream failed")
                answer = None
                out.error = f"{type(exc).__name__}: {exc}"
            finally:
                if answer is None:
                    await _aclose(stream)
            out.latencies["router_ms"] = _ms(router_started)
            if answer is None and out.error is None:
                return  # cancelled mid-stream (barge-in): the finally below stores what was said
            self._apply_answer(out, answer, sources)
            if retrieval_error and not out.error:
                out.error = retrieval_error
            failed = answer is None or (answer.tier is None and answer.error not in (None, "empty_query"))
            if answer is None:
                yield await say(_apology())
            post = self.deps.rules.check_answer(
                failed=failed, escalate=bool(answer and answer.escalate), confidence=out.confidence,
                has_sources=bool(sources), state=self.state, error=out.error)
            if post is not None:
                message = await self._escalate(post, out, with_reason=post.reason != "router_failure")
                yield await say(" " + message)
            completed = True
        finally:
            out.answer = "".join(spoken).strip()
            out.latencies["total_ms"] = _ms(started)
            if not completed and out.error is None:
                out.error = "interrupted"
            holder.append(out)
            self.outcomes.append(out)
            persist = self._persist(out, interaction_id if answer is not None else None)
            if completed:
                await persist
            else:  # cancelled (barge-in) or closed early: store it without blocking the cancellation
                task = asyncio.ensure_future(persist)
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ steps
    async def _retrieve(self, query: str, out: TurnOutcome) -> tuple[list[SourceDoc], str | None]:
        if self.deps.retriever is None:
            return [], None
        t = time.perf_counter()
        try:
            result = await self.deps.retriever.retrieve(query, self.organization_id, top_k=self.deps.top_k)
        except Exception as exc:  # noqa: BLE001 - answer without sources rather than fail the call
            log.exception("retrieval failed")
            out.latencies["retrieval_ms"] = _ms(t)
            return [], f"retrieval failed: {type(exc).__name__}: {exc}"
        out.latencies["retrieval_ms"] = _ms(t)
        out.query_type = getattr(result, "query_type", None)
        return sources_from(result.chunks), None

    def _apply_answer(self, out: TurnOutcome, answer: RoutedAnswer | None, sources: list[SourceDoc]) -> None:
        out.sources = [{"index": s.index, "document": s.document, "title": s.title} for s in sources]
        if answer is None:
            out.low_confidence = True
            return
        out.tier = answer.tier
        out.confidence = answer.confidence
        out.low_confidence = answer.low_confidence
        out.cost_usd = answer.cost_usd
        out.error = answer.error if answer.error != "empty_query" else None
        if answer.ttft_ms is not None:
            out.latencies.setdefault("ttft_ms", answer.ttft_ms)

    async def _escalate(self, esc: Escalation, out: TurnOutcome, *, with_reason: bool = True) -> str:
        out.escalated = True
        if self._escalation is not None:  # one handoff per call; later triggers are noted on the turn
            out.escalation = {**self._escalation, "repeat_reason": esc.reason}
            return already_escalated_message(self._escalation["handoff"])
        handoff = self.deps.rules.handoff()
        self.state.escalated = True
        self._escalation = {"reason": esc.reason, "handoff": handoff, **esc.details}
        out.escalation = dict(self._escalation)
        return customer_message(esc.reason, handoff, with_reason=with_reason)

    async def _survey_step(self, text: str) -> str:
        if self.survey_phase == "rating":
            rating, _ = survey.parse_rating(text)
            if rating is None and self._rating_retries == 0:
                self._rating_retries += 1
                return RETRY_RATING
            self._survey_rating_text = text
            if rating is None:
                self.survey_phase = "done"
                return survey.CLOSING
            self.survey_phase = "comment"
            return survey.COMMENT_QUESTION
        await self._store_survey(comment=text)
        return survey.CLOSING

    async def _store_survey(self, comment: str = "") -> None:
        self.survey_phase = "done"
        answer = survey.parse_answer(self._survey_rating_text, comment)
        if answer.rating is None:
            return
        await self.store.add_survey(self.session_id, rating=answer.rating, feedback_text=answer.feedback_text or None,
                                    channel_used="voice" if self.modality != "text" else "chat",
                                    requires_followup=answer.requires_followup)

    async def _persist(self, out: TurnOutcome, interaction_id: str | None) -> None:
        try:
            turn_id = await self.store.add_turn(self.session_id, TurnRecord(
                speaker="agent", role="assistant", text=out.answer or "", sources=out.sources, tier=out.tier,
                confidence=out.confidence, low_confidence=out.low_confidence, escalated=out.escalated,
                latencies=out.latencies, cost_usd=out.cost_usd, error=out.error), interaction_id=interaction_id)
            out.turn_id = turn_id
            esc = out.escalation
            if esc is not None and "repeat_reason" not in esc:
                details = {k: v for k, v in esc.items() if k not in ("reason", "handoff")}
                await self.store.add_escalation(self.session_id, reason=esc["reason"], handoff=esc["handoff"],
                                                details={**details, "transcript": out.transcript}, turn_id=turn_id)
                await self._publish({"type": "escalation", "reason": esc["reason"], "handoff": esc["handoff"],
                                     "session_id": self.session_id, "turn_id": turn_id,
                                     "transcript": out.transcript, "rule": esc.get("rule")})
            reason = self._unresolved_reason(out)
            if reason:
                await self.store.record_unresolved(out.transcript, reason=reason, session_id=self.session_id)
        except Exception:  # noqa: BLE001 - a storage hiccup must not end the call
            log.exception("could not store the turn")

    @staticmethod
    def _unresolved_reason(out: TurnOutcome) -> Literal["escalated", "low_confidence", "no_sources"] | None:
        if out.kind in ("survey", "closing"):
            return None
        if out.escalated:
            esc = out.escalation or {}
            reason = esc.get("repeat_reason") or esc.get("reason")
            return None if reason in _NOT_QUESTIONS else "escalated"
        if out.kind != "answer":
            return None
        if out.low_confidence:
            return "low_confidence"
        if not out.sources:
            return "no_sources"
        return None

    async def _publish(self, event: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            await self.on_event(event)
        except Exception:  # noqa: BLE001
            log.exception("could not publish %s", event.get("type"))

    # ------------------------------------------------------------------ end of call
    async def end(self) -> None:
        """Store a half-finished survey, wait for background writes, close the session row."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.survey_phase == "comment":
            await self._store_survey()
        resolved = self._escalation is None
        await self.store.end_session(self.session_id, status="escalated" if not resolved else "ended",
                                     resolved_by_ai=resolved)


def _apology() -> str:
    return "I'm sorry, I'm having trouble answering right now."


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: BLE001
            pass
