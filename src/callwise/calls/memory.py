"""What the call remembers: its recent turns (bounded by tokens) and the facts the customer stated.

The router gets ``history()`` (oldest first, newest kept when the budget runs out); query
understanding reads the last question and the stated facts to make a follow-up standalone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from callwise.routing.text import approx_tokens
from callwise.routing.types import Message

#: how many tokens of earlier turns reach the router (about 8 short exchanges)
HISTORY_TOKENS = 600
_KEEP_TURNS = 40


@dataclass(frozen=True)
class Remembered:
    role: Literal["user", "assistant"]
    text: str
    kind: str = "answer"  # the turn kind of the customer's words: answer (a question), acknowledgement (a statement) ...


@dataclass
class CallMemory:
    turns: deque[Remembered] = field(default_factory=lambda: deque(maxlen=_KEEP_TURNS))
    facts: list[str] = field(default_factory=list)  # statements the customer made (no question asked)
    last_question: str | None = None  # the last customer turn that was answered from the knowledge base
    #: the last reply offered a person (an account action, a question the help centre does not cover):
    #: the caller's "yes" is a request for one (``callwise.calls.stages.answerable``)
    offered_person: bool = False
    #: pages of the last answered question, best first: the prior a follow-up's page ranking leans on
    #: (``callwise.calls.stages.retrieve``)
    last_pages: list[str] = field(default_factory=list)
    turn_pages: list[str] = field(default_factory=list)  # this turn's pages, kept as ``last_pages`` once answered
    #: the last answer offered to send its command by text or email: a ``PendingSend`` until the caller
    #: replies (``callwise.calls.stages.send_offer``)
    offered_send: Any | None = None

    def add(self, role: Literal["user", "assistant"], text: str, kind: str = "answer") -> None:
        text = " ".join(text.split())
        if text:
            self.turns.append(Remembered(role, text, kind))

    def add_fact(self, text: str) -> None:
        text = " ".join(text.split())
        if text and text not in self.facts:
            self.facts.append(text)
            del self.facts[:-5]

    def last_user_kind(self) -> str | None:
        """The kind of the customer's previous turn (``acknowledgement`` after a statement)."""
        return next((t.kind for t in reversed(self.turns) if t.role == "user"), None)

    def history(self, max_tokens: int = HISTORY_TOKENS) -> list[Message]:
        """The most recent turns that fit in ``max_tokens``, oldest first, as chat messages."""
        out: list[Message] = []
        used = 0
        for turn in reversed(self.turns):
            cost = approx_tokens(turn.text) + 4
            if used + cost > max_tokens:
                break
            used += cost
            out.append(Message(turn.role, turn.text))
        out.reverse()
        return out
