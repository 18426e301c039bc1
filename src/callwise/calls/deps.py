"""What a support call needs, built once per worker process (``callwise.wiring.agent``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from callwise.handoff.escalation import EscalationRules
from callwise.handoff.escalator import Escalator, RulesEscalator
from callwise.handoff.judge import EscalationJudge


class RetrieverLike(Protocol):
    async def retrieve(self, query: str, organization_id: str, top_k: int | None = None) -> Any: ...


class RouterLike(Protocol):
    def answer_stream(self, query: str, sources: Any = (), **kwargs: Any) -> Any: ...


@dataclass
class SupportDeps:
    retriever: RetrieverLike | None
    router: RouterLike
    pool: Any
    rules: EscalationRules = field(default_factory=EscalationRules)
    top_k: int = 5
    redact_pii: bool = False
    live_stream: bool = False  # stream every tier at once (no cascade once words are spoken)
    #: decides the handoff and what the caller hears: the live wiring gives the handoff service's
    #: ``HandoffEscalator``; when none is given, the built-in ``RulesEscalator`` (a case recorded on the
    #: desk, nothing more) is set, so every call has one (see ``handoff``)
    escalator: Escalator | None = None
    #: a generative second opinion on turns the escalation detector is unsure about; only where a
    #: generative tier is configured (``EscalationJudge.cheapest(router.tiers)``), else None
    judge: EscalationJudge | None = None
    #: text made speakable before TTS (applied to every reply and streamed delta)
    speakable: Callable[[str], str] | None = None
    #: the caller's CRM lookup at call start (``callwise.calls.caller.CallerService``); None: no CRM lookups
    callers: Any | None = None
    #: tokens of earlier turns given to the router (conversation memory)
    history_tokens: int = 600
    #: sends a command a voice answer did not read out by text or email when the caller says yes
    #: (``callwise.calls.stages.send_offer.CommandSender``); None: no such offer
    sender: Any | None = None
    #: assign each call a variant of every running A/B experiment (callwise.evaluation.ab) and apply its config
    experiments: bool = True

    def __post_init__(self) -> None:
        if self.escalator is None:
            self.escalator = RulesEscalator(self.pool)

    @property
    def handoff(self) -> Escalator:
        """The escalator, never None (``__post_init__`` sets the built-in one)."""
        if self.escalator is None:  # set to None after construction
            self.escalator = RulesEscalator(self.pool)
        return self.escalator
