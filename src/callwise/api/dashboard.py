"""The dashboard: an overview of every organization (``/``) and one page per organization
(``/orgs/ORG``), rendered on the server from Jinja2 templates with autoescaping.

The pages read the figures the stats API serves (``callwise.api.stats``) and the plots are SVG written by
``callwise.api.charts`` (no matplotlib on this path: its import and first figures made the first load slow):
no script, no external asset.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from callwise.api import charts, stats
from callwise.api.breakers import recorded_states, with_recorded
from callwise.api.pages import page
from callwise.api.services import error, org_id, services_of


# -- plots ----------------------------------------------------------------------------------------------
def calls_plot(series: Sequence[dict[str, Any]]) -> str:
    days = [d["day"] for d in series]
    return charts.day_chart(
        f"Calls and AI resolution, last {len(series)} days", days,
        [charts.Series("calls", [d["calls"] for d in series], "#9bb3d6", kind="bar"),
         charts.Series("AI resolved (strict)", [d["strict"] for d in series], "#2f7d4f", axis="right"),
         charts.Series("AI resolved (lenient)", [d["lenient"] for d in series], "#e0a030", axis="right")],
        charts.Axis("calls"), charts.Axis("AI resolved", 0.0, 1.0))


def quality_plot(series: Sequence[dict[str, Any]]) -> str:
    days = [d["day"] for d in series]
    return charts.day_chart(
        "CSAT and first-word latency", days,
        [charts.Series("CSAT (1-5)", [d["csat"] for d in series], "#2d5ea8"),
         charts.Series("first word p50 (ms)", [d["first_word_p50"] for d in series], "#c8553d", axis="right")],
        charts.Axis("CSAT", 1.0, 5.0), charts.Axis("ms"))


def org_plots(series: list[dict[str, Any]], tier_mix: dict[str, int]) -> dict[str, str]:
    """The org page's charts (``callwise.api.charts``: SVG written directly, a few milliseconds for all three)."""
    return {"calls": calls_plot(series), "quality": quality_plot(series),
            "tiers": charts.tier_chart(tier_mix, "Answers by final tier, last 30 days"),
            "drawn_at": datetime.now(UTC).strftime("%H:%M:%S UTC")}


async def model_health(services: Any, oid: str) -> dict[str, Any]:
    """Model health with breaker states: this server's router's, and for the models it does not call (or with
    no router), what the processes that call them recorded in Postgres (``callwise.api.breakers``)."""
    breakers = getattr(services.router, "breaker_states", None)
    report = await stats.model_health(services.pool, oid, breakers=breakers)
    return with_recorded(report, await recorded_states(services.pool), only_unknown=breakers is not None)


# -- pages ----------------------------------------------------------------------------------------------
async def overview(request: web.Request) -> web.Response:
    pool = services_of(request).pool
    today, month = stats.window_start(1), stats.window_start(30)
    rows = await pool.fetch(
        """select o.slug, o.name,
                  (select count(*) from sessions s where s.organization_id = o.id and s.kind = 'support'
                      and s.started_at >= $1) as calls_today,
                  (select count(*) filter (where ai_resolved)::float / nullif(count(ai_resolved), 0) from sessions s
                      where s.organization_id = o.id and s.kind = 'support' and s.started_at >= $2) as strict_30d,
                  (select count(*) from sessions s where s.organization_id = o.id and s.kind = 'support'
                      and s.started_at >= $2) as calls_30d,
                  (select count(*) from escalations e where e.organization_id = o.id and e.status <> 'resolved')
                      as open_cases,
                  (select avg(rating)::float from survey_responses v where v.organization_id = o.id
                      and v.created_at >= $2) as csat_30d,
                  (select coalesce(sum(cost_usd), 0)::float from cost_events c where c.organization_id = o.id
                      and c.created_at >= $1) as cost_today,
                  r.id as run_id, r.started_at as run_at, r.status as run_status, r.alerts as run_alerts
           from organizations o
           left join lateral (select id, started_at, status, alerts from eval_runs where organization_id = o.id
                              order by started_at desc limit 1) r on true
           order by o.slug""", today, month)
    orgs = [{**dict(r), "run_alerts": len(json.loads(r["run_alerts"])) if r["run_alerts"] else 0} for r in rows]
    return page("overview.html", orgs=orgs)


async def org_page(request: web.Request) -> web.Response:
    services = services_of(request)
    pool = services.pool
    oid = await org_id(request)
    slug = request.match_info["org"]
    month = await stats.org_stats(pool, oid, 30)
    today, series, cases, health, run = await asyncio.gather(
        stats.org_stats(pool, oid, 1), stats.daily_series(pool, oid, 30, month["first_word_ms"]["p50_by_day"]),
        stats.open_case_list(pool, oid), model_health(services, oid),
        pool.fetchrow("select id, started_at, status, alerts, metrics from eval_runs where organization_id = $1 "
                      "order by started_at desc limit 1", oid))
    figures = None
    if month["calls"] or month["answered_turns"]:
        figures = org_plots(series, month["tier_mix"])
    nightly = None
    if run is not None:
        metrics = json.loads(run["metrics"]) or {}
        nightly = {"id": str(run["id"]), "started_at": run["started_at"], "status": run["status"],
                   "alerts": len(json.loads(run["alerts"]) or []),
                   "figures": {k: v for k, v in metrics.items() if isinstance(v, (int, float))
                               and not isinstance(v, bool)}}
    return page("org.html", slug=slug, today=today, month=month, plots=figures, cases=cases,
                health=health["models"], breaker_source=health["breaker_source"], nightly=nightly,
                definitions=stats.DEFINITIONS)


async def org_stats(request: web.Request) -> web.Response:
    try:
        days = stats.parse_days(request.query.get("days"), default=30)
    except stats.StatsError as exc:
        return error(400, str(exc))
    oid = await org_id(request)
    body = await stats.org_stats(services_of(request).pool, oid, days)
    return web.json_response({"organization": request.match_info["org"], **body})


async def org_health(request: web.Request) -> web.Response:
    services = services_of(request)
    oid = await org_id(request)
    body = await model_health(services, oid)
    return web.json_response({**body, "organization": request.match_info["org"]})


def mount(app: web.Application) -> None:
    app.router.add_get("/", overview)
    app.router.add_get("/orgs/{org}", org_page)
    app.router.add_get("/v1/orgs/{org}/stats", org_stats)
    app.router.add_get("/v1/orgs/{org}/health", org_health)
