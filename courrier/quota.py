"""Storage quotas (issue 15 item 5): an account's limit against what its folders hold.

The limit is the account's own (``courrier user quota ADDR SIZE``, 0 = none) or else ``[accounts] default_quota``
(0 = none). The usage is the mail store's count (``MailStore.usage``): RFC822.SIZE octets summed over every folder of
the account, kept by the store on each write, expunge and delivery, so checking it costs a few index rows, never a
directory walk. One quota root per account, named ``""`` as Dovecot names its user quota root, with one resource,
STORAGE (RFC 9208 §5.1).

Who asks: SMTP at RCPT and at the end of DATA (``roles/``), the queue's local route (``queue/router.py``), IMAP
APPEND/COPY and GETQUOTA (``access/imap/cmd_quota.py``), and ``courrier user quota|list``. An account without a
limit costs no thread hop and no query: the limit comes from the accounts cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from courrier.accounts import Accounts
from courrier.mailbox.api import MailStore, Usage

ROOT_NAME = ""  # RFC 9208 §4.2: the quota root of an account's mailboxes (Dovecot's "" for the user quota)


@dataclass(frozen=True)
class Quota:
    account: str
    limit: int  # octets; 0: no limit
    own: bool  # the account's own limit, not [accounts] default_quota
    usage: Usage

    @property
    def full(self) -> bool:
        """No room left at all: what RCPT refuses without knowing the message's size."""
        return self.limit > 0 and self.usage.octets >= self.limit

    def exceeded_by(self, octets: int) -> bool:
        """Storing ``octets`` more would go past the limit (RFC 9208 §5.1: the limit may not be exceeded)."""
        return self.limit > 0 and self.usage.octets + octets > self.limit


class Quotas:
    """Limits (accounts) and usage (the store) together; ``default`` is ``[accounts] default_quota``."""

    def __init__(self, accounts: Accounts, store: MailStore, default: int = 0) -> None:
        self.accounts = accounts
        self.store = store
        self.default = default

    def limit(self, account: str) -> tuple[int, bool]:
        """(octets, own) — from memory (``Accounts.own_quota``), safe on the event loop."""
        own = self.accounts.own_quota(account)
        return (self.default, False) if own is None else (own, True)

    def of(self, account: str, *, exact: bool = False) -> Quota:
        """The account's quota and usage. Blocking (the store's index): in the store's threads."""
        limit, own = self.limit(account)
        return Quota(account, limit, own, self.store.usage(self.store.account_root(account), exact=exact))

    async def refused(self, account: str, octets: int = 0) -> Quota | None:
        """The quota when storing ``octets`` more is refused (``octets`` 0: when the mailbox is already full),
        else None. Without a limit: None at once, no query."""
        if self.limit(account)[0] == 0:
            return None
        q = await self.store.run(self.of, account)
        return q if (q.exceeded_by(octets) if octets else q.full) else None
