"""The daemon gives the 第9条 notices itself (issue 15 item 5): a planned stop merged as a
draft gets its advance notice `outage_notice_days` before its start, an emergency stop its
report once begun; each is queued when due and never before, once (a second pass, a
restart, two daemons on one PostgreSQL database), recorded in the store and shown by
`haishin status`; a failed send is queued again. In process at given times on SQLite and
PostgreSQL, and through `haishin serve` on the clock with a real smarthost sink."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from haishin.operations.announce import announce_due
from haishin.operations.outage_status import outages_in_period
from haishin.operations.report.collect import stored_outages
from haishin.operations.status import describe, snapshot
from haishin.registry import Registry, load_valid
from haishin.registry.model import JST
from haishin.store import outage_notices
from haishin.store.engine import open_store
from haishin.store.monthly import Month
from haishin.store.outage_notices import NoticeState
from haishin.store.schema import outage_notices as table
from haishin.store.schema import outbound, outbound_messages
from support import helpers, smarthost

CONFIG = Path(__file__).resolve().parents[2] / "config"
CMS = "bosai-cms@city.kawasaki.example.jp"  # the 防災CMS管理者 (service.yaml)
CLOUD = "promo-cloud@city.kawasaki.example.jp"  # the クラウドサービス管理者
START = dt.datetime(2027, 3, 14, 1, 0, tzinfo=JST)
DAYS = dt.timedelta(days=7)  # service.yaml outage_notice_days


def _stop(config: Path, oid: str, start: dt.datetime, kind: str = "planned", by: str = "") -> None:
    by = by or ("cloud_admin" if kind == "planned" else "cms_admin")
    (config / "outages" / f"{oid}.yaml").write_text(
        f"id: {oid}\nkind: {kind}\nstopped_by: {by}\nreason: テストの保守\n"
        f"start: {start.astimezone(JST).isoformat(sep=' ')}\n"
        f"end: {(start + dt.timedelta(hours=3)).astimezone(JST).isoformat(sep=' ')}\n",
        "utf-8",
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copytree(CONFIG, tmp_path / "config")
    _stop(tmp_path / "config", "R9-09-planned", START)
    return tmp_path / "config"


def _mail(engine: sa.Engine) -> list[tuple[str, EmailMessage]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbound.c.rcpt, outbound_messages.c.raw).join(outbound_messages)
        ).all()
    return [(r, BytesParser(policy=policy.default).parsebytes(raw)) for r, raw in rows]  # type: ignore[misc]


def test_the_notice_goes_out_when_due_not_before_and_once(config: Path, db_url: str) -> None:
    engine = open_store(db_url)
    reg = load_valid(config)
    try:
        due = START - DAYS
        # merged long before: the store knows the stop, nothing is sent
        assert announce_due(engine, reg, due - dt.timedelta(days=20)) == []
        assert announce_due(engine, reg, due - dt.timedelta(seconds=1)) == []
        assert _mail(engine) == []
        [row] = [r for r in _records(engine) if r.outage_id == "R9-09-planned"]
        assert (row.state, row.due_at, row.to_role) == (NoticeState.PENDING, due, "cms_admin")
        # due: queued once, to the other party (第9条2), and recorded
        [given] = announce_due(engine, reg, due)
        assert (given.outage_id, given.kind) == ("R9-09-planned", "notice")
        assert announce_due(engine, reg, due + dt.timedelta(minutes=1)) == []
        assert announce_due(engine, load_valid(config), START + dt.timedelta(hours=1)) == []
        [(rcpt, msg)] = _mail(engine)
        assert rcpt == CMS
        assert str(msg["Subject"]).startswith("【事前通知】川崎市電子メール配信サービスの計画停止")
        assert msg["Reply-To"] == CLOUD  # the one who stops (第9条2)
        assert msg["Auto-Submitted"] == "auto-generated"
        body = msg.get_content()
        assert "1 停止の期間　2027年3月14日 01:00 〜 2027年3月14日 04:00" in body
        assert "運営要領第9条" in body
        [row] = [r for r in _records(engine) if r.outage_id == "R9-09-planned"]
        assert row.state is NoticeState.QUEUED and row.queued_at == due
        # shown by `haishin status` (the store alone)
        shown = describe(snapshot(engine, due + dt.timedelta(minutes=1)))
        assert "停止（第9条）:" in shown
        assert (
            "R9-09-planned 計画停止 2027-03-14 01:00 〜 2027-03-14 04:00"
            "（クラウドサービス管理者が停止、防災CMS管理者へ）: 事前通知は 2027-03-07 01:00 から送信待ち"
        ) in shown
    finally:
        engine.dispose()


def test_a_notice_already_recorded_in_the_file_is_not_sent(db_url: str) -> None:
    """The sample R8-12-maintenance records its notice (given by other means)."""
    engine = open_store(db_url)
    try:
        reg = load_valid(CONFIG)
        at = dt.datetime(2026, 12, 10, tzinfo=JST)
        announce_due(engine, reg, at)
        assert all(rcpt != CMS for rcpt, _ in _mail(engine))
        [row] = [r for r in _records(engine) if r.outage_id == "R8-12-maintenance"]
        assert row.state is NoticeState.RECORDED
        assert "事前通知は記録済み（2026-11-20 10:00" in describe(snapshot(engine, at))
    finally:
        engine.dispose()


def test_a_notice_never_given_before_the_start_is_not_sent_late(config: Path, db_url: str) -> None:
    """Merged after its start: an advance notice is impossible; status says what to do."""
    engine = open_store(db_url)
    try:
        announce_due(engine, load_valid(config), START + dt.timedelta(minutes=5))
        assert _mail(engine) == []
        shown = describe(snapshot(engine, START + dt.timedelta(minutes=5)))
        assert "事前通知を送らないまま停止が始まりました" in shown
    finally:
        engine.dispose()


def test_the_emergency_report_goes_out_once_the_stop_has_begun(config: Path, db_url: str) -> None:
    _stop(config, "R9-10-cms", START, kind="emergency")
    engine = open_store(db_url)
    try:
        reg = load_valid(config)
        before = [a for a in announce_due(engine, reg, START - dt.timedelta(minutes=1))]
        assert [a.outage_id for a in before] == ["R9-09-planned"]  # the notice, not the report
        [given] = announce_due(engine, reg, START + dt.timedelta(minutes=2))
        assert (given.outage_id, given.kind) == ("R9-10-cms", "report")
        assert announce_due(engine, reg, START + dt.timedelta(minutes=3)) == []
        reports = [(r, m) for r, m in _mail(engine) if str(m["Subject"]).startswith("【停止報告】")]
        [(rcpt, msg)] = reports
        assert rcpt == CLOUD  # 第9条4 ただし書: the 防災CMS管理者 reports to the cloud admin
        assert "第9条ただし書" in msg.get_content()
    finally:
        engine.dispose()


def test_a_cancelled_draft_leaves_the_store(config: Path, db_url: str) -> None:
    engine = open_store(db_url)
    try:
        announce_due(engine, load_valid(config), START - dt.timedelta(days=30))
        (config / "outages" / "R9-09-planned.yaml").unlink()
        announce_due(engine, load_valid(config), START - dt.timedelta(days=29))
        assert "R9-09-planned" not in {r.outage_id for r in _records(engine)}
    finally:
        engine.dispose()


def test_a_failed_send_is_queued_again(config: Path, db_url: str) -> None:
    """The sender gave up (4xx past its retry window: the row's state `failed`): the next
    pass queues the notice again, up to MAX_ATTEMPTS, then staff force it."""
    engine = open_store(db_url)
    try:
        reg = load_valid(config)
        due = START - DAYS
        announce_due(engine, reg, due)
        for attempt in range(2, outage_notices.MAX_ATTEMPTS + 1):
            with engine.begin() as conn:  # what outbound/sender.py records when it gives up
                conn.execute(outbound.update().values(state="failed"))
            [again] = announce_due(engine, reg, due + dt.timedelta(hours=attempt))
            assert again.outage_id == "R9-09-planned"
            [row] = [r for r in _records(engine) if r.outage_id == "R9-09-planned"]
            assert row.attempts == attempt
        with engine.begin() as conn:
            conn.execute(outbound.update().values(state="failed"))
        assert announce_due(engine, reg, due + dt.timedelta(days=1)) == []
        assert "送信に失敗しました（3 回）" in describe(
            snapshot(engine, due + dt.timedelta(days=1))
        )
        with engine.begin() as conn:
            done, kind = outage_notices.force(conn, "R9-09-planned", due + dt.timedelta(days=2))
        assert (done, kind) == (outage_notices.Forced.DUE_NOW, "notice")
        assert len(announce_due(engine, reg, due + dt.timedelta(days=2))) == 1
        assert len(_mail(engine)) == outage_notices.MAX_ATTEMPTS + 1
    finally:
        engine.dispose()


def test_the_report_function_lists_a_months_stops(config: Path, db_url: str) -> None:
    """`outages_in_period`: what the 統括管理者's monthly report shows (第9条)."""
    _stop(config, "R9-11-feb", dt.datetime(2027, 2, 20, 1, 0, tzinfo=JST))
    engine = open_store(db_url)
    try:
        reg = load_valid(config)
        announce_due(engine, reg, dt.datetime(2027, 2, 15, tzinfo=JST))
        announce_due(engine, reg, START - DAYS)
        march = outages_in_period(engine, dt.date(2027, 3, 1), dt.date(2027, 4, 1))
        assert [r.outage_id for r in march] == ["R9-09-planned"]
        [r] = march
        assert r.queued_at == START - DAYS and r.to_role == "cms_admin"
        feb = outages_in_period(engine, dt.date(2027, 2, 1), dt.date(2027, 3, 1))
        # February: this one; March's notice went out in March
        assert [r.outage_id for r in feb] == ["R9-11-feb"]
        nov = outages_in_period(engine, dt.date(2027, 11, 1), dt.date(2027, 12, 1))
        # the sample draft: known (mirrored from the registry), its notice not yet due
        assert [(r.outage_id, r.state) for r in nov] == [("R9-02-db-upgrade", NoticeState.PENDING)]
        sample = outages_in_period(engine, dt.date(2026, 10, 1), dt.date(2026, 11, 1))
        assert [r.outage_id for r in sample] == ["R8-10-cms-failure"]
    finally:
        engine.dispose()


def _records(engine: sa.Engine) -> list[outage_notices.NoticeRecord]:
    with engine.connect() as conn:
        return outage_notices.records(conn)


@pytest.mark.skipif(not helpers.pg_available(), reason="PostgreSQL on 127.0.0.1:5432 missing")
def test_two_daemons_on_one_postgresql_give_the_notice_once(config: Path) -> None:
    """Two daemons' passes at the same moment, each in its own connection pool: the row is
    claimed in the transaction that queues the mail, so exactly one queues it."""
    with helpers.pg_database() as url:
        engines = [open_store(url), sa.create_engine(url)]
        reg: Registry = load_valid(config)
        due = START - DAYS
        announce_due(engines[0], reg, due - dt.timedelta(days=1))  # both know the stop
        barrier = threading.Barrier(8)
        results: list[int] = []

        def daemon(engine: sa.Engine) -> None:
            barrier.wait()
            results.append(len(announce_due(engine, reg, due + dt.timedelta(seconds=1))))

        threads = [threading.Thread(target=daemon, args=(engines[i % 2],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        try:
            assert sorted(results) == [0] * 7 + [1]
            assert [r for r, _ in _mail(engines[0])] == [CMS]
        finally:
            for e in engines:
                e.dispose()


# -- through `haishin serve`, on the clock ---------------------------------------------

HAISHIN = [sys.executable, "-m", "haishin"]
LEAD = 12.0  # seconds until the notice is due: the daemon must wait for it


def _status(db_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "haishin", "status", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_daemon_sends_when_due_records_survives_a_restart_and_status_shows(
    tmp_path: Path, sqlite_url: str, sink: smarthost.Sink
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    due = now + dt.timedelta(seconds=LEAD)
    _stop(config, "R9-12-soon", due + DAYS)  # merged as a draft: no notice:
    # an emergency stop of the 防災CMS, begun a minute ago and not yet reported
    _stop(config, "R9-13-cms", now - dt.timedelta(minutes=1), kind="emergency")
    poll = ["--outage-poll", "0.3"]
    d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, config=config, extra=poll)
    try:
        # the report at once (第9条ただし書: 停止後速やかに)
        helpers.wait_until(lambda: sink.to(CLOUD), 30, "the emergency report")
        assert str(sink.to(CLOUD)[0].msg["Subject"]).startswith("【停止報告】")
        # the notice not before it is due, though the daemon looks every 0.3 s
        assert not sink.to(CMS)
        shown = _status(sqlite_url)
        if dt.datetime.now(dt.UTC) < due - dt.timedelta(seconds=1):  # status took < LEAD
            assert "R9-12-soon" in shown and "送信予定" in shown
        helpers.wait_until(lambda: sink.to(CMS), LEAD + 30, "the notice")
        arrived = dt.datetime.now(dt.UTC)
        assert arrived >= due, f"the notice went out {due - arrived} early"
        with sa.create_engine(sqlite_url).connect() as conn:
            queued_at = conn.execute(
                sa.select(table.c.queued_at).where(table.c.outage_id == "R9-12-soon")
            ).scalar_one()
        assert queued_at.replace(tzinfo=dt.UTC) >= due
        assert "R9-12-soon" in sink.to(CMS)[0].msg.get_content()
        assert d.stop() == 0
        # a restart: the daemon looks again many times and sends nothing more
        d = helpers.start(tmp_path, sqlite_url, smarthost=sink.port, config=config, extra=poll)
        time.sleep(2.0)  # ~6 passes of the restarted daemon; nothing may come
        assert len(sink.to(CMS)) == 1 and len(sink.to(CLOUD)) == 1
        shown = _status(sqlite_url)
        assert "R9-12-soon 計画停止" in shown and "事前通知は" in shown and "送信済み" in shown
        assert "R9-13-cms 緊急停止" in shown and "停止報告は" in shown
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
    logs = "".join(f.read_text() for f in tmp_path.glob("daemon-*.log"))
    assert "Traceback" not in logs
    assert "outage R9-12-soon: notice queued" in logs and "outage R9-13-cms: report queued" in logs


def test_a_refused_notice_is_shown_and_sent_again_when_forced(
    tmp_path: Path, sqlite_url: str, sink: smarthost.Sink
) -> None:
    """The smarthost refuses the 防災CMS管理者's address (5xx): status says so; once the
    address is right, `haishin outage notify ID --db` (the store alone) sends it again."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _stop(config, "R9-14-soon", now + DAYS - dt.timedelta(hours=1))  # due an hour ago
    sink.answers[CMS] = "550 5.1.1 no such user"
    notify = [*HAISHIN, "outage", "notify", "R9-14-soon", "--db", sqlite_url]
    with helpers.running(
        tmp_path, sqlite_url, smarthost=sink.port, config=config, extra=["--outage-poll", "0.3"]
    ) as (_d, engine):
        helpers.wait_until(
            lambda: "送信に失敗しました" in _status(sqlite_url), 60, "the refusal shown"
        )
        del sink.answers[CMS]
        forced = subprocess.run(
            notify,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert forced.returncode == 0, forced.stderr
        assert "1 分以内に送ります" in forced.stdout
        helpers.wait_until(lambda: sink.to(CMS), 30, "the notice sent again")
        with engine.connect() as conn:
            attempts = conn.execute(
                sa.select(table.c.attempts).where(table.c.outage_id == "R9-14-soon")
            ).scalar_one()
        assert attempts == 2
        # again: it has gone out, so nothing is forced
        again = subprocess.run(
            notify,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1 and "送信済みか送信待ち" in again.stderr


def test_cli_without_the_other_half(tmp_path: Path, config: Path) -> None:
    """Staff need only what they have: the registry folder to preview before the merge,
    the store to list and force on the server."""
    preview = subprocess.run(
        [*HAISHIN, "outage", "preview", "R9-09-planned", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert preview.returncode == 0, preview.stderr
    assert "事前通知: マージ後、2027-03-07 01:00 以降に配信サーバーが送ります" in preview.stdout
    assert "件名: 【事前通知】" in preview.stdout
    db = f"sqlite:///{tmp_path / 'h.db'}"
    open_store(db).dispose()  # the daemon's store, before it knows any stop
    unknown = subprocess.run(
        [sys.executable, "-m", "haishin", "outage", "notify", "R9-99-none", "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1
    assert "配信サーバーの登録情報にまだありません" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "haishin", "outage", "list", "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and "停止（第9条）: なし" in listed.stdout


def test_the_procedure_is_written_for_staff_and_its_commands_exist() -> None:
    """config/OUTAGES.md: draft → review → merge → notice sent → window → report, in
    Japanese; each command it names answers --help."""
    import re

    doc = (CONFIG / "OUTAGES.md").read_text("utf-8")
    steps = [
        "下書きを作る",
        "確認する",
        "マージ",
        "事前通知が送られる",
        "停止の時間帯",
        "報告・記録",
    ]
    at = [doc.index(s) for s in steps]
    assert at == sorted(at)
    assert "緊急停止" in doc and "第9条" in doc
    assert "R9-02-db-upgrade" in doc and (CONFIG / "outages" / "R9-02-db-upgrade.yaml").exists()
    commands = set(re.findall(r"haishin (outage \w+|status|check|sync)", doc))
    assert {"outage preview", "outage list", "outage notify", "status", "check"} <= commands
    for command in sorted(commands):
        done = subprocess.run(
            [*HAISHIN, *command.split(), "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)


@pytest.mark.skipif(not helpers.pg_available(), reason="PostgreSQL on 127.0.0.1:5432 missing")
def test_two_served_daemons_on_one_postgresql_send_it_once(
    tmp_path: Path, sink: smarthost.Sink
) -> None:
    """Two `haishin serve` on one database, each looking every 0.2 s: one notice."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _stop(config, "R9-15-shared", now + DAYS + dt.timedelta(seconds=LEAD))
    poll = ["--outage-poll", "0.2"]
    with helpers.pg_database() as url:
        open_store(url).dispose()  # migrated once, before both start
        first = helpers.start(tmp_path, url, smarthost=sink.port, config=config, extra=poll)
        second = helpers.start(tmp_path, url, smarthost=sink.port, config=config, extra=poll)
        try:
            helpers.wait_until(lambda: sink.to(CMS), LEAD + 30, "the notice")
            time.sleep(1.5)  # several more passes of both daemons: nothing more may come
            assert len(sink.to(CMS)) == 1
            assert first.stop() == 0 and second.stop() == 0
        finally:
            for d in (first, second):
                if d.proc.poll() is None:
                    d.kill()
    logs = [f.read_text() for f in tmp_path.glob("daemon-*.log")]
    assert sum(log.count("outage R9-15-shared: notice queued") for log in logs) == 1
    assert not any("Traceback" in log for log in logs)


def test_a_deferred_notice_is_retried_by_the_sender(
    tmp_path: Path, sqlite_url: str, sink: smarthost.Sink
) -> None:
    """The smarthost answers 4xx for a while: the queued notice is retried, then sent once."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _stop(config, "R9-16-later", now + DAYS - dt.timedelta(hours=1))  # due an hour ago
    sink.answers[CMS] = "451 4.3.0 try again later"
    with helpers.running(
        tmp_path, sqlite_url, smarthost=sink.port, config=config, extra=["--outage-poll", "0.3"]
    ) as (_d, engine):

        def tried() -> int:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        sa.select(sa.func.max(outbound.c.attempts)).where(outbound.c.rcpt == CMS)
                    ).scalar()
                    or 0
                )

        helpers.wait_until(lambda: tried() >= 2, 60, "two deferrals")
        assert "送信待ち" in _status(sqlite_url)
        del sink.answers[CMS]
        helpers.wait_until(lambda: sink.to(CMS), 60, "the notice after the deferrals")
        time.sleep(1.0)  # more passes of the daemon: nothing more
        assert len(sink.to(CMS)) == 1
        assert "送信済み" in _status(sqlite_url)


def test_the_monthly_report_shows_the_months_stops_from_the_store(
    config: Path, db_url: str
) -> None:
    """The 統括管理者's monthly report (issue 15 item 6) takes its outages section from
    what the daemon recorded: the stop, its window and where its notice stands."""
    engine = open_store(db_url)
    try:
        reg = load_valid(config)
        announce_due(engine, reg, START - DAYS)
        [line] = stored_outages(engine, reg, Month(dt.date(2027, 3, 1)))
        assert line.title.startswith("R9-09-planned（")
        assert line.window.startswith(f"{START.astimezone(JST):%Y-%m-%d %H:%M}〜")
        assert "送信" in line.notice
        assert stored_outages(engine, reg, Month(dt.date(2027, 5, 1))) == []
    finally:
        engine.dispose()
