"""Who may log in, and which mail root they get: shared by POP3 and IMAP.

Every login goes through the shared gate (courrier/auth): a limiter slot before the password is checked (argon2,
in a thread), failures counted per client and per account together with SMTP and HTTP. A login the limiter refuses
raises ``Limited`` — the protocols answer IMAP ``NO [UNAVAILABLE]`` / POP3 ``-ERR [SYS/TEMP]``, never "wrong
password". Plain-text logins are allowed only over TLS, or from loopback when ``trust_loopback`` (RFC 3501 §6.2.3
LOGINDISABLED, RFC 2595 §2.1). In capture mode every login may succeed (``capture.accept_any_auth``: it costs no
budget, but a locked client stays locked) and INBOX is the capture Maildir.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from courrier import log
from courrier.accounts import Accounts
from courrier.auth import AuthGate
from courrier.config import Config
from courrier.mailbox.api import MailStore, Root


@dataclass(frozen=True)
class Mailroot:
    """The authenticated user and the store's root holding their INBOX and folders."""

    user: str
    root: Root
    capture: bool = False


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


class Authenticator:
    def __init__(self, cfg: Config, accounts: Accounts, store: MailStore, gate: AuthGate | None = None) -> None:
        self.cfg = cfg
        self.accounts = accounts
        self.store = store
        self.gate = gate or AuthGate.from_limits(cfg.limits)

    def plaintext_allowed(self, tls: bool, peer_ip: str) -> bool:
        return tls or (self.cfg.trust_loopback and is_loopback(peer_ip))

    def blocked(self, ip: str, protocol: str) -> bool:
        """True when the limiter refuses this client now: ask before reading credentials."""
        return self.gate.refused(ip, protocol)

    def malformed(self, ip: str, protocol: str, reason: str) -> None:
        """Undecodable SASL: counted as a failure."""
        self.gate.malformed(ip, protocol, reason)

    async def login(self, user: str, password: str, peer_ip: str, protocol: str) -> Mailroot | None:
        """The user's mail root when the credentials are good; None otherwise (the failure is counted).
        Raises ``courrier.auth.Limited`` when the limiter refuses (nothing was checked)."""
        if self.cfg.capture_mode and self.cfg.capture.accept_any_auth:
            self.gate.accept_any(peer_ip, protocol)
            log.event(f"{protocol}.login", user=user, ip=peer_ip, capture=True)
            return Mailroot(user, self.store.capture_root, capture=True)
        account = await self.gate.login(peer_ip, user, password, protocol, self.accounts.verify)
        if account is None:
            log.event(f"{protocol}.login_failed", level="warn", user=user, ip=peer_ip)
            return None
        log.event(f"{protocol}.login", user=account.address, ip=peer_ip)
        if self.cfg.capture_mode:
            return Mailroot(account.address, self.store.capture_root, capture=True)
        root = self.store.account_root(account.address)
        await self.store.run(self.store.prepare_root, root)
        return Mailroot(account.address, root)
