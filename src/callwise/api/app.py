"""The HTTP API and a small dashboard (``callwise serve``).

JSON endpoints under ``/v1/orgs/{org}/`` (search, ask, costs, stats, health, eval runs and their reports; ``ask`` is
a support conversation through the turn stages, ``callwise.api.conversations``),
the dashboard (``/`` and ``/orgs/{org}``, ``callwise.api.dashboard``) and the Prometheus scrape ``/metrics``. Organizations are looked up, never created,
by a request. When ``CALLWISE_API_TOKEN`` is set every page and endpoint except ``/healthz`` needs
``Authorization: Bearer <token>`` (or HTTP Basic auth with the token as the password, so a browser
can open the dashboard); without a token the server only binds to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from callwise.api import auth, cases, crm, dashboard, stats, webhooks
from callwise.api.auth import principal_of
from callwise.api.conversations import ConversationError, Conversations, turn_json
from callwise.api.requests import AskRequest, SearchRequest, parse_body
from callwise.api.services import SERVICES, ApiServices, dumps, error, org_id
from callwise.infra import telemetry

__all__ = ["ApiServices", "create_app"]

log = logging.getLogger("callwise.api")

CONVERSATIONS: web.AppKey[Conversations] = web.AppKey("conversations", Conversations)

# vendor webhooks and the survey page authenticate by the vendor's signature / the survey reference (issue 11)
OPEN_PATHS = frozenset({"/healthz"}) | webhooks.PUBLIC_PATHS | crm.CRM_PUBLIC_PATHS


async def health(request: web.Request) -> web.Response:
    services: ApiServices = request.app[SERVICES]
    try:
        await services.pool.fetchval("select 1")
    except Exception:  # the health check reports, it does not raise; the error (a DSN, a host) stays in the log
        log.exception("health check: database unreachable")
        return web.json_response({"status": "degraded", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def search(request: web.Request) -> web.Response:
    services: ApiServices = request.app[SERVICES]
    org = await org_id(request)
    req = await parse_body(request, SearchRequest)
    result = await services.retriever.retrieve(req.query, org, top_k=req.top_k, mode=req.mode)
    return web.json_response({
        "query_type": result.query_type,
        "timings_ms": result.timings_ms,
        "results": [
            {"chunk_id": c.chunk_id, "document": c.document, "title": c.title, "score": c.score,
             "text": c.text, "stages": c.stages}
            for c in result.chunks
        ],
    }, dumps=dumps)


async def ask(request: web.Request) -> web.Response:
    """One customer turn of a support conversation (``callwise.api.conversations``): the first question starts
    a call and returns its ``call_id``; a later one with that id continues it; ``"end": true`` closes it."""
    conversations = request.app[CONVERSATIONS]
    org = await org_id(request)
    req = await parse_body(request, AskRequest)
    try:
        if req.call_id is None:
            conv = await conversations.start(org, modality=req.modality,
                                             metadata={"actor": principal_of(request).actor})
        else:
            conv = await conversations.find(org, req.call_id)
        body: dict[str, Any] = {"call_id": conv.id}
        if req.question is not None:
            async with conversations.turn(conv) as call:
                turn = call.new_turn(req.question)
                await call.pipeline.stream(turn).collect()
            body.update(turn_json(turn, index=conv.turns))
        if req.end:
            await conversations.end(conv)
    except ConversationError as exc:
        return error(exc.status, str(exc))
    body["ended"] = req.end
    return web.json_response(body, dumps=dumps)


async def costs(request: web.Request) -> web.Response:
    from callwise.routing.costs import cost_report

    services: ApiServices = request.app[SERVICES]
    org = await org_id(request)
    days = request.query.get("days")
    if days is not None and (not days.isdigit() or int(days) < 1):
        return error(400, "days must be a positive integer")
    answerers = getattr(services.router, "answerers", None)  # one answerer: cascade/saving not applicable
    report = await cost_report(services.pool, org, services.tier3_price, days=int(days) if days else None,
                               answerers=len(answerers) if answerers else None)
    return web.json_response(report.as_dict(), dumps=dumps)


async def eval_runs(request: web.Request) -> web.Response:
    services: ApiServices = request.app[SERVICES]
    org = await org_id(request)
    rows = await services.pool.fetch(
        "select id, started_at, finished_at, status, n_examples, n_failed, metrics, alerts from eval_runs "
        "where organization_id = $1 order by started_at desc limit 30", org)
    runs = [{**dict(r), "metrics": json.loads(r["metrics"]), "alerts": json.loads(r["alerts"])} for r in rows]
    return web.json_response({"runs": runs}, dumps=dumps)


async def eval_report(request: web.Request) -> web.StreamResponse:
    services: ApiServices = request.app[SERVICES]
    org = await org_id(request)
    try:
        import uuid

        run_id = str(uuid.UUID(request.match_info["run_id"]))
    except ValueError:
        return error(400, "run id is not a UUID")
    path = await services.pool.fetchval(
        "select report_path from eval_runs where organization_id = $1 and id = $2", org, run_id)
    if not path or not Path(path).is_file():
        return error(404, "no report for this run")
    return web.FileResponse(path, headers={"Content-Type": "text/html; charset=utf-8"})


async def prometheus_metrics(request: web.Request) -> web.Response:
    """The Prometheus scrape (``callwise.infra.telemetry``): the turn, usage and callwise metrics of this
    process, and the figures read from Postgres at each scrape (calls, escalations and model calls of the
    last day whichever process handled them, outbox rows by vendor and status)."""
    if telemetry.exporter() != "prometheus":
        why = ("metrics are exported over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)" if telemetry.exporter() == "otlp"
               else "telemetry is not set up in this process")
        return error(404, why)
    services: ApiServices = request.app[SERVICES]
    for name, rows in (await stats.db_gauges(services.pool)).items():
        telemetry.set_db_gauges(name, rows)
    body = await asyncio.to_thread(telemetry.prometheus_text)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def _conversations(services: ApiServices) -> Any:
    """The /ask conversations for the app's lifetime: idle ones swept, every open one ended at shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        deps = services.support
        if deps is None:
            from callwise.calls import SupportDeps

            deps = SupportDeps(retriever=services.retriever, router=services.router, pool=services.pool)
        conversations = app[CONVERSATIONS] = Conversations(deps, idle_s=services.conversation_idle_s)
        sweeper = asyncio.ensure_future(conversations.run_sweeper(min(30.0, services.conversation_idle_s / 2)))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await conversations.close()

    return ctx


def create_app(services: ApiServices) -> web.Application:
    app = web.Application(middlewares=[auth.middleware_for(services, OPEN_PATHS)], client_max_size=1 << 20)
    app[SERVICES] = services
    app.cleanup_ctx.append(_conversations(services))
    app.router.add_get("/healthz", health)
    app.router.add_get("/metrics", prometheus_metrics)
    app.router.add_post("/v1/orgs/{org}/search", search)
    app.router.add_post("/v1/orgs/{org}/ask", ask)
    app.router.add_get("/v1/orgs/{org}/costs", costs)
    app.router.add_get("/v1/orgs/{org}/eval-runs", eval_runs)
    app.router.add_get("/v1/orgs/{org}/eval-runs/{run_id}/report", eval_report)
    dashboard.mount(app)  # overview, org pages, stats and health (issue 24)
    cases.mount(app)  # the case desk
    webhooks.mount(app)  # Twilio and SendGrid events, the survey page
    crm.mount(app)  # HubSpot webhook, OAuth callbacks
    return app
