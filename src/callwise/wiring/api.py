"""The HTTP API's services, built once from the settings (``callwise serve`` and the tests)."""

from __future__ import annotations

import logging
from typing import Any

from callwise.api.services import ApiServices, CrmAuth
from callwise.calls import SupportDeps
from callwise.wiring.crm import oauth_app, state_key, store_tokens
from callwise.wiring.integrations import credential_store, join_links, survey_key
from callwise.wiring.routing import tier3_price
from callwise.wiring.settings import Settings
from callwise.wiring.stack import AnsweringStack

log = logging.getLogger("callwise.wiring.api")


def crm_auth(settings: Settings, creds: Any) -> CrmAuth:
    async def store(organization_id: str, app: Any, body: dict[str, Any]) -> None:
        await store_tokens(creds, organization_id, app, body)

    return CrmAuth(
        state_key=state_key(settings),
        oauth_app=lambda provider: oauth_app(settings, provider),
        store_tokens=store,
        hubspot_client_secret=settings.hubspot_client_secret.get_secret_value() if settings.hubspot_client_secret else None,
    )


def answering_services(settings: Settings, stack: AnsweringStack) -> ApiServices:
    """The services of ``callwise serve``: ``/ask`` conversations get the support deps a worker's calls get
    (escalation rules with the learned detector, the handoff service, the judge, the CRM caller lookup)."""
    from callwise.wiring.agent import Components

    components = Components(settings=settings, runtime=stack.runtime, knowledge=stack.knowledge, router=stack.router)
    return api_services(settings, stack.runtime.pool, retriever=stack.knowledge.retriever, router=stack.router,
                        support=components.support_deps())


def api_services(settings: Settings, pool: Any, *, retriever: Any = None, router: Any = None,
                 support: SupportDeps | None = None) -> ApiServices:
    """Everything the routes need; the API token is the operator's (``CALLWISE_API_TOKEN``)."""
    creds = credential_store(settings, pool)
    try:
        links = join_links(settings)
    except Exception:  # noqa: BLE001 - no join links rather than no case desk
        log.warning("LiveKit settings unreadable: cases get no join links", exc_info=True)
        links = None
    return ApiServices(
        pool=pool, retriever=retriever, router=router, tier3_price=tier3_price(settings),
        token=settings.api_token.get_secret_value() if settings.api_token else None,
        join_links=links, public_url=settings.public_url, credentials=creds, crm=crm_auth(settings, creds),
        survey_key=survey_key(settings), support=support,
    )
