"""``GET /api/courrier/message/{ID}/auth``: SPF, DKIM and DMARC verdicts for a captured message.

Capture mode keeps mail as the application sent it, so nothing checked it on the way in; this endpoint checks it on
demand, the way a receiving MX would (``courrier.mailauth``: SPF for the client address against MAIL FROM — HELO
for a null sender —, each DKIM signature, DMARC alignment of the header From), so a developer sees whether the
application's DKIM signature and SPF record would pass before shipping. Lookups go to ``[delivery] nameservers``
(the system resolver when none), within ``[auth] check_timeout``, on mailauth's own bounded thread pool: the event
loop never waits on DNS.

Without DNS (offline, or a nameserver that does not answer) the verdict is ``unverifiable`` and ``Why`` says which
lookup failed. A message's report is kept (``CACHE`` messages, least recently used dropped) since the message does
not change; ``?recheck=1`` asks again, say after publishing a record.

Answer: ``{"ID", "Verdict": "authentic"|"forged"|"unverifiable", "Why", "Client", "Helo", "MailFrom",
"SPF": {"Result", "Domain", "Reason", "Record"}, "DKIM": [{"Result", "Domain", "Selector", "Reason"}],
"DMARC": {"Result", "Domain", "Policy", "Reason"}, "Header"}`` (``Header``: the Authentication-Results value an
MX would add, RFC 8601).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from courrier.mailauth._dns import Resolver
from courrier.mailauth.report import Authenticator, AuthReport
from courrier.web.api.common import ctx, not_found, resolve_or_404, source
from courrier.web.asgi import json_ok
from courrier.web.mailboxes import NO_ENVELOPE

router = APIRouter(prefix="/api/courrier", tags=["courrier"])
CACHE = 1000


class AuthChecks:
    """The inspector's Authenticator (built on first use from the config) and its report cache."""

    def __init__(self, cfg: Any) -> None:
        servers = [(ns.host, ns.port) for ns in cfg.delivery.nameservers]
        self.auth = Authenticator(Resolver(servers), cfg.hostname, max_concurrent=4, timeout=cfg.auth.check_timeout)
        self.reports: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def remember(self, msg_id: str, report: dict[str, Any]) -> None:
        self.reports[msg_id] = report
        self.reports.move_to_end(msg_id)
        while len(self.reports) > CACHE:
            self.reports.popitem(last=False)


def _checks(request: Request) -> AuthChecks:
    state = request.app.state
    if getattr(state, "auth_checks", None) is None:
        state.auth_checks = AuthChecks(ctx(request).cfg)
    return state.auth_checks  # type: ignore[no-any-return]


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


@router.get("/message/{ID}/auth", summary="SPF, DKIM and DMARC verdicts for a message (checked on demand)")
async def message_auth(request: Request, ID: str) -> Response:  # noqa: N803
    src = source(request)
    msg_id = await resolve_or_404(request, ID)
    checks = _checks(request)
    if request.query_params.get("recheck") != "1" and msg_id in checks.reports:
        checks.reports.move_to_end(msg_id)
        return json_ok(checks.reports[msg_id])
    env, raw = await src.envelope(msg_id), await src.raw(msg_id)  # as the client sent it
    if env is None or raw is None:
        raise not_found()
    known = env.listener != NO_ENVELOPE  # server mode, a file put there by IMAP APPEND: no SMTP client to check
    report = await checks.auth.check_async(
        raw, client_ip=client_ip(env.client) if known else None, helo=env.helo if known else None,
        mail_from=env.mail_from if known else None)
    out = as_json(msg_id, report)
    checks.remember(msg_id, out)
    return json_ok(out)
