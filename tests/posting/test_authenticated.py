"""The second step of `authenticated` approval against a real SQLite file: the result is
recorded with the post and acted on once, whoever decides first."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.context import Context
from haishin.directory import Directory
from haishin.posting import decisions
from haishin.posting.approval import VERIFYING
from haishin.posting.authenticated import METHOD, conclude, pending
from haishin.posting.dkim_verify import DkimResult, Verification
from haishin.registry import load_valid
from haishin.store import open_store, posts
from haishin.store.posts import PostState
from haishin.tokens import Keyring

CONFIG = Path(__file__).resolve().parents[2] / "config"
SLUG = "shogai-gakushu"
SENDER = "shogai@city.kawasaki.example.jp"
PASS = Verification(DkimResult.PASS, "DKIM 署名を検証しました（d=city.kawasaki.example.jp、s=sel）")
TEMPORARY = Verification(
    DkimResult.TEMPORARY, "署名の鍵を DNS で確認できませんでした（一時的な障害）"
)


@pytest.fixture
def ctx() -> Context:
    key = Keyring(b"k" * 32)
    return Context(Directory(load_valid(CONFIG), key), key, "https://w.example.jp/")


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_store(f"sqlite:///{tmp_path / 'h.db'}")


def held(engine: sa.Engine, ctx: Context) -> int:
    with engine.begin() as conn:
        made = posts.create(
            conn,
            channel=SLUG,
            spool_id=None,
            sender=SENDER,
            subject="講座のご案内",
            text="本文\n",
            html=None,
            message_id=None,
            state=PostState.HELD,
            approval="authenticated",
            findings=[],
            send_at=None,
            ttl=ctx.post_ttl,
            note=VERIFYING,
        )
    return made.id


def replies(engine: sa.Engine) -> list[str]:
    with engine.connect() as c:
        return [str(r) for r in c.execute(sa.text("SELECT rcpt FROM outbound")).scalars()]


def test_a_pass_approves_once_and_is_recorded(engine: sa.Engine, ctx: Context) -> None:
    post_id = held(engine, ctx)
    assert [row[0] for row in pending(engine)] == [post_id]
    assert conclude(engine, ctx, post_id, PASS)
    assert not conclude(engine, ctx, post_id, PASS)  # a second daemon: nothing more
    with engine.connect() as conn:
        post = posts.get(conn, post_id)
    assert post is not None and post.state is PostState.APPROVED
    assert post.approval_method == METHOD and post.approver == SENDER
    assert post.findings[-1]["rule"] == "dkim" and post.findings[-1]["verdict"] == "pass"
    assert pending(engine) == []
    assert replies(engine) == [SENDER]  # the "approved" notice only


def test_a_temporary_failure_asks_the_sender_and_keeps_the_post(
    engine: sa.Engine, ctx: Context
) -> None:
    post_id = held(engine, ctx)
    assert conclude(engine, ctx, post_id, TEMPORARY)
    with engine.connect() as conn:
        post = posts.get(conn, post_id)
    assert post is not None and post.state is PostState.HELD and post.approver is None
    assert post.note == TEMPORARY.detail
    assert post.findings[-1]["verdict"] == "warn"
    assert replies(engine) == [SENDER]  # the confirm request


def test_a_person_who_decided_first_wins(engine: sa.Engine, ctx: Context) -> None:
    post_id = held(engine, ctx)
    with engine.begin() as conn:
        done = decisions.withdraw(conn, ctx, post_id, by=SENDER, method="cli")
    assert done is decisions.Decision.DONE
    before = replies(engine)
    assert not conclude(engine, ctx, post_id, PASS)
    with engine.connect() as conn:
        post = posts.get(conn, post_id)
    assert post is not None and post.state is PostState.WITHDRAWN
    assert replies(engine) == before
