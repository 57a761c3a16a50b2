"""A channel's 12-month trend as SVG, drawn by pygal (a small pure-Python charting
library: no native code, unlike matplotlib).

The SVG is made to stand alone in a mail: pygal's script (tooltips) is left out, so it is
drawn the same without JavaScript, and it is named for assistive technology (role="img",
aria-label); the report puts the same numbers in a table beside it (WCAG 1.1.1).
"""

from __future__ import annotations

import math
import sys
import xml.etree.ElementTree as ET

import pygal
from pygal.style import Style

from ...store.monthly import Figures, Month
from .columns import TREND

# pygal appends to sys.meta_path a finder for its map plugins that has no find_spec (the
# protocol since Python 3.4): every import that fails anywhere in the process then warns
# (ImportWarning). We draw no maps: take it out again.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")

# contrast of at least 3:1 on white for the lines (WCAG 1.4.11), fonts that have Japanese
_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#000000",
    foreground_subtle="#555555",
    colors=("#1f5fa8", "#1b7a3a", "#b3261e", "#6b4c9a"),
    font_family="'Noto Sans CJK JP', 'Hiragino Sans', 'Yu Gothic', sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=15,
)


def _ticks(values: list[int]) -> list[int]:
    """Whole numbers for a count's axis, about five steps (pygal's own would be 0.8, 1.6…)."""
    top = max([*values, 1])
    step = max(1, math.ceil(top / 5))
    return list(range(0, top + step, step))


def _svg(chart: pygal.graph.graph.Graph, label: str) -> str:
    root = ET.fromstring(chart.render(is_unicode=True))
    for parent in root.iter():
        for child in list(parent):
            # the script, and the <desc> data its tooltips read (the table has the numbers)
            if child.tag in (f"{{{SVG}}}script", f"{{{SVG}}}desc"):
                parent.remove(child)
    root.set("role", "img")
    root.set("aria-label", f"{label}（数値は下の表）")
    return ET.tostring(root, encoding="unicode")


def trend_svgs(title: str, trend: list[tuple[Month, Figures]]) -> list[str]:
    """Two charts: the subscribers at each month's end (a line), and each month's new
    registrations, ended subscriptions and posts (bars) — each on its own whole-number
    scale, so that the few changes are not flattened by the many subscribers."""
    labels = [f"{m.first:%y}/{m.first.month}" for m, _ in trend]
    options = {
        "style": _STYLE,
        "width": 720,
        "height": 300,
        "js": [],  # no script: the chart reads without JavaScript, mail clients run none
        "disable_xml_declaration": True,
        "legend_at_bottom": True,
        "truncate_label": -1,
        "truncate_legend": -1,
        "include_x_axis": True,
    }
    (active_name, active), *changes = TREND
    line_title, bars_title = f"{title}: {active_name}", f"{title}: 月ごとの変化"
    line = pygal.Line(title=line_title, show_legend=False, dots_size=3, **options)
    line.x_labels = labels
    values = [active(f) for _, f in trend]
    line.y_labels = _ticks(values)
    line.add(active_name, values)
    bars = pygal.Bar(title=bars_title, legend_at_bottom_columns=3, **options)
    bars.x_labels = labels
    series = [(name, [value(f) for _, f in trend]) for name, value in changes]
    bars.y_labels = _ticks([v for _, vs in series for v in vs])
    for name, vs in series:
        bars.add(name, vs)
    return [_svg(line, line_title), _svg(bars, bars_title)]
