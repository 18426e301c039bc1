"""Meeting copilot: listens to every participant, whispers suggestions to the rep only.

For each final transcript of a participant (speaker = participant identity):

* a customer's question -> retrieval + the router -> an ``answer`` suggestion with its sources;
* a competitor named by anyone (``Settings.competitors``) -> a ``competitor`` suggestion;
* an action item said by anyone ("I'll send...", "please send ... by Friday") -> an ``action_item``.

Suggestions go to the reps' identities (``rep_identity_prefix``) over a LiveKit text stream on
topic ``callwise.suggestions``; never to anyone else, and nothing is spoken into the room. At the
end, ``finish()`` writes ``conversation_insights``: transcript, summary (router ``complete``),
topics, sentiment per speaker, action items, key moments, competitor mentions, next steps.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from callwise.calls.sentiment import sentiment as score_sentiment
from callwise.calls.store import ConversationStore, InsightRecord, TurnRecord
from callwise.routing.calibration import load_calibration
from callwise.routing.types import Message, sources_from

log = logging.getLogger("callwise.meeting")

SUGGESTION_TOPIC = "callwise.suggestions"
SuggestionKind = Literal["answer", "competitor", "action_item"]

_QUESTION_START = re.compile(
    r"^(?:so,? |and,? |but,? |okay,? |ok,? |sure\.? |also,? |first question,? |second question,? |"
    r"(?:first|second|third|another|one more|quick) question,? )*"
    r"(?:how|what|when|where|which|who|why|can|could|do|does|did|is|are|will|would|should|may|have|has)\b",
    re.IGNORECASE)
_ACTION = re.compile(
    r"\b(?:i'll|i will|we'll|we will|let me|i'm going to|i am going to|please|can you|could you|"
    r"make sure to|remember to|action item|next step|follow up|follow-up)\b[^.?!]*?"
    r"\b(?:send|email|share|schedule|set up|book|follow up|get back|prepare|forward|call|loop in|"
    r"check|confirm|review|draft)\b[^.?!]*", re.IGNORECASE)


@dataclass
class Suggestion:
    kind: SuggestionKind
    title: str
    text: str
    speaker: str
    trigger: str
    at_s: float | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SuggestionSink(Protocol):
    async def send(self, suggestion: Suggestion, reps: list[str]) -> None: ...


class RoomSuggestionSink:
    """Publishes a suggestion card as one text-stream message to the reps' identities only."""

    def __init__(self, local_participant: Any) -> None:
        self.local_participant = local_participant

    async def send(self, suggestion: Suggestion, reps: list[str]) -> None:
        if not reps:  # an empty destination list would broadcast to every participant
            log.info("no rep in the room; suggestion %s kept for the insights only", suggestion.kind)
            return
        await self.local_participant.send_text(
            json.dumps(suggestion.as_dict()), topic=SUGGESTION_TOPIC, destination_identities=list(reps),
            attributes={"kind": suggestion.kind})


class ListSink:
    """Collects suggestions (simulation, tests)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Suggestion, list[str]]] = []

    async def send(self, suggestion: Suggestion, reps: list[str]) -> None:
        if reps:
            self.sent.append((suggestion, list(reps)))


@dataclass
class MeetingDeps:
    retriever: Any
    router: Any
    pool: Any
    competitors: list[str] = field(default_factory=list)
    rep_prefix: str = "rep-"
    top_k: int = 3
    min_answer_confidence: float = 0.3


def is_question(text: str) -> bool:
    t = text.strip()
    return t.endswith("?") or bool(_QUESTION_START.match(t))


def competitor_mentions(text: str, competitors: list[str]) -> list[str]:
    return [c for c in competitors if re.search(rf"\b{re.escape(c)}\b", text, re.IGNORECASE)]


def action_items(text: str) -> list[str]:
    return [m.group(0).strip().rstrip(",") for m in _ACTION.finditer(text)]


def sentiment(text: str) -> float:
    """VADER's compound score in [-1, 1] (``callwise.calls.sentiment``: negation-aware, unlike a word list)."""
    return score_sentiment(text)


