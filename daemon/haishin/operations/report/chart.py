"""A channel's 12-month trend as SVG, drawn by pygal (a small pure-Python charting
library: no native code, unlike matplotlib).

The SVG is made to stand alone in a mail: pygal's script (tooltips) is left out, so it is
drawn the same without JavaScript, and it is named for assistive technology (role="img",
aria-label); the report puts the same numbers in a table beside it (WCAG 1.1.1).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pygal
from pygal.style import Style

from ...store.monthly import Figures, Month
from .columns import TREND

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


def trend_svg(title: str, trend: list[tuple[Month, Figures]]) -> str:
    chart = pygal.Line(
        style=_STYLE,
        width=720,
        height=320,
        js=[],  # no script: the chart reads without JavaScript, and mail clients run none
        disable_xml_declaration=True,
        title=title,
        show_dots=True,
        dots_size=3,
        legend_at_bottom=True,
        legend_at_bottom_columns=len(TREND),
        x_label_rotation=0,
        truncate_label=-1,
        min_scale=2,
        include_x_axis=True,
    )
    chart.x_labels = [f"{m.first.month}月" for m, _ in trend]
    for i, (name, value) in enumerate(TREND):
        # the subscribers (hundreds or more) on the left axis, the monthly changes
        # (a handful) on the right one, so that neither is flattened
        chart.add(name, [value(f) for _, f in trend], secondary=i > 0)
    root = ET.fromstring(chart.render(is_unicode=True))
    for parent in root.iter():
        for child in list(parent):
            if child.tag == f"{{{SVG}}}script":
                parent.remove(child)
    root.set("role", "img")
    root.set("aria-label", f"{title}（数値は下の表）")
    return ET.tostring(root, encoding="unicode")
