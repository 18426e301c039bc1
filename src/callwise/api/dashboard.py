"""The dashboard: an overview of every organization (``/``) and one page per organization
(``/orgs/ORG``), rendered on the server from Jinja2 templates with autoescaping.

The pages read the figures the stats API serves (``callwise.api.stats``) and the plots are SVG drawn by
matplotlib as in the nightly report (``callwise.evaluation.plots``): no script, no external asset.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from callwise.api import stats
from callwise.api.pages import page
from callwise.api.services import error, org_id, services_of
from callwise.evaluation import plots


# -- plots ----------------------------------------------------------------------------------------------
def calls_plot(series: Sequence[dict[str, Any]]) -> str:
    plt = plots.mpl()
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    xs = list(range(len(series)))
    ax.bar(xs, [d["calls"] for d in series], color="#9bb3d6", label="calls")
    ax.set_ylabel("calls")
    ax2 = ax.twinx()
    for key, colour in (("strict", "#2f7d4f"), ("lenient", "#e0a030")):
        ys = [float("nan") if d[key] is None else d[key] for d in series]
        ax2.plot(xs, ys, marker="o", markersize=3, color=colour, label=f"AI resolved ({key})")
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("AI resolved")
    plots.day_ticks(ax, [d["day"] for d in series])
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="upper left", fontsize=7, frameon=False)
    ax.set_title(f"Calls and AI resolution, last {len(series)} days")
    ax.grid(axis="y", alpha=0.3)
    return plots.svg(fig)


def quality_plot(series: Sequence[dict[str, Any]]) -> str:
    plt = plots.mpl()
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    xs = list(range(len(series)))
    ax.plot(xs, [float("nan") if d["csat"] is None else d["csat"] for d in series], marker="o", markersize=3,
            color="#2d5ea8", label="CSAT (1-5)")
    ax.set_ylim(1, 5.1)
    ax.set_ylabel("CSAT")
    ax2 = ax.twinx()
    ax2.plot(xs, [float("nan") if d["first_word_p50"] is None else d["first_word_p50"] for d in series],
             marker="s", markersize=3, color="#c8553d", label="first word p50 (ms)")
    ax2.set_ylabel("ms")
    ax2.set_ylim(bottom=0)
    plots.day_ticks(ax, [d["day"] for d in series])
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="lower left", fontsize=7, frameon=False)
    ax.set_title("CSAT and first-word latency")
    ax.grid(axis="y", alpha=0.3)
    return plots.svg(fig)


def _org_plots(series: list[dict[str, Any]], tier_mix: dict[str, int]) -> dict[str, str]:
    return {"calls": calls_plot(series), "quality": quality_plot(series),
            "tiers": plots.tier_plot({"tier_counts": tier_mix}, "Answers by final tier, last 30 days")}


_PLOT_CACHE: dict[str, tuple[float, str, dict[str, str]]] = {}
PLOT_TTL_S = 60.0


async def _plots_for(oid: str, series: list[dict[str, Any]], tier_mix: dict[str, int]) -> dict[str, str]:
    """The org's plots, drawn again when their data changed and at most once a minute (matplotlib takes
    hundreds of milliseconds a figure on a busy machine; the figures beside them are always fresh)."""
    key = json.dumps([series, tier_mix], sort_keys=True)
    now = time.monotonic()
    hit = _PLOT_CACHE.get(oid)
    if hit is not None and (hit[1] == key or now - hit[0] < PLOT_TTL_S):
        return hit[2]
    figures = await asyncio.to_thread(_org_plots, series, tier_mix)
    figures["drawn_at"] = datetime.now(UTC).strftime("%H:%M:%S UTC")
    _PLOT_CACHE[oid] = (now, key, figures)
    return figures


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
    breakers = getattr(services.router, "breaker_states", None)
    month = await stats.org_stats(pool, oid, 30)
    today, series, cases, health, run = await asyncio.gather(
        stats.org_stats(pool, oid, 1), stats.daily_series(pool, oid, 30, month["first_word_ms"]["p50_by_day"]),
        stats.open_case_list(pool, oid), stats.model_health(pool, oid, breakers=breakers),
        pool.fetchrow("select id, started_at, status, alerts, metrics from eval_runs where organization_id = $1 "
                      "order by started_at desc limit 1", oid))
    figures = None
    if month["calls"] or month["answered_turns"]:
        figures = await _plots_for(oid, series, month["tier_mix"])
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
    body = await stats.model_health(services.pool, oid, breakers=getattr(services.router, "breaker_states", None))
    return web.json_response({**body, "organization": request.match_info["org"]})


def mount(app: web.Application) -> None:
    app.router.add_get("/", overview)
    app.router.add_get("/orgs/{org}", org_page)
    app.router.add_get("/v1/orgs/{org}/stats", org_stats)
    app.router.add_get("/v1/orgs/{org}/health", org_health)
