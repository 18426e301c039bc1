"""What a turn carries from stage to stage (``TurnContext``), what it produces (``TurnOutcome``),
and what one call remembers between its turns (``CallContext``)."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from callwise.calls.draft import Draft, DraftDiscarded
from callwise.calls.languages import localize
from callwise.calls.memory import CallMemory
from callwise.handoff.escalation import CallState
from callwise.handoff.escalator import CallHandoff
from callwise.routing.types import CustomerContext, RoutedAnswer, SourceDoc

if TYPE_CHECKING:
    from callwise.calls.deps import SupportDeps

TurnKind = Literal["answer", "escalation", "survey", "closing", "acknowledgement"]
SurveyPhase = Literal["off", "rating", "comment", "done"]
EventSink = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class TurnOutcome:
    """What one customer turn produced; ``as_dict`` is the shape `callwise simulate --json` prints."""

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
    query: str | None = None  # the standalone question retrieval and the router got, when it differs
    #: the turn ended by asking once whether to pass the caller to a colleague (and why)
    offered_colleague: bool = False
    offer: dict[str, Any] | None = None
    screen: dict[str, Any] | None = None  # the shared screen's OCR text this turn used (callwise.calls.screen)

    def as_dict(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript, "answer": self.answer, "kind": self.kind, "sources": self.sources,
            "tier": self.tier, "confidence": self.confidence, "low_confidence": self.low_confidence,
            "escalated": self.escalated, "escalation": self.escalation,
            "latencies_ms": {k: round(v, 1) for k, v in self.latencies.items()},
            "cost_usd": self.cost_usd, "error": self.error, "query_type": self.query_type, "query": self.query,
            "screen": self.screen, "offered_colleague": self.offered_colleague, "offer": self.offer,
        }


@dataclass
class CallContext:
    """One call's state across turns: ids, the caller, escalation counters, survey phase, memory and
    the A/B configuration this caller was assigned (``overrides``: top_k, rerank, temperature,
    prompt_version, as ``callwise.evaluation.ab`` names them)."""

    deps: SupportDeps
    organization_id: str
    session_id: str | None
    modality: str = "voice"
    customer: CustomerContext | None = None
    speaker: str = "customer"
    on_event: EventSink | None = None
    state: CallState = field(default_factory=CallState)
    memory: CallMemory = field(default_factory=CallMemory)
    survey_phase: SurveyPhase = "off"
    survey_rating_text: str = ""
    rating_retries: int = 0
    escalation: dict[str, Any] | None = None  # the call's one handoff, once decided
    overrides: dict[str, Any] = field(default_factory=dict)
    persist: bool = True  # False for the nightly run: golden questions are not production turns
    experiments: list[Any] = field(default_factory=list)  # callwise.evaluation.ab.Assignment per running experiment
    ab_user_key: str | None = None
    caller: Any | None = None  # the CRM lookup started at call start (callwise.calls.caller.CallerLookup)
    crm_customer_applied: bool = False
    #: the call's language (callwise.calls.languages): fixed lines are said in it; ``language_choice`` says why
    language: str = "en"
    language_choice: Any | None = None
    language_stored: bool = False
    english_notice_given: bool = False
    screen: Any | None = None  # the shared screen (callwise.calls.screen.ScreenReader), when the caller shares one
    #: the call's handoff state: the line the worker describes, what the escalator left after escalating
    handoff: CallHandoff = field(init=False)

    def __post_init__(self) -> None:
        self.handoff = CallHandoff(self.organization_id, self.session_id, persist=self.persist)

    def draft_copy(self) -> CallContext:
        """A copy a drafted turn may change freely (``callwise.calls.draft``); ``adopt`` takes its changes."""
        shadow = copy.copy(self)
        shadow.state = copy.deepcopy(self.state)
        shadow.memory = copy.deepcopy(self.memory)
        shadow.handoff = copy.copy(self.handoff)
        return shadow

    def adopt(self, shadow: CallContext) -> None:
        """What a committed draft's turn changed in the call."""
        for name in TURN_STATE:
            setattr(self, name, getattr(shadow, name))


#: the parts of ``CallContext`` a turn changes (a draft changes its copy; the call adopts them at the commit)
TURN_STATE = ("state", "memory", "survey_phase", "survey_rating_text", "rating_retries", "escalation",
              "language_stored", "english_notice_given", "handoff", "customer", "crm_customer_applied")


@dataclass
class TurnContext:
    """One customer turn as it moves through the stages (``callwise.calls.pipeline``).

    Stages read what earlier stages wrote and write their own fields; a stage that ends the turn
    (survey reply, escalation, acknowledgement) calls ``finish``. ``say`` is how a stage speaks:
    every word the customer hears goes through it (and through ``deps.speakable`` when set).
    """

    call: CallContext
    text: str
    outcome: TurnOutcome
    started: float = field(default_factory=time.perf_counter)
    eos_at: float | None = None
    interaction_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    guarded: str = ""  # the customer's words as a model may see them (PII redacted per setting)
    injection_markers: list[str] = field(default_factory=list)
    query: str = ""  # the standalone question (query understanding) that retrieval uses
    answer_query: str = ""  # what the router is asked (the words, with terms carried from a question)
    retrieved: list[Any] = field(default_factory=list)  # every retrieved chunk, best first
    sources: list[SourceDoc] = field(default_factory=list)  # what the answering model sees
    passages: list[dict[str, Any]] = field(default_factory=list)  # sources with chunk ids and hashes (stored)
    retrieval_error: str | None = None
    answer: RoutedAnswer | None = None
    router_ran: bool = False
    done: bool = False
    completed: bool = False
    cancelled: bool = False
    spoken: list[str] = field(default_factory=list)  # everything the stages said
    delivered: list[str] = field(default_factory=list)  # what a streaming reader passed on
    emit: Callable[[str], Awaitable[None]] | None = None
    #: a drafted turn (preemptive generation): writes wait for ``draft``'s commit; ``adopt`` hands the call
    #: the turn's state once stored
    draft: Draft | None = None
    adopt: Callable[[], None] | None = None

    async def commit_point(self) -> None:
        """Before a write: a draft waits for its commit (``DraftDiscarded`` when dropped), then runs the
        stages it deferred. Nothing for a turn that is not a draft."""
        draft = self.draft
        if draft is None:
            return
        if not await draft.wait():
            raise DraftDiscarded
        while draft.deferred:
            await draft.deferred.pop(0).run(self)

    @property
    def deps(self) -> SupportDeps:
        return self.call.deps

    def ms_since_start(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    async def say(self, text: str) -> None:
        """Speak ``text`` (a whole reply or one streamed delta). A listener (``emit``) records in
        ``delivered`` what it actually passed on (a barge-in stops it mid-answer)."""
        if not text:
            return
        if self.call.language != "en":  # the agent's fixed lines in the caller's language
            text = localize(text, self.call.language)
        speakable = self.call.deps.speakable
        if speakable is not None:
            text = speakable(text)
        lat = self.outcome.latencies
        if "first_token_ms" not in lat:
            lat["first_token_ms"] = self.ms_since_start()
            if self.eos_at is not None:
                lat["eos_to_first_token_ms"] = (time.perf_counter() - self.eos_at) * 1000
        self.spoken.append(text)
        if self.emit is not None:
            await self.emit(text)

    def finish(self, kind: TurnKind) -> None:
        """A stage answered the turn itself; the stages after it (but persistence) are skipped."""
        self.outcome.kind = kind
        self.done = True
