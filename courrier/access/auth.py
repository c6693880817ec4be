"""Who may log in, and which Maildir they get: shared by POP3 and IMAP.

Passwords are checked by ``Accounts.verify`` (argon2: run in a thread, never on the loop). Plain-text logins are
allowed only over TLS, or from loopback when ``trust_loopback`` (RFC 3501 §6.2.3 LOGINDISABLED, RFC 2595 §2.1).
Failures are counted per client IP: after ``limits.auth_failures_per_ip`` in 5 minutes, that IP is refused for 5
minutes. In capture mode every login may succeed (``capture.accept_any_auth``) and INBOX is the capture Maildir.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from pathlib import Path

from courrier import log
from courrier.accounts import Accounts
from courrier.config import Config
from courrier.mailbox import folders
from courrier.mailbox.store import MailStore

WINDOW = 300.0


@dataclass(frozen=True)
class Mailroot:
    """The authenticated user and the Maildir++ root holding their INBOX and folders."""

    user: str
    root: Path
    capture: bool = False


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


class Authenticator:
    def __init__(self, cfg: Config, accounts: Accounts, store: MailStore) -> None:
        self.cfg = cfg
        self.accounts = accounts
        self.store = store
        self._failures: dict[str, list[float]] = {}

    def plaintext_allowed(self, tls: bool, peer_ip: str) -> bool:
        return tls or (self.cfg.trust_loopback and is_loopback(peer_ip))

    def blocked(self, ip: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(ip, []) if now - t < WINDOW]
        if recent:
            self._failures[ip] = recent
        else:
            self._failures.pop(ip, None)
        return len(recent) >= self.cfg.limits.auth_failures_per_ip

    async def login(self, user: str, password: str, peer_ip: str, protocol: str) -> Mailroot | None:
        """The user's mail root when the credentials are good; None otherwise (the failure is counted)."""
        if self.cfg.capture_mode and self.cfg.capture.accept_any_auth:
            log.event(f"{protocol}.login", user=user, ip=peer_ip, capture=True)
            return Mailroot(user, self.store.capture_dir, capture=True)
        loop = asyncio.get_running_loop()
        account = await loop.run_in_executor(None, self.accounts.verify, user, password)
        if account is None:
            self._failures.setdefault(peer_ip, []).append(time.monotonic())
            log.event(f"{protocol}.login_failed", level="warn", user=user, ip=peer_ip)
            return None
        log.event(f"{protocol}.login", user=account.address, ip=peer_ip)
        if self.cfg.capture_mode:
            return Mailroot(account.address, self.store.capture_dir, capture=True)
        root = self.store.maildir_for(account.address)
        await loop.run_in_executor(self.store.executor, prepare_root, root)
        return Mailroot(account.address, root)


def prepare_root(root: Path) -> None:
    """INBOX and the special-use folders exist after the first login (RFC 6154 §2), as with Dovecot's auto=create."""
    from courrier.mailbox import maildir

    maildir.ensure(root)
    for name in folders.SPECIAL_USE:
        if not folders.exists(root, name):
            try:
                folders.create(root, name)
            except folders.FolderError:
                pass
