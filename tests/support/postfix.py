"""A private Postfix instance for tests, configured with the snippet that deploy/ ships.

The instance lives in a temporary directory of its own (main.cf, master.cf, queue, data,
log), listens on a loopback port the OS picked, routes the service's mail domain over LMTP
to a haishin daemon and relays everything else to a test sink. It is started as root, like
a real Postfix (master(8) drops to the `postfix` user for its daemons), and stopped at the
end; the machine's own Postfix instance is never touched.

The directory is made with `tempfile.mkdtemp` under /tmp rather than in pytest's tmp_path:
pytest's base directory is mode 0700, which the `postfix` user could not traverse, and
Postfix's UNIX sockets (queue_directory/private/...) must stay within 108 bytes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "deploy" / "postfix" / "main.cf"
SNIPPET_LMTP = "lmtp:inet:127.0.0.1:8024"
"""The daemon's LMTP address as the snippet writes it; the test's daemon has its own port."""

POSTFIX = Path("/usr/sbin/postfix")
POSTCONF = Path("/usr/sbin/postconf")
SYSTEM_MASTER_CF = Path("/etc/postfix/master.cf")
WAIT = 30.0
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

T = TypeVar("T")

CLOCK_SKEW = ("file system clock is", "resetting file time stamps")
"""Postfix cleanup's warnings about the machine's clocks (see `problems`)."""


def unavailable() -> str | None:
    """Why a private Postfix cannot run here (the reason to skip with), or None."""
    if not (POSTFIX.exists() and POSTCONF.exists() and SYSTEM_MASTER_CF.exists()):
        return f"Postfix is not installed ({POSTFIX}); .ci/run installs it"
    if os.geteuid() != 0:
        return "a private Postfix instance is started as root, like the real one"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "the `postfix` user is missing (install the Debian package)"
    return None


def free_port() -> int:
    """A loopback port the OS has just handed out; the caller binds it soon after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    check: Callable[[], T | None],
    what: str,
    timeout: float = WAIT,
    explain: Callable[[], str] = lambda: "",
) -> T:
    """Poll `check` until it returns something true; fail with `explain()` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Postfix:
    root: Path
    port: int

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.root / "queue"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def log(self) -> str:
        """Postfix's own log (maillog_file): what to read when a test fails."""
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return "(no maillog yet)"

    def explain(self) -> str:
        return "--- private Postfix maillog ---\n" + self.log()[-6000:]

    def problems(self) -> list[str]:
        """Log lines in which Postfix reports a warning, an error or worse, except the
        machine's own clock drifting from its file system's (cleanup's "file system clock
        is 1 seconds ahead of local clock" and "resetting file time stamps", seen once in
        a loaded CI run): a fact about the test machine, not about this configuration."""
        return [
            line
            for line in self.log().splitlines()
            if any(f" {level}: " in line for level in ("warning", "error", "fatal", "panic"))
            and not any(clock in line for clock in CLOCK_SKEW)
        ]

    def postconf(self, *args: str) -> str:
        return run([str(POSTCONF), "-c", str(self.config_dir), *args])

    def postfix(self, *args: str) -> str:
        return run([str(POSTFIX), "-c", str(self.config_dir), *args], explain=self.explain)

    def queued(self, *queues: str) -> int:
        """Messages in the named queues (default: all), not yet delivered or bounced."""
        return sum(
            len(files)
            for q in queues or QUEUES
            for _, _, files in os.walk(self.queue_dir / q)  # hashed subdirectories
        )

    def greets(self) -> bool:
        """True once smtpd answers a connection with its 220 greeting."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(512).startswith(b"220")
        except OSError:
            return False


def run(args: list[str], explain: Callable[[], str] = lambda: "") -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=WAIT, check=False)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}\n{done.stdout}{done.stderr}{explain()}"
        )
    return done.stdout


def main_cf(root: Path, lmtp: tuple[str, int]) -> str:
    """The shipped snippet with the test's LMTP port, after the instance's own settings."""
    snippet = SNIPPET.read_text(encoding="utf-8")
    if snippet.count(SNIPPET_LMTP) != 1:
        raise AssertionError(f"{SNIPPET} should route the mail domain to {SNIPPET_LMTP} once")
    snippet = snippet.replace(SNIPPET_LMTP, f"lmtp:inet:{lmtp[0]}:{lmtp[1]}")
    instance = f"""\
# A private instance in {root}: everything under the temporary directory.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
# No syslog in a test: postlogd(8) writes this file (maillog_file, Postfix >= 3.4).
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = postfix.haishin.test
mydomain = haishin.test
# Nothing is delivered locally: the mail domain is a relay domain (see the snippet).
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# Loopback only: no DNS, no reverse lookups of the client.
smtpd_peername_lookup = no
biff = no

"""
    return instance + snippet


@contextlib.contextmanager
def instance(
    *,
    lmtp: tuple[str, int],
    relayhost: tuple[str, int],
    port: int | None = None,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Postfix]:
    """Run a private Postfix: mail for the service's domain to `lmtp`, the rest to `relayhost`.

    `port` is smtpd's port (a free one if None); `settings` are further main.cf overrides.
    """
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="haishin-pf-"))
    # master(8) runs as root, its daemons as `postfix`: they must traverse the directory
    root.chmod(0o755)
    pf = Postfix(root, port or free_port())
    started = False
    try:
        pf.config_dir.mkdir(mode=0o755)
        # queue_directory must exist and belong to root; `postfix check` creates the rest
        # with the owners postfix-files(5) lists (post-install create-missing)
        pf.queue_dir.mkdir(mode=0o755)
        (pf.config_dir / "main.cf").write_text(main_cf(root, lmtp), encoding="utf-8")
        shutil.copyfile(SYSTEM_MASTER_CF, pf.config_dir / "master.cf")
        # Debian's master.cf chroots most daemons into the queue directory, which here is
        # not prepared as a chroot (no /etc, no libraries): run them unchrooted
        pf.postconf("-F", "*/*/chroot = n")
        # smtpd on the chosen loopback port instead of :25 (master(5) service name host:port)
        pf.postconf("-MX", "smtp/inet")
        pf.postconf("-M", f"127.0.0.1:{pf.port}/inet = 127.0.0.1:{pf.port} inet n - n - - smtpd")
        overrides = {
            "relayhost": f"[{relayhost[0]}]:{relayhost[1]}",  # brackets: no MX lookup
            "smtp_tls_security_level": "none",  # the sink speaks plain SMTP
            **(settings or {}),
        }
        pf.postconf("-e", *(f"{k} = {v}" for k, v in overrides.items()))
        pf.postfix("check")
        pf.postfix("start")
        started = True
        wait_until(pf.greets, f"Postfix smtpd on 127.0.0.1:{pf.port}", explain=pf.explain)
        try:
            yield pf
        except BaseException:
            # pytest shows captured output of a failed test: Postfix's side of the story
            print(pf.explain())
            raise
    finally:
        if started:
            # `postfix stop` waits for master(8) to exit, up to 5 s, then kills it
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                pf.postfix("stop")
        shutil.rmtree(root, ignore_errors=True)
