"""The audit log (第4条(3)): who did what to the registration data, and when.

Written by the CLI's administrative commands (subscriber export, removal and import,
backups and restores, purges, outage notices, held-post decisions) in the transaction of
the action where there is one. The actor is the login that ran the command (under sudo,
the person behind it).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from ..clock import utcnow
from .engine import reading
from .schema import audit_log


def actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid:{os.getuid()}"
    behind = os.environ.get("SUDO_USER")
    return f"{behind} (sudo {user})" if behind and behind != user else user


def record(
    conn: sa.Connection, action: str, target: str, detail: str = "", who: str | None = None
) -> None:
    conn.execute(
        audit_log.insert().values(
            at=utcnow(),
            actor=who or actor(),
            action=action,
            target=target[:256],
            detail=detail or None,
        )
    )


def record_now(engine: sa.Engine, action: str, target: str, detail: str = "") -> None:
    with engine.begin() as conn:
        record(conn, action, target, detail)


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    actor: str
    action: str
    target: str
    detail: str | None


def entries(engine: sa.Engine, since: dt.datetime | None = None) -> Iterator[Entry]:
    query = sa.select(audit_log).order_by(audit_log.c.id)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    with reading(engine) as conn:
        for row in conn.execute(query):
            m = row._mapping
            yield Entry(m["at"], m["actor"], m["action"], m["target"], m["detail"])
