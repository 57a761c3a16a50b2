#!/usr/bin/env python3
"""Fan-out: one ~4 KB Japanese post to N subscribers, side by side with the peers and the
machine's limits, in one run (issues 8 and 16).

    .venv/bin/python bench/fanout.py 100000 [--dkim] [--as-department] [--no-mailman]
        [--profile]

1. The limits, measured first in this run: the wire's ceiling, Postfix's C client
   `smtp-source -d -s 8 -m N -l 4000` (connections reused, 8 sessions) into the same kind
   of `smtp-sink`; and the machine's signing limit, `openssl speed -multi <cores>
   rsa2048` (signatures per second on all cores).
2. N active subscribers in a fresh SQLite store (user000001@example.net ..., as the peers).
   The post (../shared/peers/mailman3/post.eml) is rendered ONCE with delivery/render.py;
   per subscriber only To and List-Unsubscribe with its token are made; rows are written
   held (next_try in the far future). Printed: rows/s.
3. Send phase: a warm `haishin serve --smarthost` at `smtp-sink` on loopback; under
   `flock /tmp/haishin-bench.lock` the post is released (one UPDATE) and the clock runs to
   the sink's N-th message. This unsigned rate is what `vs ceiling` compares.
4. With --dkim, the signed path end to end: the post mailed in over SMTP by a registered
   sender, held, approved with `haishin held approve`, rendered, fanned out and signed
   (RSA-2048) by the daemon's release task on every core while its sender delivers;
   timed from the approval to the sink's N-th post. This rate over openssl's signatures/s
   is `signed vs rsa limit`. With --as-department the same path unsigned, which the peer
   ratios then use (else they use the send phase).
5. The peers in the same run: mlmmj verp_nodelay at N, Mailman 3 personalize=full at
   10,000 (minutes; `--no-mailman` skips it and says so).
The last lines are the ratios, each saying what it divides. Peak RSS is the daemon's; the
signing workers' peaks are printed beside it. --profile samples the daemon (and its
workers) with py-spy during each timed haishin run and prints where the time went.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("HAISHIN_PEERS", ROOT.parent / "shared" / "peers"))
if not PEERS.exists():
    PEERS = Path("/work/shared/peers")
POST = PEERS / "mailman3" / "post.eml"
LOCK = "/tmp/haishin-bench.lock"
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
SLUG = "gomi-recycle"
SECRET = "bench-secret-0123456789abcdef"
HZ = os.sysconf("SC_CLK_TCK")


def log(text: str) -> None:
    print(f"[fanout] {text}", file=sys.stderr, flush=True)


def ensure_sink() -> None:
    if Path(SINK).exists():
        return
    log("installing postfix (for smtp-sink only)")
    subprocess.run(
        "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections"
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix",
        shell=True,
        check=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ


def hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sink_counts(path: Path) -> tuple[int, int]:
    """(sessions, messages) from smtp-sink's -c counter output."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 300))
            tail = f.read().decode("ascii", "replace")
    except OSError:
        return 0, 0
    m = re.findall(r"sess=(\d+) quit=\d+ mesg=(\d+)", tail)
    return (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)


