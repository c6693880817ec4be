"""MTA-STS (RFC 8461): the ``_mta-sts`` TXT record, the policy file, its fetch over HTTPS, and MX matching.

Pure parsing and matching plus one bounded HTTPS GET; caching and applying a policy are
:mod:`courrier.delivery.tlspolicy`'s job.

- **TXT record** (RFC 8461 §3.1): ``v=STSv1; id=…``. Records not starting with ``v=STSv1`` are ignored; zero or
  several STS records, or one that does not parse, mean "no policy".
- **Policy file** (RFC 8461 §3.2), parsed strictly: ``key: value`` lines ended by LF or CRLF; ``version: STSv1``,
  ``mode`` (``enforce``/``testing``/``none``) and ``max_age`` (0…31557600 seconds) required, ``mx`` patterns required
  unless the mode is ``none``; names and values case-sensitive (``%s`` in the RFC's ABNF); for a repeated field other
  than ``mx`` the first one counts; unknown fields are ignored if well-formed. Trailing blank lines are tolerated.
- **Fetch** (RFC 8461 §3.3): ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt``, the name resolved through our own
  resolver, the certificate validated for that name (system CAs plus ``[delivery] tls_ca_file``), HTTP 200 only — a
  redirect is a failure, never followed — media type ``text/plain``, at most 64 KiB, within a time limit.
- **MX matching** (RFC 8461 §4.1): exact (case-insensitive) or ``*.`` standing for exactly one leftmost label.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from courrier.dns import DNSError, Resolver

MAX_POLICY = 64 * 1024  # RFC 8461 §3.3 suggests 64 KiB
MAX_HEAD = 16 * 1024  # status line and header fields of the policy response
MAX_AGE = 31557600  # RFC 8461 §3.2: max_age at most one year
POLICY_PATH = "/.well-known/mta-sts.txt"
MODES = ("enforce", "testing", "none")

_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_TXT_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_MX = re.compile(rf"(\*\.)?{_LABEL}(?:\.{_LABEL})*")
_DIGITS = re.compile(r"[0-9]{1,10}")


class PolicyError(Exception):
    """No usable policy: the reason, in words for the log."""


@dataclass(frozen=True)
class Policy:
    mode: str
    mx: tuple[str, ...]
    max_age: int

    def matches(self, host: str) -> bool:
        return any(mx_matches(p, host) for p in self.mx)


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: ``mail.example.com`` matches itself; ``*.example.com`` matches ``mx1.example.com`` but neither
    ``example.com`` nor ``a.mx1.example.com``."""
    p = pattern.rstrip(".").lower()
    h = host.rstrip(".").lower()
    if p.startswith("*."):
        first, dot, rest = h.partition(".")
        return bool(first) and bool(dot) and rest == p[2:]
    return p == h


def record_id(txts: Iterable[str]) -> str | None:
    """The policy id of the one STS TXT record (RFC 8461 §3.1), or None when there is not exactly one valid one."""
    sts = [t for t in txts if re.match(r"v=STSv1[ \t]*;", t)]
    if len(sts) != 1:
        return None
    fields = [f.strip(" \t") for f in sts[0].split(";")]
    if fields and fields[-1] == "":
        fields.pop()  # a trailing separator is allowed
    ident = None
    for f in fields[1:]:
        name, eq, value = f.partition("=")
        if not eq or not _EXT_NAME.fullmatch(name):
            return None
        if name == "id":
            if not _ID.fullmatch(value):
                return None
            ident = ident or value
        elif not _TXT_EXT_VALUE.fullmatch(value):
            return None
    return ident


def parse_policy(text: str) -> Policy:
    """The policy file's fields (RFC 8461 §3.2); :class:`PolicyError` says what is wrong."""
    lines = text.split("\n")
    while lines and lines[-1].strip(" \t\r") == "":
        lines.pop()
    if not lines:
        raise PolicyError("empty policy")
    seen: dict[str, str] = {}
    mx: list[str] = []
    for n, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        name, colon, value = line.partition(":")
        if not colon or not _EXT_NAME.fullmatch(name):
            raise PolicyError(f"line {n}: not a 'key: value' field")
        value = value.strip(" \t")
        if not value or any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
            raise PolicyError(f"line {n}: bad value for {name}")
        if name == "mx":
            if not _MX.fullmatch(value):
                raise PolicyError(f"line {n}: bad mx pattern {value!r}")
            mx.append(value.lower())
        elif name not in seen:  # the first of a repeated field counts
            seen[name] = value
    if seen.get("version") != "STSv1":
        raise PolicyError("version must be STSv1" if "version" in seen else "no version field")
    mode = seen.get("mode")
    if mode not in MODES:
        raise PolicyError(f"mode must be enforce, testing or none, not {mode!r}" if mode else "no mode field")
    age = seen.get("max_age")
    if age is None or not _DIGITS.fullmatch(age) or int(age) > MAX_AGE:
        raise PolicyError(f"max_age must be 0 to {MAX_AGE} seconds" if age else "no max_age field")
    if not mx and mode != "none":
        raise PolicyError(f"mode {mode} needs at least one mx pattern")
    return Policy(mode, tuple(mx), int(age))


