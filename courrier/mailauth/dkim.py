"""DKIM (RFC 6376) signing and verification by dkimpy, rsa-sha256 and ed25519-sha256 (RFC 8463).

Keys live as PEM files ``data_dir/dkim/<domain>.<selector>.key`` (PKCS#8, written by ``courrier dkim keygen``; any
PEM that ``cryptography`` reads is accepted, so ``opendkim-genkey`` keys work too). dkimpy wants RSA keys as PKCS#1
PEM and ed25519 keys as the base64 32-octet seed: ``SigningKey`` converts once, at load.

Verification asks our resolver through dkimpy's ``dnsfunc`` hook; a DNS failure escapes dkimpy as ``TempDNSError``
(dkimpy would otherwise fold a timeout into "invalid") and becomes ``temperror``. Unsigned mail yields no result at
all — the caller reports ``dkim=none`` (RFC 8601 §2.7.1), never ``fail``.

Hostile input never escapes ``verify`` as an exception (RFC 6376 §6.1: a signature that cannot be checked is a
result, not an error of the receiver). What dkimpy raises, and what it becomes:

- ``MessageFormatError`` (a header line dkimpy cannot parse: ``Subject : x``, a line without a colon, an 8-bit or
  NUL field name, a message starting with a continuation line): each DKIM-Signature field — counted by our own
  tolerant field reader — gets ``permerror``; no signature at all is ``none`` (an empty list);
- ``ValidationError`` (body hash mismatch, signature expired…): ``fail``;
- any other ``DKIMException`` (bad tag list, unknown algorithm, unusable key): ``permerror``;
- ``TempDNSError`` from our resolver (timeout, SERVFAIL, check budget spent): ``temperror``;
- anything else (a dkimpy bug on input nobody expected): ``permerror``, "cannot verify".

Signing our own outbound mail raises ``SignError`` (one line) when dkimpy cannot canonicalize the message; the
queue then sends it unsigned and logs why.

Blocking (RSA, hashing a large body): run in a worker thread.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from courrier.mailauth._dns import LookupLog, Resolver, TempDNSError
from courrier.mailauth.message import fields, from_domains, split_head

ALGORITHMS = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}

# RFC 6376 §5.4.1: the fields that matter to a reader; From twice-listed fields are over-signed by dkimpy's
# "frozen" defaults (a second From cannot be added without breaking the signature).
SIGNED_HEADERS = (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
                  b"references", b"mime-version", b"content-type", b"content-transfer-encoding", b"sender",
                  b"list-unsubscribe", b"list-unsubscribe-post")

_KEY_NAME = re.compile(r"^(?P<domain>[A-Za-z0-9.-]+)\.(?P<selector>[A-Za-z0-9_-]+)\.key$")
_quiet = logging.getLogger("courrier.mailauth.dkimpy")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class KeyError_(Exception):
    """A DKIM key file that cannot be used (unreadable, not a private key, unsupported type)."""


class SignError(Exception):
    """A message dkimpy cannot sign (a header it cannot parse): it goes out unsigned."""


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: str  # "rsa" or "ed25519"
    private: bytes  # what dkimpy's sign() takes (PKCS#1 PEM, or base64 ed25519 seed)
    public_b64: str  # the p= value of the DNS record

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record(self) -> str:
        """The TXT record to publish (RFC 6376 §3.6.1; k=ed25519 per RFC 8463 §4.2)."""
        return f"v=DKIM1; k={self.algorithm}; p={self.public_b64}"


def generate_pem(algorithm: str = "rsa", bits: int = 2048) -> bytes:
    """A new private key as PKCS#8 PEM. RSA keys are 2048 bits by default (RFC 8301 §3.2: at least 1024, 2048 advised)."""
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    elif algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unknown DKIM key type {algorithm!r} (rsa or ed25519)")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())