def children(pid: int) -> list[int]:
    """The pids of a process's children (the daemon's signing workers)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def children_total(pid: int, measure: Callable[[int], float]) -> float:
    total = 0.0
    for kid in children(pid):
        with contextlib.suppress(OSError, IndexError):
            total += measure(kid)
    return total


def start_sink(counter: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    sink = subprocess.Popen(
        [SINK, "-c", "-u", "nobody", "-t", "300", f"127.0.0.1:{port}", "1024"],
        stdout=open(counter, "w"),  # noqa: SIM115
        stderr=subprocess.DEVNULL,
    )
    return sink, port


def run_ceiling(n: int, sessions: int = 8) -> float | None:
    """The wire's ceiling: Postfix's C client, connections reused (-d), into smtp-sink."""
    if not Path(SOURCE).exists():
        log(f"{SOURCE} is missing: no ceiling")
        return None
    tmp = Path(tempfile.mkdtemp(prefix="haishin-ceiling-"))
    counter = tmp / "sink.counter"
    sink, port = start_sink(counter)
    time.sleep(0.3)
    cmd = [SOURCE, "-d", "-s", str(sessions), "-m", str(n), "-l", "4000"]
    cmd += ["-f", "sender@example.org", "-t", "rcpt@example.net", f"127.0.0.1:{port}"]
    try:
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            s0 = cpu_s(sink.pid)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            while sink_counts(counter)[1] < n:
                time.sleep(0.005)
            wall = time.perf_counter() - t0
            s_cpu = cpu_s(sink.pid) - s0
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    rate = n / wall
    print(
        f"ceiling smtp-source -d -s {sessions} -m {n} -l 4000 wall_s={wall:.2f} "
        f"msgs_per_s={rate:.0f} sink_cpu_s={s_cpu:.2f}",
        flush=True,
    )
    return rate


def run_openssl(cores: int, seconds: int) -> float | None:
    """The machine's signing limit: RSA-2048 signatures per second on all cores."""
    cmd = ["openssl", "speed", "-multi", str(cores), "-seconds", str(seconds), "rsa2048"]
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"^rsa\s+2048 bits\s+\S+s\s+\S+s\s+([0-9.]+)\s+([0-9.]+)", out.stdout, re.M)
    if not m:
        log(f"no figure from {' '.join(cmd)}: {out.stdout[-300:]} {out.stderr[-300:]}")
        return None
    rate = float(m.group(1))
    print(f"openssl {' '.join(cmd[1:])} sign_per_s={rate:.0f}", flush=True)
    return rate


class Profile:
    """py-spy sampling a process and its children, summarised by function (--profile)."""

    def __init__(self, pid: int, out: Path, enabled: bool) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        spy = shutil.which("py-spy") or "/tmp/py-spy/bin/py-spy"
        if enabled and Path(spy).exists():
            cmd = [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
            cmd += [
                "--rate",
                os.environ.get("SPY_RATE", "250"),
                "--format",
                "raw",
                "--output",
                str(out),
            ]
            self.proc = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        elif enabled:
            log("py-spy not found (pip install py-spy into /tmp/py-spy): no profile")

    def stop(self, label: str) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        own: dict[str, int] = {}
        within: dict[str, int] = {}
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [f.split(" (")[0] + " (" + f.rsplit("/", 1)[-1] for f in stack.split(";")]
            n = int(count)
            total += n
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for f in set(frames[1:]):
                within[f] = within.get(f, 0) + n
        kept = Path(tempfile.gettempdir()) / f"haishin-profile-{label.replace(' ', '-')}.txt"
        shutil.copyfile(self.out, kept)
        print(f"profile {label}: {total} samples (py-spy, daemon and workers; {kept})", flush=True)
        for name, table in (("self", own), ("inclusive", within)):
            for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:14]:
                print(f"  {name:9} {100 * n / max(total, 1):5.1f}%  {frame}", flush=True)


def commit_waits(daemon_log: Path) -> float:
    """Seconds the daemon's connections waited for their chains' group commits, added up
    (its last sender line): over connections × wall, the share of sending time lost."""
    found = re.findall(r"([0-9.]+) s waited for commits", daemon_log.read_text())
    return float(found[-1]) if found else 0.0


def make_store(tmp: Path, n: int) -> tuple[str, sa.Engine]:
    from haishin.store import open_store
    from haishin.store.schema import subscribers

    url = f"sqlite:///{tmp / 'haishin.db'}"
    engine = open_store(url)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        for start in range(1, n + 1, 10_000):
            conn.execute(
                subscribers.insert(),
                [
                    {
                        "channel": SLUG,
                        "address": f"user{i:06d}@example.net",
                        "address_key": f"user{i:06d}@example.net",
                        "status": "active",
                        "created_at": now,
                        "updated_at": now,
                        "confirmed_at": now,
                        "consent_method": "bench",
                    }
                    for i in range(start, min(n, start + 9_999) + 1)
                ],
            )
    return url, engine


