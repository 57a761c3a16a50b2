"""The post path (posting/path/): one test per rule, the table's order and the walk, and
what is recorded with a refused, a held and an approved post, on a real SQLite store
through the router (router/worker.py `process_batch`), as the daemon runs it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.context import Context
from haishin.directory import Directory
from haishin.posting import decisions
from haishin.posting.path import PATH, Arrival, approval_mode, requirements, send_time, sender, walk
from haishin.posting.policy import RULES
from haishin.posting.policy.base import PartInfo, PostVerdict, PostView
from haishin.posting.schedule import Schedule
from haishin.registry import load_valid
from haishin.registry.model import JST, Approval
from haishin.router.worker import process_batch
from haishin.store import open_store, posts, spool
from haishin.store.posts import PostState
from haishin.store.schema import outbound
from haishin.tokens import Keyring

CONFIG = Path(__file__).resolve().parents[2] / "config"
DOMAIN = "mail.city.kawasaki.example.jp"
SLUG = "gomi-recycle"
SENDER = "genryo@city.kawasaki.example.jp"
MANAGER = "genryo-kacho@city.kawasaki.example.jp"  # the department's 情報管理者
KEY = Keyring(b"k" * 32)
REG = load_valid(CONFIG)
assert REG.service is not None
POLICY = REG.service.value.policy
CHANNEL = REG.channels[SLUG].value
NOT_TIMED = Schedule(None, "本文です。\n")
PLAIN = PostView("お知らせ", "本文です。\n", (PartInfo("text/plain", size=16),), 100)


def arrival(
    address: str = SENDER,
    view: PostView = PLAIN,
    schedule: Schedule = NOT_TIMED,
    approval: Approval = Approval.CONFIRM,
) -> Arrival:
    channel = CHANNEL.model_copy(update={"approval": approval})
    return Arrival(channel=channel, sender=address, view=view, schedule=schedule, policy=POLICY)


def verdicts(a: Arrival) -> list[tuple[str, PostVerdict]]:
    return [(f.rule, f.verdict) for f in walk(a).findings]


# --- one test per rule -----------------------------------------------------------------


def test_sender_passes_a_listed_sender_and_forwards_anyone_else() -> None:
    [listed] = sender.check(arrival(SENDER.replace("city.kawasaki", "CITY.Kawasaki")))
    assert listed.verdict is PostVerdict.PASS
    [stranger] = sender.check(arrival("someone@example.jp"))
    assert stranger.verdict is PostVerdict.FORWARD and "情報管理者" in stranger.message
    assert sender.judge(CHANNEL, None).verdict is PostVerdict.FORWARD


def test_requirements_keep_one_finding_per_policy_rule() -> None:
    found = requirements.check(arrival())
    assert len(found) == len(RULES) and {f.verdict for f in found} == {PostVerdict.PASS}
    big = dataclasses.replace(PLAIN, size=10_000_000)
    assert [f.rule for f in requirements.check(arrival(view=big)) if f.verdict == "refuse"] == [
        "size"
    ]


def test_send_time_passes_with_the_time_and_refuses_what_cannot_be_read() -> None:
    [none] = send_time.check(arrival())
    assert none.verdict is PostVerdict.PASS and "指定なし" in none.message
    at = dt.datetime(2030, 1, 1, 0, 0, tzinfo=dt.UTC)
    [timed] = send_time.check(arrival(schedule=Schedule(at, "x")))
    assert timed.verdict is PostVerdict.PASS and "2030-01-01 09:00" in timed.message  # JST
    [bad] = send_time.check(arrival(schedule=Schedule(None, "x", "読み取れません")))
    assert bad.verdict is PostVerdict.REFUSE and bad.message == "読み取れません"


@pytest.mark.parametrize(
    ("mode", "verdict", "word"),
    [
        (Approval.CONFIRM, PostVerdict.HOLD, "配信者本人"),
        (Approval.MANAGER, PostVerdict.HOLD, "情報管理者"),
        (Approval.AUTHENTICATED, PostVerdict.VERIFY, "DKIM"),
    ],
)
def test_approval_mode_holds_every_post_by_its_mode(
    mode: Approval, verdict: PostVerdict, word: str
) -> None:
    [found] = approval_mode.check(arrival(approval=mode))
    assert found.verdict is verdict and word in found.message


# --- the table -------------------------------------------------------------------------


def test_the_table_orders_sender_requirements_send_time_approval() -> None:
    assert [s.rule for s in PATH] == [
        sender.check,
        requirements.check,
        send_time.check,
        approval_mode.check,
    ]
    names = [rule for rule, _ in verdicts(arrival())]
    assert names == [
        "sender",
        *(f.rule for f in requirements.check(arrival())),
        "schedule",
        "approval",
    ]
    assert walk(arrival()).verdict is PostVerdict.HOLD


def test_a_stranger_ends_the_walk() -> None:
    assert verdicts(arrival("someone@example.jp")) == [("sender", PostVerdict.FORWARD)]


def test_a_refusal_names_every_fix_and_decides_no_approval() -> None:
    big = dataclasses.replace(PLAIN, size=10_000_000)
    walked = walk(arrival(view=big, schedule=Schedule(None, "x", "配信日時が読めません")))
    found = [(f.rule, f.verdict) for f in walked.findings]
    assert walked.verdict is PostVerdict.REFUSE
    assert ("size", PostVerdict.REFUSE) in found and ("schedule", PostVerdict.REFUSE) in found
    assert "approval" not in [rule for rule, _ in found]
    assert walked.explain().startswith("1. ") and "2. 配信日時が読めません" in walked.explain()


# --- recorded with the post, through the router ---------------------------------------


@pytest.fixture
def ctx() -> Context:
    return Context(Directory(REG, KEY), KEY, "https://w.example.jp/")


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_store(f"sqlite:///{tmp_path / 'h.db'}")


def _arrive(engine: sa.Engine, ctx: Context, frm: str, subject: str, body: str) -> None:
    raw = (
        f"From: {frm}\r\nTo: {SLUG}@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@example.jp>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()
    spool.put(engine, raw, frm, [f"{SLUG}@{DOMAIN}"], "smtp")
    assert process_batch(engine, ctx, spool.fetch_new(engine, 10)) == 1


def _only_post(engine: sa.Engine) -> posts.Post:
    with engine.connect() as conn:
        [post] = posts.listing(conn)
    return post


def _rcpts(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [r for (r,) in conn.execute(sa.select(outbound.c.rcpt))]


def _recorded(post: posts.Post) -> dict[str, str]:
    assert all(set(f) == {"rule", "verdict", "message"} for f in post.findings)
    return {f["rule"]: f["verdict"] for f in post.findings}


def test_a_refused_post_records_the_walk(engine: sa.Engine, ctx: Context) -> None:
    _arrive(engine, ctx, SENDER, "", "配信日時: あした\n\n本文\n")
    post = _only_post(engine)
    assert post.state is PostState.REFUSED
    recorded = _recorded(post)
    assert recorded["sender"] == "pass" and recorded["subject"] == "refuse"
    assert recorded["schedule"] == "refuse" and "approval" not in recorded
    assert _rcpts(engine) == [SENDER]  # the refusal, naming both fixes


def test_a_held_post_records_the_walk(engine: sa.Engine, ctx: Context) -> None:
    _arrive(engine, ctx, SENDER, "お知らせ", "配信日時: 2030-01-01 09:00\n\n①の会場\n")
    post = _only_post(engine)
    assert post.state is PostState.HELD
    recorded = _recorded(post)
    assert [*recorded][:1] + [*recorded][-2:] == ["sender", "schedule", "approval"]
    assert recorded["machine-dependent-chars"] == "warn" and recorded["approval"] == "hold"
    assert post.send_at == dt.datetime(2030, 1, 1, 9, 0, tzinfo=JST)
    assert _rcpts(engine) == [SENDER]  # the approval request


def test_an_approved_post_keeps_its_walk(engine: sa.Engine, ctx: Context) -> None:
    _arrive(engine, ctx, SENDER, "お知らせ", "本文です。\n")
    held = _only_post(engine)
    with engine.begin() as conn:
        done = decisions.approve(conn, ctx, held.id, approver=SENDER, method="test")
    assert done is decisions.Decided.DONE
    post = _only_post(engine)
    assert post.state is PostState.APPROVED and post.findings == held.findings
    assert set(_recorded(post).values()) == {"pass", "hold"}


def test_a_strangers_mail_is_forwarded_as_the_sender_rule_says(
    engine: sa.Engine, ctx: Context
) -> None:
    _arrive(engine, ctx, "someone@example.jp", "お知らせ", "本文です。\n")
    with engine.connect() as conn:
        assert posts.listing(conn) == []  # nothing stored as a post
    assert _rcpts(engine) == [MANAGER]  # to the 情報管理者, nothing to the stranger
