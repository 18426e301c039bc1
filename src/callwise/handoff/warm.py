"""The warm transfer contract between the handoff service and the worker.

The handoff service decides *that* a caller is warm-transferred and records what happened on the case; only
the worker can do it (dial the on-duty person into a side room, brief them, move them into the caller's room:
``callwise.agent.warm_transfer``). The worker hands the call a :class:`WarmLine`, whose ``warm`` dials; the
service gives it a :class:`WarmBrief` and gets a :class:`WarmOutcome` back.

The caller hears one sentence when the person does not take the call; its ``what`` part is one of
:data:`WARM_FAILURES`, with the wording in each served language in :data:`WARM_SLOT_PHRASES` (the fallback
sentence around it is ``callwise.calls.languages``' ``fallback`` line).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from callwise.handoff.escalator import CallLine

WarmKind = Literal["accepted", "declined", "busy", "no_answer", "voicemail", "failed", "caller_left"]


@dataclass(frozen=True)
class WarmBrief:
    """What the on-duty person is told about the call: the case, why it came to a person, the caller's words."""

    case: str
    reason: str
    rule: str = ""
    matched: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)  # the caller's last lines, oldest first
    customer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WarmOutcome:
    """``accepted``: the person is in the caller's room. ``declined``, ``busy``, ``no_answer``, ``voicemail``:
    the person did not take the call. ``failed``: something else went wrong (the cold transfer may still work).
    ``caller_left``: the caller hung up while the person was being dialled."""

    kind: WarmKind
    detail: str = ""
    person: str | None = None  # the person's participant identity once they accepted


WarmDial = Callable[[WarmBrief], Awaitable[WarmOutcome]]


@dataclass
class WarmLine(CallLine):
    """A call line whose worker can also dial the on-duty person into a side room."""

    warm: WarmDial | None = None


#: what went wrong, said inside the fallback sentence ("I'm sorry, {what}, so I've made this a callback ...")
WARM_FAILURES: dict[str, str] = {
    "declined": "our colleague couldn't take your call just now",
    "busy": "our colleague's line was busy",
    "no_answer": "no one could pick up in time",
    "voicemail": "no one could pick up in time",
    "failed": "the transfer didn't go through",
}

#: the slot phrases the caller hears (the ``what`` of the fallback sentence, the ``name`` of an unnamed colleague) in
#: every served language besides English, for ``callwise.calls.languages.SLOT_PHRASES``
WARM_SLOT_PHRASES: dict[str, dict[str, str]] = {
    "our colleague couldn't take your call just now": {
        "es": "nuestro compañero no puede atender su llamada en este momento",
        "fr": "notre collègue ne peut pas prendre votre appel pour le moment",
        "de": "unser Kollege kann Ihren Anruf gerade nicht annehmen",
        "ja": "担当者が今はお電話に出られない", "zh": "同事现在无法接听您的电话"},
    "our colleague's line was busy": {
        "es": "la línea de nuestro compañero estaba ocupada", "fr": "la ligne de notre collègue était occupée",
        "de": "die Leitung unseres Kollegen war besetzt", "ja": "担当者の回線が話し中だった", "zh": "同事的线路正忙"},
    "no one could pick up in time": {
        "es": "nadie pudo contestar a tiempo", "fr": "personne n'a pu décrocher à temps",
        "de": "niemand konnte rechtzeitig abnehmen", "ja": "時間内に誰も応答できなかった", "zh": "没有人及时接听"},
    # who joined, when nobody's name is known (the accepted warm transfer; the shared on-duty link)
    "A colleague": {"es": "Un compañero", "fr": "Un collègue", "de": "Ein Kollege", "ja": "担当者", "zh": "一位同事"},
    "the transfer didn't go through": {
        "es": "la transferencia no se ha realizado", "fr": "le transfert n'a pas abouti",
        "de": "die Weiterleitung hat nicht geklappt", "ja": "転送ができなかった", "zh": "转接没有成功"},
}


def warm_fallback_message(hours: str, promise: str, what: str) -> str:
    """The one sentence a caller hears when the on-duty person did not take the call (the case number was
    already given with the transfer sentence)."""
    return f"I'm sorry, {what}, so I've made this a callback instead: {promise} during service hours, {hours}."
