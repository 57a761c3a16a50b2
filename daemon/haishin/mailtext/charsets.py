"""Decode Japanese mail as phones actually send it.

Python's iso2022_jp codecs refuse the CP50220/CP50221 extensions that Japanese phones and
Windows mailers put in "ISO-2022-JP" mail (NEC row 13: ①, ㈱, ㍻; IBM extensions), so the
JIS X 0208 runs are decoded here through their Shift_JIS twins with cp932, which knows
them. Nothing here raises on bad input: undecodable bytes become U+FFFD.

A charset name is a sender's text: it reaches a codec only if it is a well-formed MIME
charset name (RFC 2978 §2.3) whose codec is in `TEXT_CODECS`. That keeps out names that
make Python raise instead of replacing (`idna`, `punycode`: no "replace" error handler;
"utf-8\\0": embedded NUL), transforms that are not charsets (`unicode_escape`, `rot13`,
`base64`), and UTF-7 (RFC 2152 §1 itself warns against it in MIME bodies; it can spell
`<` and `@` in plain letters, so it only hides things). Any other name is read as if no
charset had been given: UTF-8, else Shift_JIS (what Japanese mail without a label is).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from functools import lru_cache

_ESC_SETS = {
    b"\x1b(B": "ascii",
    b"\x1b(J": "ascii",  # JIS X 0201 Roman: close enough for commands and tokens
    b"\x1b(I": "kana",  # JIS X 0201 katakana (CP50222)
    b"\x1b$@": "jis",
    b"\x1b$B": "jis",
    b"\x1b&@\x1b$B": "jis",
    b"\x1b$(D": "jisx0212",
    b"\x1b$(Q": "jis",  # JIS X 0213 plane 1: its 0208 part decodes the same
    b"\x1b$(O": "jis",
}
_ESC_RE = re.compile(rb"\x1b(?:\(B|\(J|\(I|\$@|\$B|&@\x1b\$B|\$\(D|\$\(Q|\$\(O)")

ISO2022JP_NAMES = {
    "iso-2022-jp",
    "iso2022jp",
    "iso-2022-jp-1",
    "iso-2022-jp-2",
    "csiso2022jp",
    "cp50220",
    "cp50221",
    "cp50222",
    "iso-2022-jp-3",
    "iso-2022-jp-2004",
}
SJIS_NAMES = {
    "shift_jis",
    "shift-jis",
    "sjis",
    "x-sjis",
    "cp932",
    "ms932",
    "windows-31j",
    "ms_kanji",
    "csshiftjis",
    "shift_jisx0213",
    "shift_jis_2004",
}
EUC_NAMES = {"euc-jp", "eucjp", "x-euc-jp", "cseucpkdfmtjapanese"}

TEXT_CODECS = frozenset(
    {
        *("utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"),
        *("ascii", "iso8859-1", *(f"iso8859-{n}" for n in range(2, 17) if n != 12)),
        *(f"cp{n}" for n in (874, 1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258)),
        *("koi8-r", "koi8-u", "mac-roman", "tis-620", "cp437", "cp850", "cp866"),
        *("big5", "big5hkscs", "gb2312", "gbk", "gb18030", "hz"),
        *("euc_kr", "cp949", "iso2022_kr", "johab"),
        *("shift_jis", "cp932", "euc_jp", "euc_jis_2004", "shift_jis_2004", "iso2022_jp"),
    }
)
"""Python codec names (`codecs.lookup(name).name`) a declared charset may select."""

MAX_CHARSET_NAME = 40
"""RFC 2978 §2.3: "mime-charset" names are at most 40 characters."""

_CHARSET_NAME_RE = re.compile(r"[A-Za-z0-9!#$%&'+^_`{}~-]{1," + str(MAX_CHARSET_NAME) + "}")
"""RFC 2978 §2.3 mime-charset-chars; no NUL, control, space, quote or non-ASCII."""


@lru_cache(maxsize=256)
def text_codec(charset: str) -> str | None:
    """The codec for a declared charset name, or None if it is not one we decode with."""
    if not _CHARSET_NAME_RE.fullmatch(charset):
        return None
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return None
    return name if name in TEXT_CODECS else None


def _jis_pair_to_sjis(j1: int, j2: int) -> bytes:
    if j1 & 1:
        s2 = j2 + 0x1F
        if s2 >= 0x7F:
            s2 += 1
    else:
        s2 = j2 + 0x7E
    s1 = ((j1 - 0x21) >> 1) + 0x81
    if s1 > 0x9F:
        s1 += 0x40
    return bytes((s1, s2))


def decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP with the CP50220/50221 extensions, to str."""
    out: list[str] = []
    mode = "ascii"
    pos = 0
    shifted = False  # SO/SI half-width kana (CP50221)
    for m in [*_ESC_RE.finditer(data), None]:
        end = m.start() if m else len(data)
        chunk = data[pos:end]
        if mode == "jis":
            sjis = bytearray()
            pairs = chunk.replace(b"\r", b"").replace(b"\n", b"")
            for i in range(0, len(pairs) - 1, 2):
                j1, j2 = pairs[i], pairs[i + 1]
                if 0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E:
                    sjis += _jis_pair_to_sjis(j1, j2)
                else:
                    sjis += b"?"
            out.append(sjis.decode("cp932", errors="replace"))
            if b"\n" in chunk:
                out.append("\n")  # a line break inside a 2-byte run: broken, but keep lines
        elif mode == "kana":
            out.append(
                bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in chunk).decode(
                    "cp932", errors="replace"
                )
            )
        elif mode == "jisx0212":
            out.append((b"\x1b$(D" + chunk + b"\x1b(B").decode("iso2022_jp_2", errors="replace"))
        else:
            text = bytearray()
            for b in chunk:
                if b == 0x0E:
                    shifted = True
                elif b == 0x0F:
                    shifted = False
                elif shifted and 0x21 <= b <= 0x5F:
                    text += bytes((b | 0x80,))
                else:
                    text.append(b)
            out.append(bytes(text).decode("cp932", errors="replace"))
        if m:
            mode = _ESC_SETS.get(m.group(0), "ascii")
            pos = m.end()
    return "".join(out)


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a body or header in the declared charset; never raises. NUL, which is
    not mail text (RFC 5322 §2.3, RFC 2045 §2.8) and which PostgreSQL text cannot hold,
    becomes U+FFFD like any other byte that cannot be read."""
    return _decode(data, charset).replace("\x00", "\ufffd")


def _decode(data: bytes, charset: str | None) -> str:
    name = (charset or "").strip().strip('"').lower()
    if name in ISO2022JP_NAMES or (not name and b"\x1b$" in data):
        return decode_iso2022jp(data)
    if name in SJIS_NAMES:
        return data.decode("cp932", errors="replace")
    if name in EUC_NAMES:
        return data.decode("euc_jis_2004", errors="replace")
    if name in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp932", errors="replace")
    codec = text_codec(name)
    if codec is None:  # unknown, malformed or unsafe name: as if unlabelled (see above)
        return _decode(data, None)
    return data.decode(codec, errors="replace")


_EW_RE = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_EW_GAP_RE = re.compile(r"(\?=)\s+(=\?)")


def decode_header(raw: str) -> str:
    """RFC 2047 encoded words, decoded with the charsets above; 8-bit headers too."""
    raw = _EW_GAP_RE.sub(r"\1\2", raw)  # §6.2: white space between encoded words is dropped

    def one(m: re.Match[str]) -> str:
        charset = m.group(1).split("*")[0]  # RFC 2231 §5 language suffix
        payload = m.group(3)
        try:
            if m.group(2) in "Bb":
                data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
            else:
                data = quopri.decodestring(payload.replace("_", " ").encode("ascii"), header=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return m.group(0)
        return decode_text(data, charset)

    text = _EW_RE.sub(one, raw)
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in text):
        # raw 8-bit bytes that the parser kept as surrogates: guess UTF-8, then Shift_JIS
        data = text.encode("utf-8", errors="surrogateescape")
        text = decode_text(data, None)
    return " ".join(text.split()) if "\n" in text else text
