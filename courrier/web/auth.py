"""HTTP access control for the inspector: htpasswd-style basic auth and, in server mode, admin accounts only.

Who may see what:

- ``/livez`` and ``/readyz`` are always open (load balancers and orchestrators probe them without credentials).
- Capture mode without ``[http] auth_file``: open — the listener is loopback-only unless ``allow_insecure_remote``
  (checked at start, see ``server.check_bind``).
- ``[http] auth_file``: every other path needs HTTP basic auth (RFC 7617) matching a line of the file.
- Server mode: the captured/stored mail belongs to real people, so every other path needs basic auth by an *admin*
  account of ``courrier.db`` (``courrier user add … --admin``), or by a user of the auth file when one is set.

The file format is Apache's htpasswd (``user:hash`` per line, ``#`` comments) with the hashes people actually make:
``$apr1$`` and ``$1$`` (``htpasswd -m``, ``openssl passwd -apr1``/``-1``), ``{SHA}`` (``htpasswd -s``), and
``$argon2id$`` (argon2-cffi). Plain-text passwords are refused: a file that can be read must not give access.
Verifying is deliberately slow for argon2, so it runs in a thread and successes are remembered for a minute.

Failed logins go through the limiter every protocol shares (courrier/auth): a client that spent its budget gets 429
for the rest of the window, a correct password (or remembered credentials) included; other clients, and accounts
that are not being guessed, are not affected. Behind a reverse proxy the client is found with ``[http]
trusted_proxies`` and X-Forwarded-For (courrier/auth/proxies.py), so one user's failures never lock out the others
who share the proxy's address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import argon2

from courrier import log
from courrier.auth import AuthGate, Limited, TrustedProxies
from courrier.config import LimitsConfig

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CACHE_SECONDS = 60.0


class AuthFileError(Exception):
    """The auth file cannot be used (unreadable, bad line, unsupported hash): one line, with the line number."""


def _to64(v: int, n: int) -> str:
    out = ""
    for _ in range(n):
        out += _ITOA64[v & 0x3F]
        v >>= 6
    return out


def md5_crypt(password: bytes, salt: bytes, magic: bytes = b"$apr1$") -> str:
    """Poul-Henning Kamp's MD5-crypt (``$1$``), and Apache's variant ``$apr1$`` that differs only in the magic."""
    salt = salt[:8]
    ctx = password + magic + salt
    final = hashlib.md5(password + salt + password).digest()
    for pl in range(len(password), 0, -16):
        ctx += final[: min(16, pl)]
    i = len(password)
    while i:
        ctx += b"\0" if i & 1 else password[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for i in range(1000):
        c = password if i & 1 else final
        if i % 3:
            c += salt
        if i % 7:
            c += password
        c += final if i & 1 else password
        final = hashlib.md5(c).digest()
    out = ""
    for a, b, c2 in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        out += _to64(final[a] << 16 | final[b] << 8 | final[c2], 4)
    out += _to64(final[11], 2)
    return (magic + salt + b"$").decode("ascii") + out


def verify_hash(stored: str, password: str) -> bool:
    """True when ``password`` matches one htpasswd hash. Blocking for argon2: call off the event loop."""
    pw = password.encode("utf-8")
    if stored.startswith(("$apr1$", "$1$")):
        magic = b"$apr1$" if stored.startswith("$apr1$") else b"$1$"
        salt = stored[len(magic):].split("$", 1)[0].encode("ascii", "replace")
        return hmac.compare_digest(md5_crypt(pw, salt, magic), stored)
    if stored.startswith("{SHA}"):
        return hmac.compare_digest(base64.b64encode(hashlib.sha1(pw).digest()).decode(), stored[5:])
    if stored.startswith("$argon2"):
        try:
            return argon2.PasswordHasher().verify(stored, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
    return False


def load_htpasswd(path: Path) -> dict[str, str]:
    """``user:hash`` lines → {user: hash}; raises AuthFileError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise AuthFileError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise AuthFileError(f"{path}: not UTF-8 text") from None
    users: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, h = line.partition(":")
        if not sep or not user or not h:
            raise AuthFileError(f"{path}:{n}: expected user:hash")
        if not h.startswith(("$apr1$", "$1$", "{SHA}", "$argon2")):
            raise AuthFileError(f"{path}:{n}: unsupported hash for {user!r} (use htpasswd -m/-s, "
                                f"openssl passwd -apr1, or argon2)")
        users[user] = h
    return users


@dataclass(frozen=True)
class Principal:
    """Who made a request: ``source`` is "file" (auth file), "account" (admin account) or "open" (no auth needed)."""

    user: str
    source: str


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """RFC 7617 §2: ``Basic base64(user:password)`` → (user, password), or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


class HTTPAuth:
    """Decides whether a request's credentials are good enough; holds no global state.

    ``verify_account(user, password) -> bool`` says whether the credentials are those of an admin account
    (blocking; None when accounts do not count, i.e. capture mode). ``gate`` is the server's shared login limiter
    (a private one when not given), ``proxies`` the trusted reverse proxies.
    """

    def __init__(self, users: dict[str, str] | None, verify_account: Callable[[str, str], bool] | None,
                 gate: AuthGate | None = None, proxies: TrustedProxies | None = None) -> None:
        self.users = users
        self.verify_account = verify_account
        self.gate = gate or AuthGate.from_limits(LimitsConfig())
        self.proxies = proxies or TrustedProxies()
        self._key = secrets.token_bytes(16)
        self._cache: dict[bytes, tuple[float, Principal]] = {}

    @property
    def required(self) -> bool:
        return self.users is not None or self.verify_account is not None

    def client_ip(self, peer: str, forwarded_for: Iterable[str] = ()) -> str:
        """The client's address: the TCP peer, or behind a trusted proxy what X-Forwarded-For says."""
        return self.proxies.client(peer, forwarded_for)

    def _fingerprint(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()

    def _check_sync(self, user: str, password: str) -> Principal | None:
        if self.users is not None and user in self.users and verify_hash(self.users[user], password):
            return Principal(user, "file")
        if self.verify_account is not None and self.verify_account(user, password):
            return Principal(user, "account")
        return None

    async def authenticate(self, header: str | None, ip: str) -> Principal | None:
        """The principal for an Authorization header, or None (wrong or missing: 401).
        Raises ``Limited`` (429) when the client may not log in now, whatever the credentials."""
        if not self.required:
            return Principal("", "open")
        if self.gate.refused(ip, "http"):
            raise Limited()
        creds = parse_basic(header)
        if creds is None:
            if header:  # present but not Basic credentials: counted like malformed SASL
                self.gate.malformed(ip, "http", "unusable Authorization header")
            return None
        fp = self._fingerprint(*creds)
        hit = self._cache.get(fp)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        p = await self.gate.login(ip, creds[0], creds[1], "http", self._check_sync)
        if p is None:
            log.event("http.auth_failed", level="warn", ip=ip, user=creds[0])
            return None
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[fp] = (now + CACHE_SECONDS, p)
        return p
