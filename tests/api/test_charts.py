"""The dashboard's SVG charts: well-formed, to scale, gaps kept, text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from callwise.api import charts
from callwise.api.dashboard import org_plots

NS = {"s": "http://www.w3.org/2000/svg"}
DAYS = [f"2026-11-{d:02d}" for d in range(1, 31)]


def _series(n: int = 30) -> list[dict]:  # type: ignore[type-arg]
    return [{"day": DAYS[i], "calls": i * 10, "strict": 0.5 if i % 7 else None, "lenient": 0.8,
             "csat": None if i < 3 else 4.2, "first_word_p50": 700 + i} for i in range(n)]


@pytest.mark.parametrize(("x", "ceiling"), [(1, 1), (3, 5), (7, 10), (12, 20), (22, 25), (290, 500), (0.4, 0.5)])
def test_axis_tops_are_round_numbers(x: float, ceiling: float) -> None:
    assert charts.nice_ceiling(x) == pytest.approx(ceiling)


def test_bars_are_to_scale_and_lines_break_at_missing_days() -> None:
    svg = ET.fromstring(charts.day_chart("t", DAYS[:4], [
        charts.Series("calls", [0, 50, 100, None], "#111", kind="bar"),
        charts.Series("rate", [0.5, None, 1.0, 1.0], "#222", axis="right")],
        charts.Axis("calls"), charts.Axis("rate", 0.0, 1.0)))
    bars = [r for r in svg.findall("s:rect", NS) if r.get("fill") == "#111" and r.find("s:title", NS) is not None]
    heights = [float(r.get("height", 0)) for r in bars]
    assert len(bars) == 3 and heights[0] == 0 and heights[2] == pytest.approx(2 * heights[1])
    assert heights[2] == pytest.approx(charts.HEIGHT - charts.TOP - charts.BOTTOM)  # 100 is the axis top
    lines = svg.findall("s:polyline", NS)
    assert len(lines) == 1 and len(lines[0].get("points", "").split()) == 2  # the gap ends the first run
    assert len([c for c in svg.findall("s:circle", NS) if c.get("fill") == "#222"]) == 3


def test_text_is_escaped_and_the_svg_well_formed() -> None:
    svg = charts.day_chart("<script>alert(1)</script> & co", DAYS[:2],
                           [charts.Series("a<b>", [1, 2], "#111")], charts.Axis("x & y"))
    assert "<script>" not in svg and ET.fromstring(svg).find("s:title", NS).text == "<script>alert(1)</script> & co"
    assert charts.tier_chart({}, "none") == ""
    tiers = ET.fromstring(charts.tier_chart({"tier1": 30, "tier2": 5}, "Answers"))
    labels = [t.text for t in tiers.findall("s:text", NS)]
    assert {"30", "5", "tier1", "tier2"} <= set(labels)


def test_the_org_page_plots_are_svg() -> None:
    figures = org_plots(_series(), {"tier1": 12, "tier3": 2})
    for name in ("calls", "quality", "tiers"):
        root = ET.fromstring(figures[name])
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("role") == "img"
    assert figures["drawn_at"].endswith("UTC")


def test_drawing_the_org_page_plots_imports_no_matplotlib() -> None:
    """The cold first load paid for importing matplotlib (bench/dashboard_load.py): the app and its plots need none."""
    import subprocess
    import sys

    code = ("import sys; from callwise.api.app import create_app; from callwise.api.dashboard import org_plots; "
            "org_plots([{'day': '2026-11-01', 'calls': 3, 'strict': 1.0, 'lenient': 1.0, 'csat': 4.0, "
            "'first_word_p50': 800}], {'tier1': 3}); print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"
