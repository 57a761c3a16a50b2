"""A real Dovecot for the IMAP tests: its own config, ports from the OS, started and stopped
by the test as an unprivileged process (never the system service).

Run as root (as CI is), the server drops to the `dovecot` system user that the Debian
package creates; otherwise it runs as the current user. Either way all its processes and
files belong to that one user, which is how Dovecot runs without privileges.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import trustme
from imapclient import IMAPClient  # type: ignore[import-untyped]

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "ingest@example.jp"  # an address, so that tests can check logs never show it
PASSWORD = "imap-test-secret"


def wait_for(
    condition: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll until `condition()` is true; fail after `timeout` seconds. No bare sleeps."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    """One Dovecot instance: plain IMAP (with STARTTLS) and IMAPS on loopback."""

    def __init__(self, extra_config: str = "") -> None:
        self.extra_config = extra_config
        root = os.geteuid() == 0
        entry = pwd.getpwnam("dovecot") if root else pwd.getpwuid(os.getuid())
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self.user, self.group = entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name
        # Not pytest's tmp_path: its parent is private to root, and Dovecot runs as `user`.
        self.root = Path(tempfile.mkdtemp(prefix="haishin-dovecot-"))
        self.home = self.root / "mail"
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.ca = trustme.CA()
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        r = self.root
        for d in ("run", "state", "mail"):
            (r / d).mkdir()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_and_cert_chain_pem.write_to_path(str(r / "server.pem"))
        (r / "passwd").write_text(
            f"{USER}:{{PLAIN}}{PASSWORD}:{self.uid}:{self.gid}::{self.home}\n"
        )
        (r / "dovecot.conf").write_text(
            f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {r}/run
state_dir = {r}/state
instance_name = haishin-test-{self.imap_port}
log_path = {r}/dovecot.log
ssl = yes
ssl_cert = <{r}/server.pem
ssl_key = <{r}/server.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {self.user}
default_internal_group = {self.group}
default_login_user = {self.user}
first_valid_uid = {self.uid}
first_valid_gid = {self.gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {r}/passwd
}}
userdb {{
  driver = passwd-file
  args = {r}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
{self.extra_config}
"""
        )
        self._chown(r)

    def _chown(self, top: Path) -> None:
        if os.geteuid() != 0:
            return
        os.chown(top, self.uid, self.gid)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), self.uid, self.gid)

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        assert not self.running
        as_user = {} if os.geteuid() != 0 else {"user": self.uid, "group": self.gid}
        self._proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own process group: a stop ends every Dovecot process, the imap sessions
            # too, which the master alone leaves running (unprivileged, it cannot kill them).
            start_new_session=True,
            extra_groups=[] if as_user else None,
            **as_user,  # type: ignore[arg-type]
        )

        def accepting() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise AssertionError(f"dovecot exited: {err}\n{self.log}")
            try:
                with IMAPClient("127.0.0.1", self.imap_port, ssl=False, timeout=1) as c:
                    c.noop()
            except OSError:
                return False
            return True

        wait_for(accepting, what="Dovecot to accept connections")

    def stop(self) -> None:
        """Stop the server and every session process, as a machine restart would."""
        if self._proc is None:
            return
        group = self._proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

        def group_gone() -> bool:
            try:
                os.killpg(group, signal.SIGKILL)  # stragglers: imap processes ignore nothing
            except ProcessLookupError:
                return True
            return False

        wait_for(group_gone, what="every Dovecot process to end")

        def port_closed() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.imap_port)) != 0

        wait_for(port_closed, what="Dovecot's port to close")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the test's side of the mailbox ----------------------------------------------------

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's test CA."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def url(self, mailbox: str, *, tls: bool = False) -> str:
        user = USER.replace("@", "%40")
        if tls:
            return f"imaps://{user}@127.0.0.1:{self.imaps_port}/{mailbox}"
        return f"imap://{user}@127.0.0.1:{self.imap_port}/{mailbox}"

    @contextlib.contextmanager
    def admin(self) -> Iterator[IMAPClient]:
        """A logged-in client for the test: create, delete, APPEND and look."""
        with IMAPClient("127.0.0.1", self.imap_port, ssl=False, timeout=10) as c:
            c.login(USER, PASSWORD)
            yield c

    def append(self, mailbox: str, *messages: bytes) -> None:
        with self.admin() as c:
            for raw in messages:
                c.append(mailbox, raw)

    def uids(self, mailbox: str) -> list[int]:
        """UIDs of the messages in the mailbox not flagged \\Deleted."""
        with self.admin() as c:
            c.select_folder(mailbox, readonly=True)
            return sorted(c.search(["NOT", "DELETED"]))

    def deliver_maildir(self, mailbox: str, raw: bytes) -> None:
        """Deliver as an MTA's local delivery agent would, without the IMAP server running:
        write into tmp/, then rename into new/ (the maildir protocol)."""
        folder = self.home / "Maildir" / ("" if mailbox == "INBOX" else f".{mailbox}")
        name = f"{time.time_ns()}.P{os.getpid()}.haishin-test"
        tmp, new = folder / "tmp" / name, folder / "new" / name
        tmp.write_bytes(raw.replace(b"\r\n", b"\n"))  # maildir files use LF
        if os.geteuid() == 0:
            os.chown(tmp, self.uid, self.gid)
        tmp.rename(new)
