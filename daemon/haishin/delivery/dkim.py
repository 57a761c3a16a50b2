"""DKIM signatures made per recipient on a body hashed once per post (RFC 6376, RFC 8463).

A post's body is the same for every recipient, so its hash (bh=) is computed once, and so
is the hash of the headers every recipient shares (`Plan`); only To, List-Unsubscribe and
the signature are per recipient, because those headers differ and RFC 8058 §4 requires
List-Unsubscribe and List-Unsubscribe-Post to be signed.
dkimpy does the canonicalization and header selection and verifies in the tests; the
signature itself is made with `cryptography` (OpenSSL), about twenty times faster than
dkimpy's pure-Python RSA, which matters at a hundred thousand recipients.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dkim as dkimpy
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..clock import epoch_seconds

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-post",
    b"list-help",
    b"list-owner",
    b"list-archive",
    b"archived-at",
)
"""What h= covers: the identity headers, the MIME headers and every List-* header."""

_CANON = dkimpy.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")

Key = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
Header = tuple[bytes, bytes]
"""(name, value) as sent: the value with its leading space and folding, no final CRLF."""


@dataclass(frozen=True)
class DkimKey:
    domain: bytes
    selector: bytes
    key: Key = field(repr=False)

    @property
    def algorithm(self) -> bytes:
        return (
            b"ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) else b"rsa-sha256"
        )

    @classmethod
    def from_file(cls, domain: str, selector: str, path: Path) -> DkimKey:
        """A PEM private key (RSA of at least 2048 bits, or Ed25519) read from a file."""
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise ValueError(f"{path}: RSA keys for DKIM must have at least 2048 bits")
        elif not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{path}: DKIM keys are RSA or Ed25519")
        return cls(domain.encode(), selector.encode(), key)

    def public_txt(self) -> bytes:
        """The DNS TXT record to publish at <selector>._domainkey.<domain>."""
        pub = self.key.public_key()
        if isinstance(pub, ed25519.Ed25519PublicKey):
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
        der = pub.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def body_hash(body: bytes) -> bytes:
    """bh= of a body (CRLF line ends), relaxed canonicalization, SHA-256."""
    return base64.b64encode(hashlib.sha256(_CANON.canonicalize_body(body)).digest())


@dataclass(frozen=True)
class Plan:
    """What a post's signatures share, worked out once (per post, or per fan-out batch).

    The signer chooses the order of h= (RFC 6376 §5.4.2: the verifier hashes the headers
    in the order h= names them), so h= lists the headers every recipient shares first and
    the per-recipient ones (To, List-Unsubscribe) last. Their canonical form is then one
    prefix of every recipient's header hash: hashed once into a SHA-256 state that each
    signature copies, adding only its own headers and the DKIM-Signature header, whose
    b= is empty while hashing (§3.7) and so the same for every recipient. Plain bytes,
    so a worker process (delivery/signing.py) can be handed it.
    """

    base: bytes
    """The shared headers, canonicalized in h= order: the prefix of every header hash."""
    prefixes: tuple[bytes, ...]
    """Per key: the DKIM-Signature header as sent, up to and including `b=`."""
    tails: tuple[bytes, ...]
    """Per key: the DKIM-Signature header canonicalized with b= empty, hashed last."""

    def signatures(self, keys: Sequence[Key], personal: Sequence[Header]) -> bytes:
        """The DKIM-Signature lines (CRLF-terminated) over the shared headers and these
        per-recipient ones (in the order of the plan's `personal_names`, as h= names
        them), for `keys` in the order the plan was made with."""
        return self.many(keys, [personal])[0]

    def many(self, keys: Sequence[Key], personals: Iterable[Sequence[Header]]) -> list[bytes]:
        """`signatures` for many recipients: the shared prefix hashed once for them all."""
        base = hashlib.sha256(self.base)
        out = []
        for personal in personals:
            canonical = b"".join(n + b":" + v for n, v in _CANON.canonicalize_headers(personal))
            lines = []
            for key, prefix, tail in zip(keys, self.prefixes, self.tails, strict=True):
                hasher = base.copy()
                hasher.update(canonical)
                hasher.update(tail)
                lines.append(prefix + _fold(_signature(key, hasher.digest())) + b"\r\n")
            out.append(b"".join(lines))
        return out


def plan(
    keys: Sequence[DkimKey],
    shared: Sequence[Header],
    personal_names: Sequence[bytes],
    bh: bytes,
    now: int | None = None,
) -> Plan:
    """The signing plan of a post: `shared` are the headers every recipient gets, (name,
    value) as sent, value with its leading space and folding but not the final CRLF;
    `personal_names` the headers each recipient has its own of (each given once)."""
    personal = [n.lower() for n in personal_names]
    present = {name.lower() for name, _ in shared}
    common = [h for h in SIGNED_HEADERS if h in present and h not in personal]
    include = common + personal
    chosen = dkimpy.select_headers(_CANON.canonicalize_headers(list(shared)), common)
    base = b"".join(n + b":" + v for n, v in chosen)
    stamp = str(now if now is not None else epoch_seconds()).encode()
    prefixes, tails = [], []
    for key in keys:
        # Folded here, before hashing, the way it is sent: the verifier hashes the header
        # as received, and relaxed canonicalization would turn a later fold into a space.
        prefix = (
            b"DKIM-Signature: v=1; a="
            + key.algorithm
            + b"; c=relaxed/relaxed; d="
            + key.domain
            + b"; s="
            + key.selector
            + b"; t="
            + stamp
            + b";\r\n h="
            + b":".join(include)
            + b";\r\n bh="
            + bh
            + b";\r\n b="
        )
        name, _, value = prefix.partition(b":")
        [(cname, cvalue)] = _CANON.canonicalize_headers([(name, value)])
        # RFC 6376 §3.7: the signature header is hashed last, without its final CRLF
        prefixes.append(prefix)
        tails.append(cname + b":" + cvalue.rstrip())
    return Plan(base, tuple(prefixes), tuple(tails))


def _signature(key: Key, digest: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(digest)  # RFC 8463 §3: PureEdDSA over the SHA-256 hash
    return key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def _fold(signature: bytes) -> bytes:
    b64 = base64.b64encode(signature)
    # b= may be folded freely: verifiers remove its value, whitespace included (§3.5)
    return b"\r\n  ".join(b64[i : i + 72] for i in range(0, len(b64), 72))
