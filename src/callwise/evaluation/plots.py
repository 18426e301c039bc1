"""SVG plots drawn by matplotlib for the nightly report and the dashboard: inline SVG, text as text,
deterministic ids, no external asset."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

TREND_METRICS = ("recall@10", "ndcg@10", "non_llm_context_recall", "semantic_similarity", "faithfulness",
                 "answer_relevancy", "context_precision", "context_recall")
TIER_COLOURS = {"tier1": "#4c9f70", "tier2": "#e0a030", "tier3": "#c8553d", "failed": "#888888"}


def mpl() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, set for SVG output."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "callwise", "font.size": 9})
    import matplotlib.pyplot as plt

    return plt


def svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (the figure is closed)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    mpl().close(fig)
    text = buf.getvalue()
    return text[text.find("<svg"):]


def day_ticks(ax: Any, days: Sequence[str], most: int = 8) -> None:
    """At most ``most`` labelled days (``MM-DD``) along the x axis."""
    if not days:
        return
    step = max(1, (len(days) + most - 1) // most)
    idx = list(range(0, len(days), step))
    ax.set_xticks(idx, [days[i][5:] for i in idx])


def trend_plot(trends: Sequence[Mapping[str, Any]]) -> str:
    plt = mpl()
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
    return svg(fig)


def tier_plot(routing: Mapping[str, Any], title: str) -> str:
    """Bars of interactions per final tier; a sentence when there are none."""
    counts = routing.get("tier_counts") or {}
    if not counts:
        return ""
    plt = mpl()
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    names = list(counts)
    vals = [counts.get(n, 0) for n in names]
    ax.bar(names, vals, color=[TIER_COLOURS.get(n, "#6b7fa8") for n in names])
    for i, v in enumerate(vals):
        ax.text(i, v, str(v), ha="center", va="bottom", fontsize=8)
    ax.set_title(title)
    ax.set_ylabel("interactions")
    ax.grid(axis="y", alpha=0.3)
    return svg(fig)
