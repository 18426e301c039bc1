"""What a support call needs, built once per worker process (``callwise.wiring.agent``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from callwise.handoff.escalation import EscalationRules

if TYPE_CHECKING:
    from callwise.calls.stages.escalate import Escalator


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
    #: decides the handoff and what the caller hears (default: the rules' live/callback by service
    #: hours); the handoff issue plugs its case desk / outbox in here
    escalator: Escalator | None = None
    #: text made speakable before TTS (applied to every reply and streamed delta)
    speakable: Callable[[str], str] | None = None
    #: the caller's CRM lookup at call start (``callwise.calls.caller.CallerService``); None: no CRM lookups
    callers: Any | None = None
    #: tokens of earlier turns given to the router (conversation memory)
    history_tokens: int = 600
    #: assign each call a variant of every running A/B experiment (callwise.evaluation.ab) and apply its config
    experiments: bool = True
