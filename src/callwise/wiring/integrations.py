"""Settings -> the case desk, credentials, outbox handlers, the dispatcher and the handoff service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from callwise.handoff.cases import CaseDesk, JoinLinks
from callwise.handoff.escalation import EscalationPolicy, EscalationRules
from callwise.handoff.service import HandoffConfig, HandoffService
from callwise.integrations.credentials import CredentialStore, load_cipher
from callwise.integrations.outbox import Dispatcher, Handler
from callwise.wiring.settings import Settings

log = logging.getLogger("callwise.integrations")


def join_links(settings: Settings) -> JoinLinks | None:
    if settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret:
        return JoinLinks(url=settings.livekit_url, api_key=settings.livekit_api_key.get_secret_value(),
                         api_secret=settings.livekit_api_secret.get_secret_value())
    return None


def survey_key(settings: Settings) -> bytes:
    """The HMAC key of survey links, derived from the credential encryption key (never stored apart)."""
    import hashlib

    from callwise.integrations.credentials import KEY_FILE

    if settings.encryption_key is not None:
        material = settings.encryption_key.get_secret_value().encode()
    else:
        load_cipher(None, settings.data_dir)  # makes the key file once if needed
        material = (settings.data_dir / KEY_FILE).read_bytes()
    return hashlib.sha256(b"callwise-survey-link\x00" + material).digest()


def case_desk(settings: Settings, pool: Any, organization_id: str) -> CaseDesk:
    return CaseDesk(pool, organization_id, links=join_links(settings))


def credential_store(settings: Settings, pool: Any) -> CredentialStore:
    """The encrypted per-org credentials; every secret read is registered with the log redactor."""
    from callwise.infra.logs import register_secrets

    key = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    return CredentialStore(pool, load_cipher(key, settings.data_dir), on_secrets=register_secrets)


def vendor_config(settings: Settings) -> Any:
    from callwise.integrations.actions import VendorConfig

    links = join_links(settings)
    return VendorConfig(
        zendesk_base_url=settings.zendesk_base_url, slack_base_url=settings.slack_base_url,
        twilio_base_url=settings.twilio_base_url, sendgrid_base_url=settings.sendgrid_base_url,
        livekit_url=settings.livekit_url, livekit_api_key=links.api_key if links else None,
        livekit_api_secret=links.api_secret if links else None, public_url=settings.public_url)


def handlers(settings: Settings, pool: Any, creds: CredentialStore | None = None) -> dict[str, Handler]:
    from callwise.integrations.actions import build_handlers
    from callwise.integrations.crm.actions import build_crm_handlers

    creds = creds or credential_store(settings, pool)
    return {**build_handlers(pool, creds, vendor_config(settings)), **build_crm_handlers(creds, crm_config(settings))}


def crm_config(settings: Settings) -> Any:
    from callwise.integrations.crm.connect import CRMConfig

    return CRMConfig(hubspot_base_url=settings.hubspot_base_url, hubspot_token_path=settings.hubspot_token_path,
                     salesforce_login_url=settings.salesforce_login_url, phone_region=settings.default_phone_region)


def caller_service(settings: Settings, pool: Any) -> Any:
    """The CRM lookup at call start (``callwise.calls.caller``): the org's connected CRM, within the budget."""
    from callwise.calls.caller import CallerService, PgCustomerCache
    from callwise.integrations.crm.connect import crm_for

    creds = credential_store(settings, pool)
    cfg = crm_config(settings)
    return CallerService(pool, lambda org: crm_for(creds, org, cfg), budget_s=settings.crm_lookup_budget_ms / 1000,
                         cache=PgCustomerCache(pool, settings.crm_cache_s), region=settings.default_phone_region)


def dispatcher(settings: Settings, pool: Any, *, organization_id: str | None = None,
               creds: CredentialStore | None = None) -> Dispatcher:
    return Dispatcher(pool, handlers(settings, pool, creds), organization_id=organization_id)


def handoff_service(settings: Settings, pool: Any, rules: EscalationRules | None = None,
                    dispatch: Dispatcher | None = None) -> HandoffService:
    creds = credential_store(settings, pool)
    dispatch = dispatch or dispatcher(settings, pool, creds=creds)
    links = join_links(settings)
    return HandoffService(
        pool, rules or EscalationRules(EscalationPolicy.from_settings(settings)),
        config=HandoffConfig(transfer_to=settings.handoff_transfer_to, livekit_configured=links is not None,
                             timeout_s=settings.handoff_timeout_s, keepalive_s=settings.handoff_keepalive_s,
                             ringing_timeout_s=settings.handoff_ringing_timeout_s,
                             hold_line_s=settings.handoff_hold_line_s,
                             transfer_mode=settings.handoff_transfer_mode),
        channels=creds.configured, deliver_now=dispatch.deliver_now,
        desk_factory=lambda org: CaseDesk(pool, org, links=links))


@asynccontextmanager
async def running_dispatcher(settings: Settings, pool: Any) -> AsyncIterator[Dispatcher | None]:
    """The outbox dispatcher as a background task (worker, ``callwise serve``); off with
    ``CALLWISE_OUTBOX_DISPATCHER=false``."""
    from callwise.integrations.credentials import CredentialError

    if not settings.outbox_dispatcher:
        yield None
        return
    try:
        d = dispatcher(settings, pool)
    except CredentialError:
        log.exception("outbox dispatcher not started: integration credentials unusable")
        yield None
        return
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop, poll_s=settings.outbox_poll_s), name="outbox-dispatcher")
    try:
        yield d
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=10)
        except (TimeoutError, Exception):  # noqa: BLE001 - shutting down
            task.cancel()


def handoff_escalator(settings: Settings, pool: Any) -> Any:
    """The turn's ``Escalator`` backed by the case desk and the org's integrations. With unreadable
    credentials (a changed key) it still opens cases and promises callbacks, never a live handoff."""
    from callwise.handoff.service import HandoffEscalator
    from callwise.integrations.credentials import CredentialError

    try:
        return HandoffEscalator(handoff_service(settings, pool))
    except CredentialError:
        log.exception("integration credentials unusable: cases only, no live handoff")
        links = join_links(settings)
        return HandoffEscalator(HandoffService(
            pool, EscalationRules(EscalationPolicy.from_settings(settings)),
            config=HandoffConfig(timeout_s=settings.handoff_timeout_s, keepalive_s=settings.handoff_keepalive_s),
            desk_factory=lambda org: CaseDesk(pool, org, links=links)))
