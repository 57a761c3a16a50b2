"""One home for each shared piece (issue 13 item 5): the clock, the address pattern and the
URL scheme are each written in one module, and the rest of the package reads them there.
These read the source, so a copy that comes back fails here with its file and line."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "daemon" / "haishin"


def _lines(pattern: str, *, homes: tuple[str, ...]) -> list[str]:
    found = re.compile(pattern)
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in homes or name.startswith("store/migrations/"):
            continue
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if found.search(line):
                out.append(f"{name}:{n}: {line.strip()}")
    return out


def test_now_is_read_from_the_clock_only() -> None:
    assert _lines(r"datetime\.now\(|date\.today\(|time\.time\(\)", homes=("clock.py",)) == []


def test_the_url_scheme_is_written_in_urls_only() -> None:
    # a page's path, not a registry file's (channels/<slug>.yaml in the field reference)
    site = r"[\"'](?:channels|feeds)/(?![^\"']*\.yaml)|[\"'](?:index|departments|notices)\.html"
    daemon = r"[\"']/?(?:confirm|unsubscribe|post|u)/\{|\}(?:confirm|unsubscribe|post|u)/\{"
    assert _lines(f"{site}|{daemon}", homes=("urls.py",)) == []


def test_addresses_are_written_and_found_by_the_address_contract_only() -> None:
    # `{local}@{domain}` written by hand; a Message-ID is not an address
    written = _lines(
        r"\}@\{(?!service\.mail_domain\}>)", homes=("addresses.py", "mailtext/mailbox.py")
    )
    # a pattern for "an address in running text" (RFC 5322 §3.4 delimiters) of its own
    found = _lines(r"re\.compile\(r\"\[\^\\s<>", homes=("addresses.py",))
    assert written == found == []


def test_log_redaction_is_written_in_redact_only() -> None:
    schemes = r"\"<address>\"|\"\*\*\*@|\"addr:|b\"log\\0\""
    assert _lines(schemes, homes=("redact.py",)) == []
