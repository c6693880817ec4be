"""SPF, DKIM and DMARC verdicts on the inspector's messages: checked on demand, kept, and searchable (``auth:``).

Capture mode keeps mail as the application sent it, so nothing checked it on the way in. A verdict is worked out
the way a receiving MX would (``courrier.mailauth``: SPF for the client address against MAIL FROM — HELO for a null
sender —, each DKIM signature, DMARC alignment of the header From) when someone asks for it: the message view
(``GET /api/courrier/message/{ID}/auth``) or a search with an ``auth:`` term. Nothing is checked at arrival, so the
SMTP path never pays for DNS. Lookups go to ``[delivery] nameservers`` (the system resolver when none) within
``[auth] check_timeout``, on mailauth's own bounded thread pool: the event loop never waits on DNS. Without DNS the
verdict is ``unverifiable`` and ``Why`` says which lookup failed.

Each report is kept in memory (``CACHE`` messages, least recently used dropped; ``recheck`` asks again) and, for
captured mail, as search terms in the index's ``auth`` column (`` verdict:forged spf:fail dkim:pass dmarc:fail ``,
``terms_of``). ``fill`` checks the messages of a search's scope that have no verdict yet before the search runs:
up to ``FILL_MAX`` of them, newest first, waiting at most ``FILL_WAIT`` seconds — checks still running after that
go on in the background and count in the next search.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from courrier.mailauth._dns import Resolver
from courrier.mailauth.report import Authenticator, AuthReport
from courrier.web.mailboxes import NO_ENVELOPE

if TYPE_CHECKING:
    from courrier.web.source import MessageSource
    from courrier.web.store import CaptureSource

CACHE = 1000
FILL_MAX = 2000  # messages checked for one search at most (newest first)
FILL_WAIT = 15.0  # seconds a search waits for them
FILL_CONCURRENCY = 8


def client_ip(client: str) -> str | None:
    """The address of the envelope's ``ip:port`` / ``[v6]:port``."""
    if client.startswith("["):
        return client[1:].partition("]")[0] or None
    host, sep, port = client.rpartition(":")
    return (host if sep and port.isdigit() and ":" not in host else client) or None


def as_json(msg_id: str, r: AuthReport) -> dict[str, Any]:
    ids, spf, d = r.identities, r.spf, r.dmarc
    return {
        "ID": msg_id, "Verdict": r.verdict, "Why": r.why,
        "Client": ids.client_ip or "", "Helo": ids.helo or "", "MailFrom": ids.mail_from or "",
        "SPF": {"Result": spf.result, "Domain": spf.domain, "Reason": spf.comment, "Record": spf.record or ""}
        if spf else {"Result": "none", "Domain": "", "Reason": "no client address to check", "Record": ""},
        "DKIM": [{"Result": k.result, "Domain": k.domain, "Selector": k.selector, "Reason": k.reason} for k in r.dkim],
        "DMARC": {"Result": d.result, "Domain": d.from_domain, "Policy": d.policy, "Reason": d.reason},
        "Header": r.header("courrier").partition(":")[2].strip(),
    }


def terms_of(report: dict[str, Any]) -> str:
    """A report (``as_json``) as the words ``auth:`` searches match (capture/search.py), space-delimited on both
    sides so that LIKE '% word %' matches whole words only."""
    words = [f"verdict:{report['Verdict']}", f"spf:{report['SPF']['Result']}"]
    words += [f"dkim:{k['Result']}" for k in report["DKIM"]] or ["dkim:none"]
    words.append(f"dmarc:{report['DMARC']['Result']}")
    return " " + " ".join(w.lower() for w in words) + " "


class AuthChecks:
    """The inspector's Authenticator (built on first use from the config), its report cache and the checks in
    flight (one per message: a search and the message view asking at once share it)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self._auth: Authenticator | None = None
        self.reports: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.running: dict[str, asyncio.Task[dict[str, Any] | None]] = {}
        self._slots = asyncio.Semaphore(FILL_CONCURRENCY)

    @property
    def auth(self) -> Authenticator:
        if self._auth is None:
            servers = [(ns.host, ns.port) for ns in self.cfg.delivery.nameservers]
            self._auth = Authenticator(Resolver(servers), self.cfg.hostname, max_concurrent=4,
                                       timeout=self.cfg.auth.check_timeout)
        return self._auth

    def remember(self, msg_id: str, report: dict[str, Any]) -> None:
        self.reports[msg_id] = report
        self.reports.move_to_end(msg_id)
        while len(self.reports) > CACHE:
            self.reports.popitem(last=False)

    async def report(self, src: MessageSource, msg_id: str, recheck: bool = False) -> dict[str, Any] | None:
        """The message's report (``as_json``); None when the message is unknown."""
        if not recheck and msg_id in self.reports:
            self.reports.move_to_end(msg_id)
            return self.reports[msg_id]
        task = self.running.get(msg_id)
        if task is None or recheck:
            task = asyncio.ensure_future(self._check(src, msg_id))
            self.running[msg_id] = task
            task.add_done_callback(lambda t: self._finished(msg_id, t))
        return await asyncio.shield(task)

    def _finished(self, msg_id: str, task: asyncio.Task[dict[str, Any] | None]) -> None:
        if self.running.get(msg_id) is task:
            del self.running[msg_id]
        if not task.cancelled():
            task.exception()  # retrieved here: a search that stopped waiting must not leave it unobserved

    async def _check(self, src: MessageSource, msg_id: str) -> dict[str, Any] | None:
        async with self._slots:
            env, raw = await src.envelope(msg_id), await src.raw(msg_id)  # as the client sent it
            if env is None or raw is None:
                return None
            known = env.listener != NO_ENVELOPE  # server mode, a file put there by IMAP APPEND: no SMTP client
            report = await self.auth.check_async(
                raw, client_ip=client_ip(env.client) if known else None, helo=env.helo if known else None,
                mail_from=env.mail_from if known else None)
        out = as_json(msg_id, report)
        self.remember(msg_id, out)
        keep = getattr(src, "set_auth", None)  # captured mail: searchable with ``auth:``
        if keep is not None:
            await keep(msg_id, terms_of(out))
        return out

    async def fill(self, src: CaptureSource) -> None:
        """Checks the messages of ``src``'s scope that have no verdict yet (see the module docstring)."""
        ids = await src.unchecked_ids(FILL_MAX)
        if not ids:
            return
        tasks = [asyncio.ensure_future(self.report(src, i)) for i in ids]
        done, _ = await asyncio.wait(tasks, timeout=FILL_WAIT)
        for t in done:
            t.exception()  # retrieved: a message deleted meanwhile or a failing check is no search error

    def close(self) -> None:
        if self._auth is not None:
            self._auth.close()