def signing_key(domain: str, selector: str, pem: bytes) -> SigningKey:
    """Parses a PEM private key into what dkimpy needs; raises KeyError_ with a one-line reason."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise KeyError_(f"not a usable PEM private key: {e}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise KeyError_(f"RSA key of {key.key_size} bits is too small (RFC 8301 §3.2: at least 1024)")
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return SigningKey(domain, selector, "rsa", private, base64.b64encode(public).decode())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return SigningKey(domain, selector, "ed25519", base64.b64encode(seed), base64.b64encode(public).decode())
    raise KeyError_(f"unsupported key type {type(key).__name__} (rsa or ed25519)")


def write_key(dkim_dir: Path, domain: str, selector: str, pem: bytes) -> Path:
    """Writes ``<domain>.<selector>.key`` with mode 0600, atomically (tmp + rename); refuses to overwrite."""
    dkim_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = dkim_dir / f"{domain}.{selector}.key"
    if path.exists():
        raise FileExistsError(str(path))
    tmp = dkim_dir / f".{domain}.{selector}.key.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    return path


def load_keys(dkim_dir: Path, configured: Mapping[str, Path] = {}, default_selector: str = "courrier",
              ) -> tuple[dict[str, list[SigningKey]], list[str]]:
    """Every usable key: ``dkim_dir/<domain>.<selector>.key`` files, then ``[dkim] keys`` (domain → path, with the
    configured selector unless the file is named ``<domain>.<selector>.key``). Returns (keys by domain, problems).

    A domain may have several keys (say rsa and ed25519, as RFC 8463 §5 suggests): mail is signed with each."""
    keys: dict[str, list[SigningKey]] = {}
    problems: list[str] = []
    found: list[tuple[str, str, Path]] = []
    if dkim_dir.is_dir():
        for p in sorted(dkim_dir.iterdir()):
            m = _KEY_NAME.match(p.name)
            if m and p.is_file():
                found.append((m["domain"].lower(), m["selector"], p))
    for domain, p in configured.items():
        m = _KEY_NAME.match(p.name)
        sel = m["selector"] if m and m["domain"].lower() == domain else default_selector
        found.append((domain, sel, p))
    for domain, selector, p in found:
        try:
            key = signing_key(domain, selector, p.read_bytes())
        except OSError as e:
            problems.append(f"{p}: {e.strerror or e}")
        except KeyError_ as e:
            problems.append(f"{p}: {e}")
            continue
        mine = keys.setdefault(domain, [])
        if all(k.selector != selector for k in mine):
            mine.append(key)
    return keys, problems


def header_domain(message: bytes) -> str | None:
    """The domain of the (single) header From address, lowercased; None when there is none or several."""
    domains = from_domains(split_head(message)[0])
    return domains[0] if len(domains) == 1 else None


def sign(message: bytes, key: SigningKey, headers: Iterable[bytes] = SIGNED_HEADERS) -> bytes:
    """The ``DKIM-Signature:`` field (CRLF-terminated) for ``message`` (CRLF or LF line endings) with ``key``.

    relaxed/relaxed canonicalization (RFC 6376 §3.4): robust to the header refolding relays do.
    """
    try:
        present = {name.lower() for name, _ in dkimpy.rfc822_parse(message)[0]}
        include = [h for h in headers if h in present or h == b"from"]
        d = dkimpy.DKIM(message, logger=_quiet, signature_algorithm=ALGORITHMS[key.algorithm])
        return d.sign(key.selector.encode(), key.domain.encode(), key.private,
                      canonicalize=(b"relaxed", b"relaxed"), include_headers=include)
    except Exception as e:  # dkimpy's MessageFormatError, an IndexError on a leading continuation line…
        raise SignError(f"cannot DKIM-sign: {type(e).__name__}: {e}") from None


class Signer:
    """The outbound step: signs mail whose header From is one of our domains with that domain's key(s)."""

    def __init__(self, keys: Mapping[str, SigningKey | list[SigningKey]]) -> None:
        self.keys = {d: k if isinstance(k, list) else [k] for d, k in keys.items()}

    def header(self, message: bytes) -> bytes:
        """The DKIM-Signature field(s) to prepend (line endings as the message's), or b"" when no key applies.

        This is the outbound queue's ``signer`` hook (``App.outbound_signer``).
        """
        domain = header_domain(message)
        keys = self.keys.get(domain, []) if domain else []
        if not keys:
            return b""
        sig = b"".join(sign(message, k) for k in keys)
        if b"\r\n" not in message[:4096]:
            sig = sig.replace(b"\r\n", b"\n")
        return sig

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature prepended when a key exists for its From domain, else unchanged."""
        return self.header(message) + message


@dataclass(frozen=True)
class DKIMResult:
    result: str  # pass, fail, neutral, temperror, permerror (RFC 8601 §2.7.1)
    domain: str  # d=
    selector: str  # s=
    algorithm: str  # a=
    b: str  # the first characters of b= (RFC 6008 header.b, to tell signatures apart)
    reason: str
    identity: str = ""  # i=


def _tag(sig: Mapping[bytes, bytes], name: bytes) -> str:
    return sig.get(name, b"").decode("ascii", "replace")


def _signature_tags(value: bytes) -> dict[bytes, bytes]:
    """The tag=value pairs of a DKIM-Signature value (RFC 6376 §3.2), read leniently for the report only."""
    tags: dict[bytes, bytes] = {}
    for part in value.split(b";"):
        k, eq, v = part.partition(b"=")
        if eq:
            tags.setdefault(k.strip().lower(), v.strip())
    return tags


def _unparsable(message: bytes, why: str, max_signatures: int) -> list[DKIMResult]:
    """Results for a message dkimpy cannot parse: ``permerror`` per DKIM-Signature field, none when unsigned."""
    out = []
    for name, value in fields(split_head(message)[0]):
        if name == "dkim-signature" and len(out) < max_signatures:
            sig = _signature_tags(value)
            out.append(DKIMResult("permerror", _tag(sig, b"d").lower(), _tag(sig, b"s"), _tag(sig, b"a"),
                                  re.sub(r"\s+", "", _tag(sig, b"b"))[:8], why, _tag(sig, b"i")))
    return out


def verify(message: bytes, resolver: Resolver, log: LookupLog | None = None, max_signatures: int = 8,
           ) -> list[DKIMResult]:
    """One result per DKIM-Signature (at most ``max_signatures``, a bound against hostile mail); [] when unsigned.

    Never raises: see the module docstring for how each failure maps to a result."""
    try:
        d = dkimpy.DKIM(message, logger=_quiet, timeout=resolver.timeout)
    except Exception as e:  # MessageFormatError, IndexError…: the header section is not what dkimpy can read
        reason = f"message header cannot be parsed: {e}" if isinstance(e, dkimpy.DKIMException) else \
            f"message header cannot be parsed: {type(e).__name__}"
        return _unparsable(message, reason, max_signatures)
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    keys_seen: dict[str, bytes | None] = {}

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        qname = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = resolver.txt(qname.rstrip("."), timeout, log)  # TempDNSError passes through dkimpy
        keys_seen[qname] = records[0] if records else None
        return records[0] if records else None

    out: list[DKIMResult] = []
    for idx in range(min(count, max_signatures)):
        keys_seen.clear()
        try:
            d = dkimpy.DKIM(message, logger=_quiet, timeout=resolver.timeout)
            ok = d.verify(idx, dnsfunc=dnsfunc)
            reason = "good signature" if ok else "signature did not verify"
            result = "pass" if ok else "fail"
            if not ok and keys_seen and all(v is None for v in keys_seen.values()):
                result, reason = "permerror", "no key published for the selector"
            elif not ok and keys_seen:
                try:
                    dkimpy.evaluate_pk(b"", next(iter(keys_seen.values())))
                except dkimpy.DKIMException as e:
                    result, reason = "permerror", f"unusable key: {e}"
        except TempDNSError as e:
            result, reason = "temperror", str(e)
        except dkimpy.ValidationError as e:
            result, reason = "fail", str(e)  # e.g. body hash mismatch: the body changed after signing
        except dkimpy.DKIMException as e:
            result, reason = "permerror", str(e)  # malformed signature field, unknown algorithm…
        except Exception as e:  # dkimpy on hostile input must never take a delivery down
            result, reason = "permerror", f"cannot verify: {type(e).__name__}: {e}"
        sig = getattr(d, "signature_fields", None) or {}
        out.append(DKIMResult(result, _tag(sig, b"d").lower(), _tag(sig, b"s"), _tag(sig, b"a"),
                              re.sub(r"\s+", "", _tag(sig, b"b"))[:8], reason, _tag(sig, b"i")))
    return out
