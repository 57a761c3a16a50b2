"""Form 2 (電子メール配信サービス利用等承認書, 第6条2) as an HTML document to keep or print."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from ..errors import RegistryEditError
from .load import Registry
from .model import KIND_NAMES, ROLE_NAMES

_ERAS = (
    (dt.date(2019, 5, 1), "令和"),
    (dt.date(1989, 1, 8), "平成"),
    (dt.date(1926, 12, 25), "昭和"),
)


def wareki(day: dt.date) -> str:
    """A date the way city documents write it: 令和8年11月25日 (元年 for the first year)."""
    for start, era in _ERAS:
        if day >= start:
            year = day.year - start.year + 1
            return f"{era}{'元' if year == 1 else year}年{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


_env = Environment(
    loader=PackageLoader("haishin.registry", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["wareki"] = wareki


def render_notice(reg: Registry, number: str) -> str:
    located = reg.applications.get(number)
    if located is None:
        raise RegistryEditError(f"申請 {number} がありません")
    app = located.value
    if app.decision is None:
        raise RegistryEditError(
            f"申請 {number} はまだ決定されていません（haishin approve / reject）"
        )
    assert reg.service is not None
    service = reg.service.value
    department = reg.departments.get(app.department)
    channel = reg.channels.get(app.channel)
    return _env.get_template("form2.html").render(
        app=app,
        decision=app.decision,
        kind=KIND_NAMES[app.kind],
        service=service,
        approver=service.roles[app.decision.by],
        approver_role=ROLE_NAMES[app.decision.by],
        department=department,
        channel=channel.value if channel else None,
    )


def write_notice(reg: Registry, number: str, out: Path) -> Path:
    out.write_text(render_notice(reg, number), encoding="utf-8")
    return out
