"""DKIM signatures made per recipient on a body hashed once per post (RFC 6376, RFC 8463).

A post's body is the same for every recipient, so its hash (bh=) is computed once; only
the header hash and its signature are per recipient, because To and List-Unsubscribe
differ and RFC 8058 §4 requires List-Unsubscribe and List-Unsubscribe-Post to be signed.
dkimpy does the canonicalization and header selection and verifies in the tests; the
signature itself is made with `cryptography` (OpenSSL), about twenty times faster than
dkimpy's pure-Python RSA, which matters at a hundred thousand recipients.
"""

from __future__ import annotations

import base64
import hashlib
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


def sign(
    key: DkimKey, headers: list[tuple[bytes, bytes]], bh: bytes, now: int | None = None
) -> bytes:
    """The `DKIM-Signature:` header line (CRLF-terminated) for these headers.

    `headers` are (name, value) as they will be sent, value including its leading space
    and folding but not the final CRLF.
    """
    present = {name.lower() for name, _ in headers}
    include = [h for h in SIGNED_HEADERS if h in present]
    stamp = str(now if now is not None else epoch_seconds()).encode()
    # Folded here, before hashing, the way it is sent: the verifier hashes the header as
    # received, and relaxed canonicalization would turn a later fold into a space.
    prefix = (
        b"v=1; a="
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
    hasher = dkimpy.HashThrough(hashlib.sha256(), False)
    dkimpy.hash_headers(
        hasher,
        _CANON,
        _CANON.canonicalize_headers(headers),
        include,
        (b"DKIM-Signature", b" " + prefix),
        {},
    )
    digest = hasher.digest()
    if isinstance(key.key, ed25519.Ed25519PrivateKey):
        signature = key.key.sign(digest)  # RFC 8463 §3: PureEdDSA over the SHA-256 hash
    else:
        signature = key.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    b64 = base64.b64encode(signature)
    # b= may be folded freely: verifiers remove its value, whitespace included (§3.5)
    folded = b"\r\n  ".join(b64[i : i + 72] for i in range(0, len(b64), 72))
    return b"DKIM-Signature: " + prefix + folded + b"\r\n"
