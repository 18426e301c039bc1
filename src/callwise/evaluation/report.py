"""The nightly report: one self-contained HTML page (inline CSS and SVG plots, no external assets)."""

from __future__ import annotations

import html
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from callwise.evaluation.nightly import ExampleResult, NightlyResult

HEADLINE = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")
OFFLINE = ("non_llm_context_precision_with_reference", "non_llm_context_recall", "non_llm_string_similarity",
           "semantic_similarity")
RETRIEVAL = ("recall@10", "mrr@10", "ndcg@10")
TREND_METRICS = ("recall@10", "ndcg@10", "non_llm_context_recall", "semantic_similarity", "faithfulness",
                 "answer_relevancy", "context_precision", "context_recall")
TIER_COLOURS = {"tier1": "#4c9f70", "tier2": "#e0a030", "tier3": "#c8553d", "failed": "#888888"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d9dde3;padding-bottom:4px}
.meta{color:#5b6475;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 12px}
.card .name{font-size:12px;color:#5b6475;overflow-wrap:anywhere}.card .value{font-size:22px;font-weight:600}
.card .sub{font-size:12px;color:#5b6475}
.ok{border-left:5px solid #4c9f70}.bad{border-left:5px solid #c8553d}.na{border-left:5px solid #b0b6c0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #dde1e7;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4}
.alerts{background:#fff3f0;border:1px solid #e3b3a8;border-radius:8px;padding:8px 14px}
.quiet{background:#f0f7f2;border:1px solid #b5d6c0;border-radius:8px;padding:8px 14px}
details{margin:4px 0}summary{cursor:pointer;color:#2d5ea8}
.ctx{white-space:pre-wrap;background:#f8f9fb;border:1px solid #e4e7ec;padding:6px;margin:4px 0;font-size:12px}
.plot svg{max-width:100%;height:auto;background:#fff;border:1px solid #dde1e7;border-radius:8px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:12px}
code{font-size:12px}
"""


def esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def na(routing: dict[str, Any], key: str) -> str:
    """A routing figure, or "not applicable" with the reason (one answerer, no priced tier)."""
    reason = (routing.get("not_applicable") or {}).get(key)
    if routing.get(key) is None and reason:
        return f'<span title="{esc(reason)}">n/a</span>'
    return fmt(routing.get(key), True)


def na_notes(*routings: dict[str, Any]) -> str:
    reasons = dict.fromkeys(r for routing in routings for r in (routing.get("not_applicable") or {}).values())
    return "".join(f'<p class="meta">{esc(r)}</p>' for r in reasons)


def fmt(v: Any, pct: bool = False, nd: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, (int, float)):
        return f"{v * 100:.1f}%" if pct else f"{v:.{nd}f}"
    return esc(v)


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


# -- plots ----------------------------------------------------------------------------------------
def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _mpl() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "callwise", "font.size": 9})
    import matplotlib.pyplot as plt

    return plt


def trend_plot(trends: Sequence[Mapping[str, Any]]) -> str:
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    xs = list(range(1, len(trends) + 1))
    plotted = 0
    for name in TREND_METRICS:
        ys = [t["metrics"].get(name) for t in trends]
        if any(y is not None for y in ys):
            ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", markersize=3, label=name)
            plotted += 1
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("run (oldest → newest)")
    ax.set_title(f"Last {len(trends)} runs")
    if len(trends) <= 12:
        ax.set_xticks(xs, [t["started_at"].strftime("%m-%d") if hasattr(t["started_at"], "strftime") else str(i)
                           for i, t in zip(xs, trends, strict=True)])
    if plotted:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return _svg(fig)


def tier_plot(routing: Mapping[str, Any], title: str) -> str:
    counts = routing.get("tier_counts") or {}
    if not counts:
        return f"<p><b>{esc(title)}</b>: no answered interactions.</p>"
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    names = list(counts)
    vals = [counts.get(n, 0) for n in names]
    ax.bar(names, vals, color=[TIER_COLOURS.get(n, "#6b7fa8") for n in names])
    for i, v in enumerate(vals):
        ax.text(i, v, str(v), ha="center", va="bottom", fontsize=8)
    ax.set_title(title)
    ax.set_ylabel("interactions")
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


# -- sections -------------------------------------------------------------------------------------
def _card(name: str, value: Any, threshold: float | None, status: Mapping[str, Any] | None, *, pct: bool = False) -> str:
    st = (status or {}).get("status", "computed" if value is not None else "not_computed")
    if value is None:
        cls, sub = "na", esc((status or {}).get("reason") or st.replace("_", " "))
        shown = "not computed" if st != "failed" else "failed"
    else:
        below = threshold is not None and value < threshold
        cls = "bad" if below else "ok"
        sub = f"threshold {threshold:.2f}" + (" — below" if below else "") if threshold is not None else ""
        if (status or {}).get("n_failed"):
            sub += f" · {status['n_failed']} failed"
        shown = fmt(value, pct)
    return (f'<div class="card {cls}"><div class="name">{esc(name)}</div><div class="value">{shown}</div>'
            f'<div class="sub">{sub}</div></div>')


def _example_block(ex: ExampleResult) -> str:
    scores = {**{k: v for k, v in ex.retrieval.items() if v is not None}, **ex.ragas}
    score_txt = ", ".join(f"{k} {v:.2f}" for k, v in scores.items()) or "no scores"
    ctx = "".join(f'<div class="ctx">[{i}] {esc(c[:1200])}</div>' for i, c in enumerate(ex.contexts, start=1))
    errs = "".join(f"<li><code>{esc(k)}</code>: {esc(v)}</li>" for k, v in ex.ragas_errors.items())
    return f"""<tr><td><b>{esc(ex.id)}</b><br>{esc(ex.category)}<br>{fmt(ex.score())}</td>
<td><b>Q:</b> {esc(ex.query)}<br><b>Expected:</b> {esc(ex.expected_answer)}<br><b>Answer</b> ({esc(ex.tier or '—')}):
{esc(ex.answer) or '<i>no answer</i>'}{f'<br><b>Error:</b> {esc(ex.error)}' if ex.error else ''}
<details><summary>{len(ex.contexts)} retrieved contexts · documents</summary>{ctx}
<div class="meta">retrieved: {esc(', '.join(dict.fromkeys(ex.retrieved_documents)))}<br>relevant: {esc(', '.join(ex.relevant_documents) or '—')}
{f'<br>not in KB: {esc(", ".join(ex.missing_documents))}' if ex.missing_documents else ''}</div></details>
{f'<ul>{errs}</ul>' if errs else ''}</td><td>{esc(score_txt)}</td></tr>"""


def render_report(result: NightlyResult, trends: Sequence[Mapping[str, Any]], thresholds: Mapping[str, float], *,
                  org: str, worst: int = 12) -> str:
    m = result.metrics
    status = m.get("metric_status", {})
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    routing = m.get("routing", {})
    prod = m.get("production", {})
    prod_routing = prod.get("routing", {})

    if result.alerts:
        items = "".join(f"<li>{esc(a['text'])}</li>" for a in result.alerts)
        d = result.delivery
        how = ("posted to Slack" if d.get("posted") else f"Slack post failed: {esc(d.get('error'))}" if d.get("error")
               else "no Slack webhook configured (CALLWISE_SLACK_WEBHOOK_URL)")
        alerts = f'<div class="alerts"><b>{len(result.alerts)} alert(s)</b> — {how}<ul>{items}</ul></div>'
    else:
        alerts = '<div class="quiet">No metric under its threshold.</div>'

    headline = "".join(_card(n, m.get(n), thresholds.get(n), status.get(n)) for n in HEADLINE)
    offline = "".join(_card(n, m.get(n), None, status.get(n)) for n in OFFLINE)
    retrieval = "".join(_card(n, m.get(n), None, status.get(n)) for n in RETRIEVAL)
    cat_rows = "".join(
        f"<tr><td>{esc(c)}</td><td>{v['n']}</td><td>{fmt(v.get('recall@10'))}</td>"
        f"<td>{fmt(v.get('semantic_similarity'))}</td><td>{fmt(v.get('tier_match'), True)}</td></tr>"
        for c, v in m.get("by_category", {}).items())

    scored = [ex for ex in result.examples if ex.error or ex.score() is not None]
    scored.sort(key=lambda ex: (ex.error is None, ex.score() if ex.score() is not None else 0.0))
    worst_rows = "".join(_example_block(ex) for ex in scored[:worst])
    failed = [ex for ex in result.examples if ex.error]
    failed_rows = "".join(f"<li><b>{esc(ex.id)}</b>: {esc(ex.error)}</li>" for ex in failed)
    missing = [ex for ex in result.examples if ex.missing_documents]
    missing_rows = "".join(f"<li><b>{esc(ex.id)}</b>: {esc(', '.join(ex.missing_documents))}</li>" for ex in missing)

    gap_rows = "".join(
        f"<tr><td>{esc(g['label'])}</td><td>{g['impact']:.1f}</td><td>{g['frequency']}</td>"
        f"<td>{fmt(g['escalation_rate'], True)}</td><td>{'<br>'.join(esc(q) for q in g['sample_questions'])}</td>"
        f"<td><div class='ctx'>{esc(g['article_outline']) or '—'}</div></td></tr>" for g in result.gaps)
    gaps = (f"<table><tr><th>gap</th><th>impact</th><th>asked</th><th>escalated</th><th>sample questions</th>"
            f"<th>suggested article outline</th></tr>{gap_rows}</table>" if result.gaps
            else "<p>No knowledge gaps: no clusters among unresolved questions.</p>")

    not_computed = "".join(f"<li><code>{esc(n)}</code>: {esc(s.get('reason'))}</li>" for n, s in status.items()
                           if s.get("status") != "computed")

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>callwise nightly evaluation — {esc(org)}</title><style>{CSS}</style></head>
<body><main>
<h1>Nightly evaluation — {esc(org)}</h1>
<div class="meta">run <code>{esc(result.run_id)}</code> · {now} · {m.get('examples', {}).get('total', 0)} golden examples
({m.get('examples', {}).get('failed', 0)} failed) · {result.seconds:.0f} s</div>

<h2>Alerts</h2>{alerts}

<h2>Answer quality (RAGAS)</h2>
<div class="cards">{headline}</div>
<p class="meta">Offline ragas metrics (reference-based, no judge needed):</p>
<div class="cards">{offline}</div>

<h2>Retrieval</h2>
<div class="cards">{retrieval}</div>
<table style="margin-top:10px"><tr><th>category</th><th>examples</th><th>recall@10</th><th>semantic similarity</th>
<th>expected tier used</th></tr>{cat_rows}</table>
<p class="meta">Escalation triggers escalated: {fmt(m.get('escalation_recall'), True)}</p>

<h2>Trends</h2>
<div class="plot">{trend_plot(trends) if trends else '<p>No completed runs yet.</p>'}</div>

<h2>Routing and cost</h2>
<div class="grid2"><div class="plot">{tier_plot(routing, 'Golden run: final tier')}</div>
<div class="plot">{tier_plot(prod_routing, f"Production, last {prod.get('window_days', 30)} days")}</div></div>
<table style="margin-top:10px"><tr><th></th><th>interactions</th><th>cascade rate</th><th>cost / interaction</th>
<th>total cost</th><th>all-tier3 cost</th><th>saving vs all-tier3</th></tr>
<tr><td>golden run</td><td>{routing.get('interactions', 0)}</td><td>{na(routing, 'cascade_rate')}</td>
<td>${fmt(routing.get('cost_per_interaction'), nd=6)}</td><td>${fmt(routing.get('total_cost_usd'), nd=4)}</td>
<td>${fmt(routing.get('all_tier3_cost_usd'), nd=4)}</td><td>{na(routing, 'saving_vs_tier3')}</td></tr>
<tr><td>production</td><td>{prod_routing.get('interactions', 0)}</td><td>{na(prod_routing, 'cascade_rate')}</td>
<td>${fmt(prod_routing.get('cost_per_interaction'), nd=6)}</td><td>${fmt(prod_routing.get('total_cost_usd'), nd=4)}</td>
<td>${fmt(prod_routing.get('all_tier3_cost_usd'), nd=4)}</td><td>{na(prod_routing, 'saving_vs_tier3')}</td></tr></table>
{na_notes(routing, prod_routing)}

<h2>Customers (production, last {prod.get('window_days', 30)} days)</h2>
<div class="cards">
{_card('CSAT (1-5)', prod.get('csat'), None, {'reason': 'no survey responses'})}
{_card('NPS', prod.get('nps'), None, {'reason': 'no NPS answers'})}
{_card('escalation rate', prod.get('escalation_rate'), None, {'reason': 'no support sessions'}, pct=True)}
{_card('resolution rate (AI)', prod.get('resolution_rate'), None, {'reason': 'no resolved sessions'}, pct=True)}
</div>
<p class="meta">{prod.get('sessions', 0)} support sessions, {prod.get('surveys', 0)} surveys,
{prod.get('sampled_turns') or 0} recent answered turns sampled; faithfulness {fmt(prod.get('faithfulness'))},
answer relevancy {fmt(prod.get('answer_relevancy'))} (judged only when a judge tier is configured).</p>

<h2>Knowledge gaps</h2>{gaps}

<h2>Worst examples</h2>
<table><tr><th>example</th><th>question, answer and contexts</th><th>scores</th></tr>{worst_rows}</table>
{f'<h2>Failed examples</h2><ul>{failed_rows}</ul>' if failed else ''}
{f'<h2>Golden documents not in the knowledge base</h2><ul>{missing_rows}</ul>' if missing else ''}
{f'<h2>Not computed</h2><ul>{not_computed}</ul>' if not_computed else ''}
</main></body></html>
"""