async def fetch_policy(domain: str, *, resolver: Resolver, context: ssl.SSLContext, port: int = 443,
                       timeout: float = 20.0) -> tuple[str, Policy]:
    """GET the policy of ``domain`` (RFC 8461 §3.3): (text, parsed policy), or :class:`PolicyError`."""
    host = f"mta-sts.{domain}"
    try:
        addresses = await resolver.addresses(host)
    except DNSError as e:
        raise PolicyError(f"{host}: {e}") from None
    if not addresses:
        raise PolicyError(f"{host} has no address")
    errors = []
    for ip in addresses[:4]:
        try:
            text = await asyncio.wait_for(_get(ip, port, host, context), timeout)
        except TimeoutError:
            errors.append(f"{ip}: no answer within {timeout:g} s")
            continue
        except ssl.SSLCertVerificationError as e:
            errors.append(f"{ip}: certificate not valid for {host}: {e.verify_message or e.reason}")
            continue
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            errors.append(f"{ip}: {getattr(e, 'strerror', None) or e or type(e).__name__}")
            continue
        return text, parse_policy(text)
    raise PolicyError(f"https://{host}{'' if port == 443 else f':{port}'}{POLICY_PATH}: " + "; ".join(errors))


async def _get(ip: str, port: int, host: str, context: ssl.SSLContext) -> str:
    reader, writer = await asyncio.open_connection(ip, port, ssl=context, server_hostname=host, limit=MAX_HEAD)
    try:
        authority = host if port == 443 else f"{host}:{port}"
        writer.write(f"GET {POLICY_PATH} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: courrier\r\n"
                     "Accept: text/plain\r\nConnection: close\r\n\r\n".encode("ascii"))
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *fields = head[:-4].split("\r\n")
        m = re.fullmatch(r"HTTP/1\.[01] (\d{3})(?: .*)?", status_line)
        if not m:
            raise PolicyError(f"not an HTTP response: {status_line[:80]!r}")
        status = int(m.group(1))
        headers: dict[str, str] = {}
        for f in fields:
            name, _, value = f.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        if 300 <= status < 400:
            raise PolicyError(f"HTTP {status} redirect to {headers.get('location', '?')[:200]} not followed "
                              "(RFC 8461 §3.3)")
        if status != 200:
            raise PolicyError(f"HTTP {status}")
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "text/plain":
            raise PolicyError(f"media type {ctype or 'missing'}, not text/plain (RFC 8461 §3.2)")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _chunked(reader)
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit() or int(length) > MAX_POLICY:
                raise PolicyError(f"policy larger than {MAX_POLICY} octets (Content-Length {length[:20]})")
            body = await reader.readexactly(int(length))
        else:
            body = await _until_eof(reader)
    finally:
        writer.close()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("policy is not UTF-8") from None


async def _until_eof(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while chunk := await reader.read(MAX_POLICY + 1 - len(body)):
        body += chunk
        if len(body) > MAX_POLICY:
            raise PolicyError(f"policy larger than {MAX_POLICY} octets")
    return body


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    """HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), bounded to MAX_POLICY octets of content."""
    body = b""
    while True:
        size_line = (await reader.readuntil(b"\r\n"))[:-2].split(b";")[0].strip()
        if not size_line or len(size_line) > 8 or not re.fullmatch(rb"[0-9A-Fa-f]+", size_line):
            raise PolicyError("bad chunk size")
        size = int(size_line, 16)
        if size == 0:
            for _ in range(100):  # trailer fields (each bounded by the reader's limit), then the empty line
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    return body
            raise PolicyError("too many trailer fields")
        if len(body) + size > MAX_POLICY:
            raise PolicyError(f"policy larger than {MAX_POLICY} octets")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise PolicyError("bad chunk end")
