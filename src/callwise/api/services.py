"""What the HTTP routes are handed (``create_app(services)``) and the small helpers every route module shares.

The route modules (``app``, ``cases``, ``crm``, ``webhooks``) import this module and nothing of each other;
the wiring (``callwise.wiring.api.api_services``) builds :class:`ApiServices` from the settings once, so no
handler reads settings.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callwise.calls.deps import SupportDeps
from callwise.handoff.cases import JoinLinks
from callwise.infra.db import find_organization


@dataclass
class CrmAuth:
    """The CRM connect flow's secrets and steps, built by the wiring."""

    state_key: bytes  # signs the OAuth ``state``
    oauth_app: Callable[[str], Any]  # provider -> its OAuth app (raises OAuthError when it is not configured)
    store_tokens: Callable[[str, Any, dict[str, Any]], Awaitable[None]]  # (org id, app, token response)
    hubspot_client_secret: str | None = None  # the app-wide secret, when an org has none of its own


@dataclass
class ApiServices:
    pool: Any
    retriever: Any
    router: Any
    tier3_price: Any
    token: str | None = None
    join_links: JoinLinks | None = None  # LiveKit join links for a claimed live case
    public_url: str | None = None  # what vendors signed (CALLWISE_PUBLIC_URL), when behind a proxy
    survey_key: bytes | None = None  # signs the survey links (callwise.calls.followup.survey_token)
    credentials: Any = None  # the encrypted per-org vendor credentials (CredentialStore)
    crm: CrmAuth | None = None
    #: what a support call needs (``callwise.wiring.agent.Components.support_deps``, as the worker's calls get);
    #: None: ``/ask`` calls get the retriever, the router and the built-in escalation rules and escalator
    support: SupportDeps | None = None
    conversation_idle_s: float = 15 * 60.0  # an /ask conversation without a turn for this long is ended


SERVICES: web.AppKey[ApiServices] = web.AppKey("services")


def services_of(request: web.Request) -> ApiServices:
    return request.app[SERVICES]


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad_request("the body is not valid JSON") from None
    except RecursionError:
        raise _bad_request("the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    return body


async def org_id(request: web.Request) -> str:
    """The organization named in the path; 404 when there is none (a request never creates one)."""
    found = await find_organization(services_of(request).pool, request.match_info["org"])
    if found is None:
        raise web.HTTPNotFound(text=json.dumps({"error": f"unknown organization {request.match_info['org']!r}"}),
                               content_type="application/json")
    return found


MAX_BODY = 64 * 1024  # vendor webhooks: a larger body is refused before it is read


async def read_body(request: web.Request) -> bytes:
    """The raw body of a vendor webhook, at most ``MAX_BODY`` bytes (413 beyond)."""
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length or 0)
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    return raw


def signed_url(request: web.Request) -> str:
    """The URL a vendor signed: the public one when callwise sits behind a proxy (CALLWISE_PUBLIC_URL)."""
    base = services_of(request).public_url
    return (base.rstrip("/") + request.path_qs) if base else str(request.url)