class MeetingCopilot:
    def __init__(self, deps: MeetingDeps, *, organization_id: str, session_id: str, sink: SuggestionSink) -> None:
        self.deps = deps
        self.organization_id = organization_id
        self.session_id = session_id
        self.sink = sink
        self.store = ConversationStore(deps.pool, organization_id)
        self.participants: list[str] = []
        self.transcript: list[dict[str, Any]] = []
        self.suggestions: list[Suggestion] = []
        self.key_moments: list[dict[str, Any]] = []
        self._topics: list[str] = []

    @classmethod
    async def start(cls, deps: MeetingDeps, *, organization_id: str, room: str, sink: SuggestionSink,
                    modality: str = "video") -> MeetingCopilot:
        store = ConversationStore(deps.pool, organization_id)
        session_id = await store.start_session(room=room, kind="meeting", modality=modality)  # type: ignore[arg-type]
        return cls(deps, organization_id=organization_id, session_id=session_id, sink=sink)

    def is_rep(self, identity: str) -> bool:
        return identity.startswith(self.deps.rep_prefix)

    @property
    def reps(self) -> list[str]:
        return [p for p in self.participants if self.is_rep(p)]

    def join(self, identity: str) -> None:
        if identity not in self.participants:
            self.participants.append(identity)

    def leave(self, identity: str) -> None:
        if identity in self.participants:
            self.participants.remove(identity)

    async def on_utterance(self, speaker: str, text: str, *, at_s: float | None = None,
                           latencies: dict[str, float] | None = None) -> list[Suggestion]:
        """One participant's final transcript -> the suggestions pushed to the reps."""
        text = text.strip()
        if not text:
            return []
        self.join(speaker)
        self.transcript.append({"speaker": speaker, "text": text, "at_s": at_s})
        try:
            await self.store.add_turn(self.session_id, TurnRecord(speaker=speaker, role="user", text=text,
                                                                   latencies=latencies or {}))
        except Exception:  # noqa: BLE001 - the rep still gets the suggestions; the transcript is kept in memory
            log.exception("could not store %s's turn", speaker)
        found: list[Suggestion] = []
        for name in competitor_mentions(text, self.deps.competitors):
            found.append(Suggestion("competitor", f"Competitor mentioned: {name}",
                                    f"{speaker} mentioned {name}. Ask what works and what doesn't for them there.",
                                    speaker, text, at_s))
            self.key_moments.append({"type": "competitor", "speaker": speaker, "competitor": name, "at_s": at_s})
        for item in action_items(text):
            found.append(Suggestion("action_item", "Action item", item, speaker, text, at_s))
        if not self.is_rep(speaker) and is_question(text):
            answer = await self._answer(speaker, text, at_s)
            if answer is not None:
                found.append(answer)
        for s in found:
            self.suggestions.append(s)
            await self.sink.send(s, self.reps)
        return found

    async def _answer(self, speaker: str, question: str, at_s: float | None) -> Suggestion | None:
        self.key_moments.append({"type": "question", "speaker": speaker, "text": question, "at_s": at_s})
        started = time.perf_counter()
        result = await self.deps.retriever.retrieve(question, self.organization_id, top_k=self.deps.top_k)
        sources = sources_from(result.chunks)
        if not sources:
            await self.store.record_unresolved(question, reason="no_sources", session_id=self.session_id)
            return None
        answer = await self.deps.router.answer(question, sources, modality="text", organization_id=self.organization_id,
                                               session_id=self.session_id)
        # the router's confidence is a calibrated probability of being right (callwise.routing.calibration): below the
        # calibrated escalation floor a rep is better served by no suggestion than a probably wrong one
        floor = load_calibration().escalate_below(self.deps.min_answer_confidence)
        if answer.tier is None or (answer.confidence is not None and answer.confidence < floor):
            await self.store.record_unresolved(question, reason="low_confidence", session_id=self.session_id)
            return None
        if sources[0].title and sources[0].title not in self._topics:
            self._topics.append(sources[0].title)
        log.debug("suggestion in %.0f ms", (time.perf_counter() - started) * 1000)
        return Suggestion("answer", f"Answer for {speaker}", answer.text, speaker, question, at_s,
                          sources=[{"index": s.index, "document": s.document, "title": s.title} for s in sources],
                          confidence=answer.confidence)

    async def finish(self) -> InsightRecord:
        """Write ``conversation_insights`` and close the session."""
        lines = "\n".join(f"{t['speaker']}: {t['text']}" for t in self.transcript)
        summary = await self._complete("summary", [
            Message("system", "Summarize this sales meeting in three sentences: needs, answers given, next steps."),
            Message("user", lines)]) if lines else ""
        by_speaker: dict[str, list[float]] = {}
        for t in self.transcript:
            by_speaker.setdefault(t["speaker"], []).append(sentiment(t["text"]))
        actions = [s.text for s in self.suggestions if s.kind == "action_item"]
        competitors = [{"competitor": m["competitor"], "speaker": m["speaker"], "at_s": m["at_s"]}
                       for m in self.key_moments if m["type"] == "competitor"]
        insights = InsightRecord(
            transcript=self.transcript, summary=summary.strip(), topics=list(self._topics),
            sentiment_scores={k: round(sum(v) / len(v), 3) for k, v in by_speaker.items()},
            action_items=actions, key_moments=self.key_moments, competitor_mentions=competitors,
            next_steps=[a for a in actions if re.search(r"\b(?:i'll|i will|we'll|we will|let me)\b", a, re.I)] or actions,
        )
        await self.store.save_insights(self.session_id, insights)
        await self.store.end_session(self.session_id, status="ended")
        return insights

    async def _complete(self, purpose: str, messages: list[Message]) -> str:
        try:
            return await self.deps.router.complete(messages, purpose=purpose, organization_id=self.organization_id,
                                                   session_id=self.session_id)
        except Exception as exc:  # noqa: BLE001 - insights are best effort; the transcript is kept
            log.warning("no %s: %s", purpose, exc)
            return ""
