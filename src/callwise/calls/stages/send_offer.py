"""A command a caller cannot follow by ear, offered by text message or email instead (issue 21).

A voice answer never reads code, SQL or a command line out (``callwise.routing.speakable``); it says
what to do in words and that the exact command is written in the article. When the caller can be
reached (a phone number or an email address on the call, or in the CRM record) and the organisation
has Twilio or SendGrid set up, the answer ends with an offer: "Would you like me to text you the exact
command?". The offer is kept in the call's memory (``CallMemory.offered_send``); a "yes" on the next
turn queues the message through the outbox (``twilio.sms`` / ``sendgrid.email``, the survey follow-up's
actions, so delivery is retried and exactly once), and the caller hears that it was sent. Anything
else drops the offer and the turn goes on as usual.

The offer is made when the spoken answer left code out (a code block the model wrote, or the
extractive answerer's pointer to the command) or when the caller asked for a command or code
(``asks_for_code``) and the page the answer came from has some. What is sent: the code the answer left out (the model's dropped code blocks), else the code blocks of
the page the answer came from, with the page's title.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from callwise.calls import languages
from callwise.calls.context import TurnContext
from callwise.calls.followup import choose_channel
from callwise.integrations.outbox import enqueue

log = logging.getLogger("callwise.turn")

Channel = Literal["sms", "email"]

OFFER: dict[str, str] = {"sms": "Would you like me to text you the exact command?",
                         "email": "Would you like me to email you the exact command?"}
SENT: dict[str, str] = {"sms": "I've sent it to you by text message.", "email": "I've sent it to your email."}
NOT_SENT = "Okay, I won't send it."
NOT_QUEUED = "Sorry, I couldn't send it just now."
#: at most this much code in one message (an SMS of a few segments; an email reads the same)
MAX_CHARS = 600
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|$)", re.DOTALL)
_ASKS_FOR_CODE = re.compile(
    r"\b(?:commands?|syntax|snippet|script|sql|query|code|one-liner|flag|option|directive)\b"
    r"|\bwhat (?:do|should) i (?:type|run|enter|put)\b|\bhow do i (?:type|write|run)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(?:no|nope|not now|no thanks|no thank you|don't|do not)\b", re.IGNORECASE)


@dataclass(frozen=True)
class PendingSend:
    """An offer made: where the message would go and what it says."""

    channel: Channel
    contact: str
    body: str
    subject: str


class CommandSender:
    """Queues a message to the caller through the outbox on the organisation's own Twilio or SendGrid
    credentials. ``credentials``: a ``callwise.integrations.credentials.CredentialStore`` (its
    ``configured(org)`` says which vendors are set up)."""

    def __init__(self, pool: Any, credentials: Any, *, region: str = "US") -> None:
        self.pool = pool
        self.credentials = credentials
        self.region = region

    async def channel_for(self, organization_id: str, contact: dict[str, Any]) -> tuple[Channel, str] | None:
        """Text message when the caller has a phone and Twilio is set up, else email, else None."""
        if not (contact.get("phone") or contact.get("email")):
            return None
        configured = await self.credentials.configured(organization_id)
        choice = choose_channel("auto", contact, configured)
        if choice is not None and choice[0] == "sms":
            from callwise.integrations.phone import e164

            return "sms", e164(choice[1], self.region) or choice[1]
        return choice

    async def send(self, organization_id: str, session_id: str | None, pending: PendingSend, key: str) -> str | None:
        """The outbox row's id; None when the same ``key`` was queued before (nothing sent twice)."""
        if pending.channel == "sms":
            action, payload = "twilio.sms", {"to": pending.contact, "body": pending.body, "kind": "answer"}
        else:
            action, payload = "sendgrid.email", {"to": pending.contact, "subject": pending.subject, "body": pending.body}
        async with self.pool.acquire() as conn, conn.transaction():
            return await enqueue(conn, organization_id=organization_id, action=action,
                                 payload={**payload, "organization_id": organization_id},
                                 idempotency_key=key, session_id=session_id)


