"""The live handoff inside a LiveKit room (the worker's side of ``callwise.handoff.service``).

``wire_room`` tells the call's ``HandoffEscalator`` what only the worker knows: the room, whether the
caller dialled in over SIP (then the on-duty number gets a cold transfer, or a warm one where the org's
``settings.transfer_mode`` or ``CALLWISE_HANDOFF_TRANSFER_MODE`` says ``warm`` and an outbound trunk is
configured: ``callwise.agent.warm_transfer``) and their identity, how to speak
outside a turn (keep-alive lines, a failed transfer), how to wait for the agent to finish a sentence
before the line is handed over, and how to go quiet once a human (identity ``agent-*``) joins. When the
call ends before its rating, the survey follow-up is queued (SMS or email, per the org's
``settings.survey_followup`` or else ``CALLWISE_SURVEY_FOLLOWUP``, and the contact the caller gave).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc

from callwise.handoff.service import HandoffEscalator
from callwise.handoff.warm import WarmLine

log = logging.getLogger("callwise.handoff.room")


def is_sip(participant: rtc.RemoteParticipant) -> bool:
    try:
        return "SIP" in rtc.ParticipantKind.Name(participant.kind)
    except (ValueError, TypeError):
        return False


def wire_room(ctx: Any, call: Any, session: Any, participant: rtc.RemoteParticipant, settings: Any) -> None:
    escalator = call.deps.escalator
    sip = is_sip(participant)
    if sip and call.ctx.customer is not None:
        phone = (participant.attributes or {}).get("sip.phoneNumber")
        if phone:
            call.ctx.customer.extra.setdefault("phone", phone)
    if isinstance(escalator, HandoffEscalator):
        def quiet() -> None:
            session.input.set_audio_enabled(False)

        call.ctx.handoff.line = WarmLine(room=ctx.room.name, caller="sip" if sip else "app",
                                         participant_identity=participant.identity, speak=speaker(call, session),
                                         settle=settler(session), quiet=quiet,
                                         warm=warm_desk(call, session, settings) if sip else None)

        def on_join(p: rtc.RemoteParticipant) -> None:
            if p.identity.startswith("agent-"):
                call.ctx.handoff.human_joined(p.identity, p.name or None)

        ctx.room.on("participant_connected", on_join)

    async def after_call() -> None:
        await survey_if_unrated(settings, call)

    ctx.add_shutdown_callback(after_call)


def speaker(call: Any, session: Any) -> Callable[[str], Awaitable[None]]:
    """How the handoff speaks outside a turn (hold and keep-alive lines, what a transfer came to): the session
    says it, in the caller's language like the turn's own fixed lines (``callwise.calls.languages.localize``)."""
    from callwise.calls.languages import localize

    async def speak(text: str) -> None:
        language = getattr(call.ctx, "language", "en")
        handle = session.say(localize(text, language) if language != "en" else text)
        try:
            await handle
        except Exception:  # noqa: BLE001 - interrupted or the room went away
            log.debug("handoff line not fully played", exc_info=True)

    return speak


def settler(session: Any) -> Callable[[], Awaitable[None]]:
    """Waits (at most 15 s) until the agent has finished its sentence, before the line is handed over."""
    async def settle() -> None:
        for _ in range(150):
            if session.agent_state != "speaking":
                return
            await asyncio.sleep(0.1)

    return settle


def warm_desk(call: Any, session: Any, settings: Any, *, side_room: Any = None, hold_audio: Any = None) -> Any:
    """The call's warm transfer dialler, or None where a warm transfer cannot be made (then the cold one is).
    ``side_room`` (tests) replaces the framework's own side room; ``hold_audio`` False plays no hold music."""
    from dataclasses import replace

    from callwise.agent.warm_transfer import WarmTransferDesk, desk_llm_for, warm_config

    cfg = warm_config(settings, getattr(call.ctx, "language", "en"))
    if cfg is None:
        return None
    return WarmTransferDesk(session, replace(cfg, hold_audio=hold_audio),
                            desk_llm=desk_llm_for(settings, lambda: getattr(call.ctx, "language", "en")),
                            side_room=side_room)


async def survey_if_unrated(settings: Any, call: Any) -> None:
    """The call ended before its rating: queue the survey by SMS or email when the caller can be reached."""
    from callwise.calls.followup import choose_channel, request_survey
    from callwise.wiring.integrations import credential_store, survey_key

    if not call.session_id or call.ctx.survey_phase == "done":
        return
    customer = call.ctx.customer
    extra = getattr(customer, "extra", {}) or {}
    crm = getattr(call.ctx.caller, "customer", None)  # the CRM's record, where the caller lookup found one
    contact = {"phone": extra.get("phone") or getattr(crm, "phone", None),
               "email": extra.get("email") or getattr(crm, "email", None)}
    try:
        # the org's own choice (organizations.settings.survey_followup) wins over CALLWISE_SURVEY_FOLLOWUP
        own = await call.deps.pool.fetchval("select settings->>'survey_followup' from organizations where id = $1",
                                            call.organization_id)
        mode = own if own in ("sms", "email", "auto", "off") else settings.survey_followup
        if mode == "off":
            return
        configured = await credential_store(settings, call.deps.pool).configured(call.organization_id)
        choice = choose_channel(mode, contact, configured)
        if choice is not None:
            await request_survey(call.deps.pool, call.organization_id, call.session_id, channel=choice[0],
                                 contact=choice[1], public_url=settings.public_url, link_key=survey_key(settings),
                                 region=settings.default_phone_region)
    except Exception:  # noqa: BLE001 - the call is over; a failed follow-up is logged, not raised
        log.exception("could not queue the survey follow-up")
