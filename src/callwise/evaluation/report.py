"""The nightly report: one self-contained HTML page (inline CSS and SVG plots, no external assets), rendered
from the Jinja2 template ``templates/report.html`` with autoescaping."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import jinja2

from callwise.evaluation.plots import tier_plot, trend_plot
from callwise.evaluation.results import ExampleResult, NightlyResult

HEADLINE = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")
OFFLINE = ("non_llm_context_precision_with_reference", "non_llm_context_recall", "non_llm_string_similarity",
           "semantic_similarity")
RETRIEVAL = ("recall@10", "mrr@10", "ndcg@10")

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def fmt(v: Any, pct: bool = False, nd: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, (int, float)):
        return f"{v * 100:.1f}%" if pct else f"{v:.{nd}f}"
    return str(v)


_env.filters["fmt"] = fmt


async def trend_rows(pool: asyncpg.Pool, org_id: str, limit: int = 30) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """select id, started_at, metrics from eval_runs where organization_id = $1 and status = 'completed'
            order by started_at desc limit $2""", org_id, limit)
    out = []
    for r in reversed(rows):
        m = r["metrics"]
        out.append({"id": str(r["id"]), "started_at": r["started_at"],
                    "metrics": json.loads(m) if isinstance(m, str) else dict(m or {})})
    return out


def card(name: str, value: Any, threshold: float | None, status: Mapping[str, Any] | None, *,
         pct: bool = False) -> dict[str, Any]:
    """One metric card: its class (ok, bad, na), the value shown and the line under it."""
    st = (status or {}).get("status", "computed" if value is not None else "not_computed")
    if value is None:
        return {"name": name, "cls": "na", "shown": "not computed" if st != "failed" else "failed",
                "sub": (status or {}).get("reason") or st.replace("_", " ")}
    below = threshold is not None and value < threshold
    sub = f"threshold {threshold:.2f}" + (" — below" if below else "") if threshold is not None else ""
    if (status or {}).get("n_failed"):
        sub += f" · {status['n_failed']} failed"  # type: ignore[index]
    return {"name": name, "cls": "bad" if below else "ok", "shown": fmt(value, pct), "sub": sub}


def routing_row(label: str, routing: Mapping[str, Any]) -> dict[str, Any]:
    """A routing table row; a figure that does not apply is ``n/a`` with the reason as its title."""
    def cell(key: str) -> dict[str, Any]:
        reason = (routing.get("not_applicable") or {}).get(key)
        if routing.get(key) is None and reason:
            return {"text": "n/a", "title": reason}
        return {"text": fmt(routing.get(key), True), "title": None}

    return {"label": label, "interactions": routing.get("interactions", 0), "cascade": cell("cascade_rate"),
            "per": fmt(routing.get("cost_per_interaction"), nd=6), "total": fmt(routing.get("total_cost_usd"), nd=4),
            "tier3": fmt(routing.get("all_tier3_cost_usd"), nd=4), "saving": cell("saving_vs_tier3")}


def example_view(ex: ExampleResult) -> dict[str, Any]:
    scores = {**{k: v for k, v in ex.retrieval.items() if v is not None}, **ex.ragas}
    return {"ex": ex, "score": fmt(ex.score()),
            "scores": ", ".join(f"{k} {v:.2f}" for k, v in scores.items()) or "no scores",
            "contexts": [c[:1200] for c in ex.contexts],
            "retrieved": ", ".join(dict.fromkeys(ex.retrieved_documents))}


def render_report(result: NightlyResult, trends: Sequence[Mapping[str, Any]], thresholds: Mapping[str, float], *,
                  org: str, worst: int = 12) -> str:
    m = result.metrics
    status = m.get("metric_status", {})
    routing = m.get("routing", {})
    prod = m.get("production", {})
    prod_routing = prod.get("routing", {})
    d = result.delivery
    delivery = ("posted to Slack" if d.get("posted") else f"Slack post failed: {d.get('error')}" if d.get("error")
                else "no Slack webhook configured (CALLWISE_SLACK_WEBHOOK_URL)")
    scored = [ex for ex in result.examples if ex.error or ex.score() is not None]
    scored.sort(key=lambda ex: (ex.error is None, ex.score() if ex.score() is not None else 0.0))
    reasons = dict.fromkeys(r for rt in (routing, prod_routing) for r in (rt.get("not_applicable") or {}).values())
    window = prod.get("window_days", 30)
    return _env.get_template("report.html").render(
        org=org, result=result, m=m, now=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), delivery=delivery,
        headline=[card(n, m.get(n), thresholds.get(n), status.get(n)) for n in HEADLINE],
        offline=[card(n, m.get(n), None, status.get(n)) for n in OFFLINE],
        retrieval=[card(n, m.get(n), None, status.get(n)) for n in RETRIEVAL],
        categories=m.get("by_category", {}),
        trend_svg=trend_plot(trends) if trends else "",
        tier_svgs=[(tier_plot(routing, "Golden run: final tier"), "Golden run: final tier"),
                   (tier_plot(prod_routing, f"Production, last {window} days"), f"Production, last {window} days")],
        routing_rows=[routing_row("golden run", routing), routing_row("production", prod_routing)],
        na_reasons=list(reasons), prod=prod, window=window,
        customers=[card("CSAT (1-5)", prod.get("csat"), None, {"reason": "no survey responses"}),
                   card("NPS", prod.get("nps"), None, {"reason": "no NPS answers"}),
                   card("escalation rate", prod.get("escalation_rate"), None, {"reason": "no support sessions"},
                        pct=True),
                   card("resolution rate (AI)", prod.get("resolution_rate"), None,
                        {"reason": "no resolved sessions"}, pct=True)],
        worst=[example_view(ex) for ex in scored[:worst]],
        failed=[ex for ex in result.examples if ex.error],
        missing=[ex for ex in result.examples if ex.missing_documents],
        not_computed=[(n, s.get("reason")) for n, s in status.items() if s.get("status") != "computed"],
    )