def asks_for_code(question: str) -> bool:
    """The caller asked for a command, a query, an option or code: what a voice answer will not read out."""
    return bool(_ASKS_FOR_CODE.search(question or ""))


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of ``text``, stripped, empty ones left out."""
    return [b.strip() for b in _FENCE.findall(text or "") if b.strip()]


def command_text(dropped: Sequence[str], sources: Sequence[Any], source_rank: int = 0) -> tuple[str, str] | None:
    """(title, code) to send: the code the answer left out (``dropped``: the speakable stream's ``code``), else
    the code blocks of the source the answer came from (``source_rank``, then the others in order)."""
    code = [b for d in dropped for b in (code_blocks(d) or ([d.strip()] if d.strip() else []))]
    title = ""
    ordered = list(sources[source_rank:source_rank + 1]) + [s for i, s in enumerate(sources) if i != source_rank]
    if not code:
        for src in ordered:
            code = code_blocks(getattr(src, "text", "") or "")
            if code:
                title = getattr(src, "title", "") or ""
                break
    elif ordered:
        title = getattr(ordered[0], "title", "") or ""
    if not code:
        return None
    body = "\n\n".join(code)
    if len(body) > MAX_CHARS:
        body = body[:MAX_CHARS].rsplit("\n", 1)[0] or body[:MAX_CHARS]
    return title, body


def _line_in(language: str, line: str) -> bool:
    """Whether the call's language has this fixed line (English always): the offer is not made in a
    language the agent would have to switch out of."""
    return language == "en" or languages.localize(line, language) != line


async def offer_to_send(ctx: TurnContext, dropped: Sequence[str], source_rank: int = 0) -> bool:
    """After a voice answer that pointed to a command: offer to send it, and remember the offer.
    False (nothing said) without a sender, a reachable caller, a channel or any code to send."""
    sender = getattr(ctx.deps, "sender", None)
    call = ctx.call
    if sender is None or not call.persist:
        return False
    from callwise.calls.stages.escalate import contact_of

    found = command_text(dropped, ctx.sources, source_rank)
    if found is None:
        return False
    try:
        choice = await sender.channel_for(call.organization_id, contact_of(call))
    except Exception:  # noqa: BLE001 - no offer rather than a failed turn
        log.exception("could not look up the caller's channels")
        return False
    if choice is None or not _line_in(call.language, OFFER[choice[0]]):
        return False
    title, code = found
    subject = f"The command you asked about{': ' + title if title else ''}"
    body = f"{title}\n\n{code}" if title else code
    call.memory.offered_send = PendingSend(choice[0], choice[1], body, subject)
    await ctx.say(" " + OFFER[choice[0]])
    return True


async def reply_to_offer(ctx: TurnContext) -> bool:
    """The turn after an offer: a yes queues the message and says so (True: the turn is answered);
    a no says it will not be sent (True); anything else drops the offer (False: a new question)."""
    memory = ctx.call.memory
    pending = memory.offered_send
    sender = getattr(ctx.deps, "sender", None)
    if pending is None or sender is None:
        memory.offered_send = None
        return False
    memory.offered_send = None
    from callwise.calls.stages.escalate import is_yes

    text = ctx.guarded or ctx.text
    call = ctx.call
    if is_yes(text) or languages.is_yes(text, call.language):
        await ctx.commit_point()  # a drafted turn sends nothing before the caller has finished
        key = f"answer-send:{call.session_id or call.organization_id}:{ctx.interaction_id or len(memory.turns)}"
        try:
            await sender.send(call.organization_id, call.session_id, pending, key)
        except Exception:  # noqa: BLE001 - the caller hears it failed rather than a silent success
            log.exception("could not queue the command to send")
            await ctx.say(NOT_QUEUED)
            ctx.finish("answer")
            return True
        log.info("command queued to the caller by %s", pending.channel)
        await ctx.say(SENT[pending.channel])
        ctx.finish("answer")
        return True
    if _NO.search(text):
        await ctx.say(NOT_SENT)
        ctx.finish("acknowledgement")
        return True
    return False
