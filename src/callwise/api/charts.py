"""The dashboard's charts as SVG written directly: daily bars and lines on one or two axes, and bars per tier.

matplotlib drew them before; importing it and drawing the first three figures made the first load of an
organization's page take seconds (``bench/dashboard_load.py``), and each redraw hundreds of milliseconds.
These charts need none of it: a few hundred SVG elements written in well under a millisecond each, text as
text (escaped), no script, no external asset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

TIER_COLOURS = {"tier1": "#4c9f70", "tier2": "#e0a030", "tier3": "#c8553d", "failed": "#888888"}
WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 52, 52, 46, 34  # margins: axis labels, title and legend, day labels
TICKS = 5


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]  # one per day; None: no value that day (a gap in a line)
    colour: str
    kind: Literal["bar", "line"] = "line"
    axis: Literal["left", "right"] = "left"


@dataclass(frozen=True)
class Axis:
    label: str
    low: float = 0.0
    high: float | None = None  # None: a round number above the largest value

    def span(self, values: Sequence[float | None]) -> tuple[float, float]:
        if self.high is not None:
            return self.low, self.high
        top = max((v for v in values if v is not None), default=0.0)
        return self.low, nice_ceiling(max(top, self.low + 1e-9))


def nice_ceiling(x: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``x`` (``x`` > 0)."""
    exp = 10 ** math.floor(math.log10(x))
    return next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= x - 1e-12)


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if v % 1 else f"{v:,.0f}"


def _text(x: float, y: float, s: str, *, anchor: str = "middle", size: int = 10, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{extra}>'
            f"{escape(s)}</text>")


def day_chart(title: str, days: Sequence[str], series: Sequence[Series], left: Axis,
              right: Axis | None = None) -> str:
    """Bars and lines over ``days`` (``YYYY-MM-DD``), each series on the left or the right axis."""
    n = max(len(days), 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    spans = {"left": left.span([v for s in series if s.axis == "left" for v in s.values])}
    if right is not None:
        spans["right"] = right.span([v for s in series if s.axis == "right" for v in s.values])

    def y_of(v: float, axis: str) -> float:
        lo, hi = spans[axis]
        frac = 0.0 if hi == lo else (min(max(v, lo), hi) - lo) / (hi - lo)
        return TOP + plot_h * (1 - frac)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
           f'height="{HEIGHT}" role="img" aria-label="{escape(title)}" font-family="sans-serif">',
           f"<title>{escape(title)}</title>", _text(WIDTH / 2, 16, title, size=12, extra=' font-weight="bold"')]
    for i in range(TICKS + 1):  # grid and axis labels
        y = TOP + plot_h * (1 - i / TICKS)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        for axis, x, anchor in (("left", LEFT - 4, "end"), ("right", WIDTH - RIGHT + 4, "start")):
            if axis in spans:
                lo, hi = spans[axis]
                out.append(_text(x, y + 3, _num(lo + (hi - lo) * i / TICKS), anchor=anchor, size=9))
    out.append(_text(12, TOP + plot_h / 2, left.label, size=9, extra=f' transform="rotate(-90 12 {TOP + plot_h / 2:.1f})"'))
    if right is not None:
        x = WIDTH - 10
        out.append(_text(x, TOP + plot_h / 2, right.label, size=9,
                         extra=f' transform="rotate(90 {x} {TOP + plot_h / 2:.1f})"'))
    step = max(1, math.ceil(len(days) / 8))  # at most 8 day labels
    for i in range(0, len(days), step):
        out.append(_text(LEFT + slot * (i + 0.5), HEIGHT - BOTTOM + 14, days[i][5:], size=9))
    for s in series:
        if s.kind == "bar":
            base = y_of(spans[s.axis][0], s.axis)
            for i, v in enumerate(s.values):
                if v is None:
                    continue
                y = y_of(v, s.axis)
                out.append(f'<rect x="{LEFT + slot * i + slot * 0.15:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                           f'height="{base - y:.1f}" fill="{s.colour}"><title>{escape(days[i] if i < len(days) else "")}'
                           f" {escape(s.label)}: {_num(v)}</title></rect>")
            continue
        run: list[str] = []
        points = [(LEFT + slot * (i + 0.5), y_of(v, s.axis)) for i, v in enumerate(s.values) if v is not None]
        for i, v in enumerate([*s.values, None]):  # a gap (None) ends a polyline
            if v is None:
                if len(run) > 1:
                    out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.colour}" stroke-width="1.5"/>')
                run = []
                continue
            run.append(f"{LEFT + slot * (i + 0.5):.1f},{y_of(v, s.axis):.1f}")
        out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{s.colour}"/>' for x, y in points)
    x = LEFT
    for s in series:  # legend, one row under the title
        out.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{s.colour}"/>')
        out.append(_text(x + 14, 35, s.label, anchor="start", size=9))
        x += 24 + 6 * len(s.label)
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="#888"/>')
    out.append("</svg>")
    return "".join(out)


def tier_chart(counts: Mapping[str, int], title: str) -> str:
    """Bars of answers per final tier, each labelled with its count; empty when there are none."""
    if not counts:
        return ""
    width, height, top, bottom, left = 420, 260, 34, 30, 44
    names = list(counts)
    high = nice_ceiling(max(max(counts.values()), 1))
    plot_h, slot = height - top - bottom, (width - left - 10) / len(names)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{escape(title)}" font-family="sans-serif">',
           f"<title>{escape(title)}</title>", _text(width / 2, 16, title, size=12, extra=' font-weight="bold"')]
    for i in range(TICKS + 1):
        y = top + plot_h * (1 - i / TICKS)
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(_text(left - 4, y + 3, _num(high * i / TICKS), anchor="end", size=9))
    for i, name in enumerate(names):
        v = counts[name]
        h = plot_h * v / high
        x = left + slot * i + slot * 0.2
        out.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.6:.1f}" height="{h:.1f}" '
                   f'fill="{TIER_COLOURS.get(name, "#6b7fa8")}"/>')
        out.append(_text(x + slot * 0.3, top + plot_h - h - 3, str(v), size=9))
        out.append(_text(x + slot * 0.3, height - bottom + 14, name, size=10))
    out.append("</svg>")
    return "".join(out)
