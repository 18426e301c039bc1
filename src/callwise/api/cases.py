"""The case desk on the HTTP API and the dashboard (mounted by ``callwise.api.app.create_app``).

``GET /v1/orgs/{org}/escalations[?status=open&limit=50]`` (with the transcript that led to each case),
``GET /v1/orgs/{org}/escalations/{case}[?agent=alice]``, ``POST .../{case}/claim`` ``{"agent": "alice"}`` (a
live case answers with the claimer's short-lived join link), ``POST .../{case}/resolve`` ``{"agent", "notes"}``.
``{case}`` is ``CW-1042``, ``1042`` or the case id. Reading needs a viewer key of the org, claiming and
resolving an agent key (``callwise.api.auth``); an agent key with a name acts under that name only, and a
join link is minted only for the agent who holds the claim.
``GET /cases`` is the dashboard page: open cases and failing outbox rows, of the key's org (all for the operator).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from callwise.api.auth import principal_of
from callwise.api.pages import page as html_page
from callwise.api.services import json_body, org_id, services_of
from callwise.handoff.cases import CaseDesk, CaseError

log = logging.getLogger("callwise.api.cases")

def _json(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=lambda o: json.dumps(o, default=str))


async def _desk(request: web.Request) -> CaseDesk:
    services = services_of(request)
    return CaseDesk(services.pool, await org_id(request), links=services.join_links)


async def _body(request: web.Request) -> dict[str, Any]:
    return await json_body(request)


def _acting_agent(request: web.Request, named: str | None) -> str:
    """The agent a request acts as: a named key is that agent (and no other); the operator names anyone."""
    principal = principal_of(request)
    named = (named or "").strip()
    if principal.name and not principal.operator:
        if named and named != principal.name:
            raise web.HTTPForbidden(text=json.dumps({"error": f"this key acts as {principal.name!r}, not {named!r}"}),
                                    content_type="application/json")
        return principal.name
    return named


async def list_cases(request: web.Request) -> web.Response:
    desk = await _desk(request)
    status = request.query.get("status")
    limit = request.query.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        return _json({"error": "limit must be an integer from 1 to 500"}, 400)
    try:
        cases = await desk.list(status=status, limit=int(limit), transcript=True)
    except CaseError as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"cases": [c.as_dict() for c in cases]})


async def show_case(request: web.Request) -> web.Response:
    desk = await _desk(request)
    try:
        agent = _acting_agent(request, request.query.get("agent")) if principal_of(request).has("agent") else None
        case = await desk.get(request.match_info["case"], agent=agent or None)
    except CaseError as exc:
        return _json({"error": str(exc)}, 404 if "no case" in str(exc) else 400)
    return _json(case.as_dict())


async def claim_case(request: web.Request) -> web.Response:
    desk = await _desk(request)
    body = await _body(request)
    try:
        case = await desk.claim(request.match_info["case"], _acting_agent(request, str(body.get("agent") or "")))
    except CaseError as exc:
        return _json({"error": str(exc)}, 404 if "no case" in str(exc) else 409 if "already" in str(exc) or
                     " is " in str(exc) else 400)
    return _json(case.as_dict())


async def resolve_case(request: web.Request) -> web.Response:
    desk = await _desk(request)
    body = await _body(request)
    try:
        case = await desk.resolve(request.match_info["case"], _acting_agent(request, str(body.get("agent") or "")),
                                  str(body.get("notes") or ""))
    except CaseError as exc:
        return _json({"error": str(exc)}, 404 if "no case" in str(exc) else 409 if "already" in str(exc) else 400)
    return _json(case.as_dict())


async def cases_page(request: web.Request) -> web.Response:
    pool = services_of(request).pool
    org = principal_of(request).organization_id  # None: the operator sees every org
    rows = await pool.fetch(
        "select o.slug, e.case_number, e.status, e.reason, e.handoff_status, e.assigned_to, e.created_at, e.ticket_id, "
        "e.details->>'transcript' as trigger from escalations e join organizations o on o.id = e.organization_id "
        "where e.status <> 'resolved' and ($1::uuid is null or e.organization_id = $1) "
        "order by e.created_at desc limit 200", org)
    failed = await pool.fetch(
        "select o.slug, x.action, x.status, x.attempts, x.last_error, x.updated_at, e.case_number from outbox x "
        "join organizations o on o.id = x.organization_id left join escalations e on e.id = x.case_id "
        "and e.organization_id = x.organization_id where (x.status = 'dead' or (x.status = 'pending' and x.attempts > 0)) "
        "and ($1::uuid is null or x.organization_id = $1) order by x.updated_at desc limit 100", org)
    return html_page("cases.html", cases=rows, failed=failed)


def mount(app: web.Application) -> None:
    app.router.add_get("/cases", cases_page)
    app.router.add_get("/v1/orgs/{org}/escalations", list_cases)
    app.router.add_get("/v1/orgs/{org}/escalations/{case}", show_case)
    app.router.add_post("/v1/orgs/{org}/escalations/{case}/claim", claim_case)
    app.router.add_post("/v1/orgs/{org}/escalations/{case}/resolve", resolve_case)