def enqueue(engine: sa.Engine, config: Path, dkim: bool) -> tuple[int, int, float]:
    """Render once, queue one row per active subscriber (held). (message id, rows, s)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from haishin.delivery.dkim import DkimKey
    from haishin.delivery.render import RenderContext, render
    from haishin.registry import load_valid
    from haishin.store import queue
    from haishin.store.engine import reading
    from haishin.store.schema import subscribers
    from haishin.tokens import Keyring, Purpose

    reg = load_valid(config)
    assert reg.service is not None
    service = reg.service.value
    channel = reg.channels[SLUG].value
    keys = ()
    if dkim:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keys = (DkimKey(service.mail_domain.encode(), b"bench", key),)
    ctx = RenderContext(
        service,
        channel,
        reg.departments[channel.department],
        web_url="https://mail.city.kawasaki.example.jp/",
        channel_url=f"{service.site_url}channels/{SLUG}/",
        dkim_keys=keys,
    )
    post = BytesParser(policy=policy.default).parsebytes(POST.read_bytes())
    assert isinstance(post, EmailMessage)
    body = post.get_body(("plain",))
    assert body is not None
    keyring = Keyring(SECRET.encode())
    held = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    t0 = time.perf_counter()
    rendered = render(ctx, "bench1", str(post["Subject"]), body.get_content())
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)
    mail_from = ctx.address("-bounces")

    def rows(conn: sa.Connection) -> object:
        query = (
            sa.select(subscribers.c.id, subscribers.c.address)
            .where(subscribers.c.channel == SLUG, subscribers.c.status == "active")
            .order_by(subscribers.c.id)
        )
        for sid, address in conn.execution_options(yield_per=5000).execute(query):
            token = keyring.make(Purpose.UNSUBSCRIBE, sid, expires)
            yield mail_from, address, rendered.personal(address, token)

    with engine.begin() as conn:
        message_id = queue.add_message(conn, rendered.common(), kind="post")
        with reading(engine) as reader:
            added = queue.add_rows(conn, message_id, rows(reader), not_before=held)  # type: ignore[arg-type]
    return message_id, added, time.perf_counter() - t0


def start_daemon(
    tmp: Path, config: Path, url: str, sink_port: int, batch: int, extra: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    haishin = Path(sys.executable).with_name("haishin")
    cmd = [
        str(haishin),
        "serve",
        "--config",
        str(config),
        "--db",
        url,
        "--smtp",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--smarthost",
        f"127.0.0.1:{sink_port}",
        "--outbound-poll",
        "0.05",
        "--send-batch",
        str(batch),
        *extra,
    ]
    env = dict(os.environ, HAISHIN_SECRET=SECRET)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=open(tmp / "daemon.log", "w"),  # noqa: SIM115
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "smtp=" not in line:
        proc.kill()
        raise SystemExit(f"daemon did not start: {line!r}; see {tmp / 'daemon.log'}")
    m = re.search(r"smtp=[\d.]+:(\d+)", line)
    proc.smtp_port = int(m[1]) if m else 0  # type: ignore[attr-defined]
    return proc


def run_haishin(
    n: int, dkim: bool, connections: int, batch: int, enqueue_only: bool, profile: bool = False
) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="haishin-fanout-"))
    config = tmp / "config"
    shutil.copytree(ROOT / "config", config)
    svc = config / "service.yaml"
    svc.write_text(re.sub(r"connections: 8 ", f"connections: {connections} ", svc.read_text()))
    log(f"N={n}: subscribers into {tmp}")
    url, engine = make_store(tmp, n)
    message_id, added, enq_s = enqueue(engine, config, dkim)
    label = "dkim=rsa2048" if dkim else "dkim=off"
    print(
        f"haishin enqueue N={n} {label} rows={added} wall_s={enq_s:.2f} "
        f"rows_per_s={added / enq_s:.0f}",
        flush=True,
    )
    if enqueue_only:
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
        return 0.0
    from haishin.store.schema import outbound

    counter = tmp / "sink.counter"
    sink, port = start_sink(counter)
    daemon = start_daemon(tmp, config, url, port, batch)
    time.sleep(1.0)  # warm: migrations done, sender idle (not a timing)
    spy = Profile(daemon.pid, tmp / "profile.txt", profile)
    try:
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            d0, s0 = cpu_s(daemon.pid), cpu_s(sink.pid)
            t0 = time.perf_counter()
            with engine.begin() as conn:  # the release: what an approval does
                conn.execute(
                    outbound.update()
                    .where(outbound.c.message_id == message_id)
                    .values(next_try=dt.datetime.now(dt.UTC))
                )
            first = None
            while True:
                _, mesg = sink_counts(counter)
                if mesg and first is None:
                    first = time.perf_counter() - t0
                if mesg >= n:
                    break
                if daemon.poll() is not None:
                    raise SystemExit(f"daemon died; see {tmp / 'daemon.log'}")
                time.sleep(0.005)
            wall = time.perf_counter() - t0
            d_cpu, s_cpu = cpu_s(daemon.pid) - d0, cpu_s(sink.pid) - s0
            rss = hwm_mb(daemon.pid)
        spy.stop(f"send N={n} {label}")
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        time.sleep(0.3)
        sess, mesg = sink_counts(counter)
        waited = commit_waits(tmp / "daemon.log")
    finally:
        if daemon.poll() is None:
            daemon.kill()
        sink.send_signal(signal.SIGTERM)
        sink.wait(10)
    with engine.connect() as conn:
        states = dict(
            conn.execute(sa.text("SELECT state, count(*) FROM outbound GROUP BY state")).all()
        )
    engine.dispose()
    rate = n / wall
    print(
        f"haishin send N={n} {label} wall_s={wall:.2f} msgs={mesg} msgs_per_s={rate:.0f} "
        f"first_msg_s={first or 0:.3f} peak_rss_mb={rss:.1f} daemon_cpu_s={d_cpu:.2f} "
        f"sink_cpu_s={s_cpu:.2f} connections={sess} (max {connections}, pipelining) "
        f"commit_wait={100 * waited / (connections * wall):.0f}% "
        f"states={states} ok={'yes' if states.get('sent') == n and mesg == n else 'NO'}",
        flush=True,
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return rate


def run_as_department(
    n: int, connections: int, batch: int, dkim: bool = False, profile: bool = False
) -> float:
    """The whole path: the department's mail in over SMTP, held, approved with
    `haishin held approve` (as the 情報管理者 would), rendered, fanned out (and with
    `dkim` signed with an RSA-2048 key on every core) by the daemon's release task,
    delivered. Timed from the approval to the sink's N-th post."""
    import smtplib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    tmp = Path(tempfile.mkdtemp(prefix="haishin-fanout-dept-"))
    config = tmp / "config"
    shutil.copytree(ROOT / "config", config)
    log(f"N={n}: subscribers into {tmp} (as a department would post)")
    url, engine = make_store(tmp, n)
    counter = tmp / "sink.counter"
    sink, port = start_sink(counter)
    extra: tuple[str, ...] = ("--release-poll", "0.05")
    if dkim:
        pem = tmp / "dkim.pem"
        pem.write_bytes(
            rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        extra += ("--dkim-key", str(pem), "--dkim-selector", "bench")
    daemon = start_daemon(tmp, config, url, port, batch, extra)
    haishin = Path(sys.executable).with_name("haishin")
    env = dict(os.environ, HAISHIN_SECRET=SECRET)
    # the peers' post as a department's mail client sends it (its long lines in base64)
    original = BytesParser(policy=policy.default).parsebytes(POST.read_bytes())
    assert isinstance(original, EmailMessage)
    text = original.get_body(("plain",))
    assert text is not None
    message = EmailMessage()
    message["From"] = "genryo@city.kawasaki.example.jp"
    message["To"] = f"{SLUG}@mail.city.kawasaki.example.jp"
    message["Subject"] = str(original["Subject"])
    message.set_content(text.get_content(), cte="base64")
    post = message.as_bytes(policy=policy.SMTP)
    try:
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as c:  # type: ignore[attr-defined]
            c.sendmail(
                "genryo@city.kawasaki.example.jp", [f"{SLUG}@mail.city.kawasaki.example.jp"], post
            )
        post_id = ""
        for _ in range(200):  # the post is held for approval (the sender is asked)
            listed = subprocess.run(
                [str(haishin), "held", "list", "--db", url], capture_output=True, text=True, env=env
            ).stdout.split()
            if listed:
                post_id = listed[0]
                break
            time.sleep(0.05)
        if not post_id:
            raise SystemExit(f"the post was not held; see {tmp / 'daemon.log'}")
        time.sleep(1.0)  # the confirmation request to the sender has left (not a timing)
        base = sink_counts(counter)[1]
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            spy = Profile(daemon.pid, tmp / "profile.txt", profile)
            d0, s0 = cpu_s(daemon.pid), cpu_s(sink.pid)
            w0 = children_total(daemon.pid, cpu_s)
            t0 = time.perf_counter()
            approved = subprocess.run(
                [str(haishin), "held", "approve", post_id, "--db", url, "--config", str(config)],
                capture_output=True,
                text=True,
                env=env,
            )
            approved_s = time.perf_counter() - t0
            if approved.returncode != 0:
                raise SystemExit(f"approve failed: {approved.stderr}")
            first = None
            while (got := sink_counts(counter)[1]) < base + n:
                if got > base and first is None:
                    first = time.perf_counter() - t0
                if daemon.poll() is not None:
                    raise SystemExit(f"daemon died; see {tmp / 'daemon.log'}")
                time.sleep(0.005)
            wall = time.perf_counter() - t0
            d_cpu, s_cpu = cpu_s(daemon.pid) - d0, cpu_s(sink.pid) - s0
            w_cpu = children_total(daemon.pid, cpu_s) - w0
            rss, workers = hwm_mb(daemon.pid), children_total(daemon.pid, hwm_mb)
            spy.stop(f"department N={n} {'dkim=rsa2048' if dkim else 'dkim=off'}")
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        sink.send_signal(signal.SIGTERM)
        sink.wait(10)
    with engine.connect() as conn:
        sent = conn.execute(
            sa.text(
                "SELECT count(*) FROM outbound JOIN outbound_messages m ON m.id = message_id "
                "WHERE m.kind = 'post' AND state = 'sent'"
            )
        ).scalar_one()
    engine.dispose()
    rate = n / wall
    label = "dkim=rsa2048" if dkim else "dkim=off"
    print(
        f"haishin department N={n} {label} wall_s={wall:.2f} msgs_per_s={rate:.0f} "
        f"first_msg_s={first or wall:.3f} approve_cmd_s={approved_s:.2f} "
        f"peak_rss_mb={rss:.1f} workers_peak_rss_mb={workers:.1f} "
        f"daemon_cpu_s={d_cpu:.2f} workers_cpu_s={w_cpu:.2f} sink_cpu_s={s_cpu:.2f} "
        f"post_rows_sent={sent} ok={'yes' if sent == n else 'NO'} "
        "(SMTP in, held, haishin held approve, release, fan-out, delivery)",
        flush=True,
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return rate


def run_peer(cmd: list[str], env: dict[str, str], pattern: str) -> float | None:
    log("running " + " ".join(cmd))
    out = subprocess.run(cmd, env=dict(os.environ, **env), capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    for ln in lines:
        print(ln, flush=True)
    for ln in reversed(lines):
        m = re.search(pattern, ln)
        if m:
            return float(m.group(1))
    log(f"no result from {cmd[1]} (exit {out.returncode}): {out.stderr[-500:]}")
    return None


def both(what: str, figures: list[float | None]) -> float | None:
    """The mean of a limit measured before and after; says how far apart they were."""
    got = [f for f in figures if f]
    if not got:
        return None
    mean = sum(got) / len(got)
    spread = (max(got) - min(got)) / mean
    note = "  (noisy machine: compare ratios of paired runs)" if spread > 0.2 else ""
    print(
        f"{what} before and after: {' / '.join(f'{f:.0f}' for f in got)}, mean {mean:.0f}, "
        f"spread {100 * spread:.0f}%{note}",
        flush=True,
    )
    return mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("n", type=int, nargs="?", default=100_000)
    ap.add_argument(
        "--dkim", action="store_true", help="also the signed path, from the approval (RSA-2048)"
    )
    ap.add_argument("--enqueue-only", action="store_true", help="measure the fan-out phase only")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--no-mailman", action="store_true", help="skip Mailman 3 (minutes)")
    ap.add_argument("--no-mlmmj", action="store_true")
    ap.add_argument("--openssl-seconds", type=int, default=10, help="openssl speed's default")
    ap.add_argument("--profile", action="store_true", help="py-spy the daemon's timed runs")
    ap.add_argument(
        "--as-department",
        action="store_true",
        help="also the whole path unsigned: SMTP in, approval, the daemon's own fan-out",
    )
    args = ap.parse_args()

    ensure_sink()
    if args.enqueue_only:
        run_haishin(args.n, False, args.connections, args.batch, True)
        if args.dkim:
            run_haishin(args.n, True, args.connections, args.batch, True)
        return
    cores = len(os.sched_getaffinity(0))
    # each limit is measured right before and right after the run it is compared with, and
    # the mean taken: on a shared machine the load drifts between runs
    around = [run_ceiling(args.n)]
    unsigned = run_haishin(args.n, False, args.connections, args.batch, False, args.profile)
    around.append(run_ceiling(args.n))
    ceiling = both("ceiling", around)
    signed, sign_limit = None, None
    if args.dkim:
        around = [run_openssl(cores, args.openssl_seconds)]
        signed = run_as_department(args.n, args.connections, args.batch, True, args.profile)
        around.append(run_openssl(cores, args.openssl_seconds))
        sign_limit = both("rsa limit", around)
    rate, what = unsigned, "send phase, rows queued before the clock"
    if args.as_department:
        # the measure: from the approval of a post mailed in by a department
        rate = run_as_department(args.n, args.connections, args.batch, False, args.profile)
        what = "unsigned, from the approval"
    mlmmj = None
    if not args.no_mlmmj:
        mlmmj = run_peer(
            ["bash", str(PEERS / "mlmmj" / "run.sh"), str(args.n)],
            {"CONFIGS": "verp_nodelay"},
            r" msgs_per_s=([0-9.]+)",
        )
    mailman = None
    mailman_note = ""
    if not args.no_mailman:
        mailman = run_peer(
            ["bash", str(PEERS / "mailman3" / "run.sh"), "10000"],
            {"MODES": "full"},
            r"personalize=full .*? msgs_per_s=([0-9.]+)",
        )
    if mailman is None:
        mailman, mailman_note = 44.9, ", published figure (README): not run here"
    print(f"N={args.n}, {cores} cores; haishin {rate:.0f} msgs/s ({what}) for the peers:")
    print(f"vs mailman3: {rate / mailman:.1f}x (Mailman {mailman:.1f} msgs/s{mailman_note})")
    print(
        f"vs mlmmj: {rate / mlmmj:.2f}x (mlmmj verp_nodelay {mlmmj:.0f} msgs/s)"
        if mlmmj
        else "vs mlmmj: n/a (not run)"
    )
    print(
        f"vs ceiling: {unsigned / ceiling:.2f}x (haishin {unsigned:.0f} msgs/s unsigned, send"
        f" phase, over smtp-source -d {ceiling:.0f} msgs/s)"
        if ceiling
        else "vs ceiling: n/a (smtp-source missing)"
    )
    if signed is None:
        print("signed vs rsa limit: n/a (run with --dkim)")
    elif sign_limit:
        print(
            f"signed vs rsa limit: {signed / sign_limit:.2f}x (haishin {signed:.0f} msgs/s"
            f" RSA-2048 signed, from the approval, over openssl's {sign_limit:.0f} signatures/s"
            f" on {cores} cores)"
        )
    else:
        print("signed vs rsa limit: n/a (openssl speed gave no figure)")


if __name__ == "__main__":
    main()
