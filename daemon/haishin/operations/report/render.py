"""The monthly report as CSV (for a spreadsheet), plain text and HTML (the mail's parts).

Every cell comes from columns.py, so the three never disagree. Jinja2 escapes what the
registry says (titles are staff's text); the charts are pygal's SVG (chart.py).
"""

from __future__ import annotations

import csv
import io

import jinja2
from markupsafe import Markup

from .chart import trend_svgs
from .collect import Report
from .columns import COLUMNS, TREND

CSV_HEAD = ["月", "チャネル", "名称", "所属", *[name for name, _ in COLUMNS], "最終配信日"]


def csv_bytes(report: Report) -> bytes:
    """UTF-8 with a byte-order mark: the spreadsheet staff use reads Japanese from it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 §2
    writer.writerow(CSV_HEAD)
    for c in report.channels:
        writer.writerow(
            [
                report.month.label,
                c.slug,
                c.title,
                c.department,
                *[value(c.figures) for _, value in COLUMNS],
                c.last_post.isoformat() if c.last_post else "",
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def subject(report: Report) -> str:
    return f"【{report.service}】{report.month.first:%Y年%m月}の配信報告: {report.scope_name}"


def text(report: Report) -> str:
    lines = [subject(report), ""]
    if not report.channels:
        lines.append("対象のチャネルはありません。")
    for c in report.channels:
        lines.append(f"■ {c.title}（{c.slug}） {c.department}")
        last = f"{c.last_post:%Y年%m月%d日}" if c.last_post else "なし"
        lines.append(f"  最終配信日: {last}")
        lines += [f"  {name}: {value(c.figures):,}" for name, value in COLUMNS]
        lines.append("")
    if report.scope is None:
        lines.append("■ 配信が途絶えているチャネル（第5条4）")
        lines += [f"  {q.title}（{q.slug}） {q.department}: {q.days} 日" for q in report.quiet]
        lines += ["  なし"] if not report.quiet else []
        lines.append("")
        lines.append("■ サービスの停止と通知（第9条）")
        lines += [f"  {o.title} {o.window} 通知: {o.notice}" for o in report.outages]
        lines += ["  なし"] if not report.outages else []
        lines.append("")
    lines.append("数値は日本時間の暦月で数えています。詳しくは添付の CSV をご覧ください。")
    return "\n".join(lines) + "\n"


_TEMPLATE = """<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: 'Noto Sans CJK JP', 'Hiragino Sans', 'Yu Gothic', sans-serif;
  color: #222; background: #fff; margin: 1.5rem; line-height: 1.6; max-width: 60rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.2rem; border-bottom: 2px solid #1f5fa8;
  margin-top: 2.5rem; } h3 { font-size: 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #999; padding: .2rem .6rem; }
td { text-align: right; } th { background: #eef2f8; text-align: left; }
figure { margin: 1rem 0; } svg { max-width: 100%; height: auto; }
.note { color: #444; font-size: .9rem; }
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p class="note">数値は日本時間の{{ month }}（1日0時から月末24時まで）で数えています。
登録者のメールアドレスは含みません。同じ数値を添付の CSV にも収めています。</p>
{% if not report.channels %}<p>対象のチャネルはありません。</p>{% endif %}
{% for c in channels %}
<section aria-labelledby="ch-{{ c.slug }}">
<h2 id="ch-{{ c.slug }}">{{ c.title }}（{{ c.slug }}）</h2>
<p>{{ c.department }}　最終配信日: {{ c.last }}</p>
<table>
<caption>{{ month }}の数値</caption>
<tbody>
{% for name, value in c.cells %}<tr><th scope="row">{{ name }}</th><td>{{ value }}</td></tr>
{% endfor %}</tbody>
</table>
<figure>
{% for svg in c.svgs %}{{ svg }}
{% endfor %}<figcaption>{{ c.title }}: 直近12か月の推移（横軸は年/月。数値は次の表）</figcaption>
</figure>
<table>
<caption>直近12か月の推移（グラフの数値）</caption>
<thead><tr><th scope="col">月</th>{% for name in trend_names %}<th scope="col">{{ name }}</th>{% endfor %}</tr></thead>
<tbody>
{% for label, values in c.trend %}<tr><th scope="row">{{ label }}</th>{% for v in values %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
</section>
{% endfor %}
{% if report.scope is none %}
<section aria-labelledby="quiet">
<h2 id="quiet">配信が途絶えているチャネル（第5条4）</h2>
{% if report.quiet %}<table>
<thead><tr><th scope="col">チャネル</th><th scope="col">所属</th><th scope="col">最終配信日</th><th scope="col">配信のない日数</th><th scope="col">情報管理者へのお知らせ</th></tr></thead>
<tbody>{% for q in report.quiet %}<tr><th scope="row">{{ q.title }}（{{ q.slug }}）</th><td>{{ q.department }}</td><td>{{ q.last_post or "配信なし" }}</td><td>{{ q.days }} 日</td><td>{{ q.reminded.date() if q.reminded else "未送信" }}</td></tr>
{% endfor %}</tbody></table>{% else %}<p>ありません。</p>{% endif %}
</section>
<section aria-labelledby="outages">
<h2 id="outages">サービスの停止と通知（第9条）</h2>
{% if report.outages %}<table>
<thead><tr><th scope="col">停止</th><th scope="col">期間</th><th scope="col">通知・報告</th></tr></thead>
<tbody>{% for o in report.outages %}<tr><th scope="row">{{ o.title }}</th><td>{{ o.window }}</td><td>{{ o.notice }}</td></tr>
{% endfor %}</tbody></table>{% else %}<p>ありません。</p>{% endif %}
</section>
{% endif %}
</main>
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def html(report: Report) -> str:
    month = f"{report.month.first:%Y年%m月}"
    channels = [
        {
            "slug": c.slug,
            "title": c.title,
            "department": c.department,
            "last": f"{c.last_post:%Y年%m月%d日}" if c.last_post else "配信なし",
            "cells": [(name, f"{value(c.figures):,}") for name, value in COLUMNS],
            # pygal's own output, its text escaped by its XML writer
            "svgs": [Markup(svg) for svg in trend_svgs(c.title, c.trend)],
            "trend": [
                (f"{m.first:%Y年%m月}", [f"{value(f):,}" for _, value in TREND]) for m, f in c.trend
            ],
        }
        for c in report.channels
    ]
    return _ENV.from_string(_TEMPLATE).render(
        title=subject(report),
        month=month,
        report=report,
        channels=channels,
        trend_names=[name for name, _ in TREND],
    )
