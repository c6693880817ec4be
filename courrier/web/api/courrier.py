"""courrier's own endpoints, under ``/api/courrier/`` (JSON errors ``{"Error": …}``).

- ``GET  /api/courrier/message/{ID}/envelope``  MAIL FROM / RCPT TO beside the header From/To/Cc/Bcc, whether the
  header From differs from the envelope sender (``FromMismatch``), its domain (``DomainMismatch``) or its
  organisation (``OrgMismatch``: the forged-mail lesson), the client, and Authentication-Results.
- ``GET  /api/courrier/parse-errors?id=ID&id=…`` ``{"Errors": {ID: reason}}`` for those messages that could be read
  only in part (nesting beyond the MIME bounds, a part that failed): the UI's error mark. ``ParseError`` in the
  envelope says the same for one message. Mailpit's own JSON keeps its exact shape.
- ``GET  /api/courrier/message/{ID}/html``      the HTML part sanitized with nh3, for the UI's sandboxed iframe;
  remote images/styles load only with ``?remote=1``; ``?theme=dark`` gives it dark default colours.
- ``GET|PUT /api/courrier/pause``               the "pause incoming" switch (SMTP answers 451 4.3.2 while paused).
- ``GET  /api/courrier/accounts``               accounts (admin only).
- ``GET  /api/courrier/mailboxes``              server mode: every account and its folders, and the default mailbox,
  for the UI's mailbox picker (``?mailbox=account/folder`` on the Mailpit endpoints); capture mode: ``Mailboxes``,
  each envelope recipient and SMTP AUTH user with its ``Total`` and ``Unread`` (``?mailbox=NAME`` on the same).
- ``GET  /api/courrier/queue[/{QID}]``          the outbound queue; one entry with its delivery attempts (admin only).
- ``GET  /api/courrier/delivery-log?limit=N``   the latest delivery attempts, newest first (admin only).

"Admin" is a principal that logged in — an admin account (server mode) or a user of ``[http] auth_file`` — or,
in capture mode without ``auth_file``, anyone who reaches the (loopback-only by default) listener.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from courrier.capture import parse as cparse
from courrier.web import sanitize
from courrier.web.api import mailpit
from courrier.web.api.common import ctx, int_param, json_body, not_found, resolve_or_404, source
from courrier.web.api.mailpit import iso
from courrier.web.api.view import cid_urls
from courrier.web.mailboxes import NO_ENVELOPE
from courrier.web.orgdomain import same_organisation

router = APIRouter(prefix="/api/courrier", tags=["courrier"])
MAX_IDS = 500  # parse-errors: IDs per request (the UI asks for one page of 50)


def _domain(addr: str) -> str:
    return addr.rpartition("@")[2].lower()


@router.get("/message/{ID}/envelope", summary="Envelope and authentication results of a message")
async def envelope(request: Request, ID: str) -> Response:  # noqa: N803
    src = source(request)
    msg_id = await resolve_or_404(request, ID)
    env, msg, traced = await src.envelope(msg_id), await src.message(msg_id), await src.raw(msg_id, True)
    if env is None or msg is None or traced is None:
        raise not_found()
    s = msg.summary
    header_from = s.from_.address
    known = env.listener != NO_ENVELOPE  # server mode: a file put there by IMAP APPEND has no envelope to compare
    head = cparse.parse_bytes(traced.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
    return JSONResponse({
        "ID": msg_id,
        "MailFrom": env.mail_from,
        "RcptTo": env.rcpts,
        "Username": env.user or "",
        "Client": env.client, "Helo": env.helo or "", "TLS": env.tls or "", "Listener": env.listener,
        "QueueID": env.qid, "Received": iso(env.received),
        "HeaderFrom": mailpit.address(s.from_), "HeaderTo": mailpit.address_list(s.to),
        "HeaderCc": mailpit.address_list(s.cc), "HeaderBcc": mailpit.address_list(s.bcc),
        # RFC 5322 From vs RFC 5321 MAIL FROM: they may legally differ (lists, bounces), but it is exactly what a
        # forger does, so the UI marks it; DomainMismatch is what DMARC alignment (RFC 7489 §3.1) would compare.
        "FromMismatch": known and bool(header_from) and header_from.lower() != env.mail_from.lower(),
        "DomainMismatch": known and bool(header_from) and _domain(header_from) != _domain(env.mail_from),
        # The red marker: another organisation (public suffix list), not merely another address (orgdomain.py)
        "OrgMismatch": known and bool(header_from) and not same_organisation(header_from, env.mail_from, env.helo or ""),
        "AuthenticationResults": [" ".join(str(v).split()) for v in head.get_all("Authentication-Results") or []],
        "ParseError": (await src.parse_errors([msg_id])).get(msg_id, ""),
    })


@router.get("/parse-errors", summary="Which of these messages could be read only in part, and why")
async def parse_errors(request: Request) -> Response:
    ids = [i for i in request.query_params.getlist("id") if i][:MAX_IDS]
    return JSONResponse({"Errors": await source(request).parse_errors(ids) if ids else {}})


@router.get("/message/{ID}/html", summary="Sanitized HTML part for the web UI")
async def safe_html(request: Request, ID: str) -> Response:  # noqa: N803
    msg_id = await resolve_or_404(request, ID)
    msg = await source(request).message(msg_id)
    if msg is None:
        raise not_found()
    remote = request.query_params.get("remote") == "1"
    html = sanitize.rewrite_cids(msg.html, cid_urls(msg, msg_id))
    # ?theme=dark: the UI is dark, so the message's default colours are too; colours it sets itself are kept
    dark = "<style>:root{color-scheme:dark}</style>" if request.query_params.get("theme") == "dark" else ""
    page = ("<!doctype html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">" + dark + "</head><body>"
            + sanitize.clean(html) + "</body></html>")
    return Response(page, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": sanitize.csp(remote), "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "no-referrer"})


@router.get("/pause", summary="Is incoming mail paused?")
async def get_pause(request: Request) -> Response:
    return JSONResponse({"Paused": ctx(request).get_paused()})


@router.put("/pause", summary="Pause or resume incoming mail")
async def set_pause(request: Request) -> Response:
    data = await json_body(request, required=True)
    paused = data.get("Paused")
    if not isinstance(paused, bool):
        raise HTTPException(400, "Paused: expected true or false")
    ctx(request).set_paused(paused)
    return JSONResponse({"Paused": ctx(request).get_paused()})


def require_admin(request: Request) -> None:
    principal = request.scope.get("state", {}).get("principal")
    if principal is None or principal.source not in ("account", "file", "open"):
        raise HTTPException(403, "admin only: configure [http] auth_file or log in as an admin account")


async def _blocking(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


@router.get("/accounts", summary="Mail accounts (admin only)")
async def accounts(request: Request) -> Response:
    require_admin(request)
    accts = await _blocking(ctx(request).accounts.list)
    return JSONResponse([{"Address": a.address, "Admin": a.is_admin, "SendAsAny": a.send_as_any,
                          "Aliases": list(a.aliases)} for a in accts])


@router.get("/mailboxes", summary="Accounts and their folders, for the mailbox picker (admin only)")
async def mailboxes(request: Request) -> Response:
    require_admin(request)
    c = ctx(request)
    if c.mailboxes is None:
        if c.source is None:
            return JSONResponse({"Mode": "capture", "Default": "", "Accounts": [], "Mailboxes": []})
        rows = await _blocking(c.source.q.mailboxes)
        return JSONResponse({"Mode": "capture", "Default": "", "Accounts": [],
                             "Mailboxes": [{"Name": n, "Total": t, "Unread": u} for n, t, u in rows]})
    principal = request.scope.get("state", {}).get("principal")
    own = principal.user.lower() if principal is not None and principal.source == "account" else ""
    accts = await _blocking(c.mailboxes.mailboxes)
    return JSONResponse({"Mode": "server", "Default": f"{own}/INBOX" if own else "", "Accounts": accts})


def _queue_json(row: Any) -> dict[str, Any]:
    return {"QueueID": row.qid, "Sender": row.sender, "Created": iso(row.created), "Size": row.size,
            "Attempts": row.attempts, "NextAttempt": iso(row.next_attempt), "LastError": row.last_error or "",
            "Recipients": [{"Address": a, "Status": st} for _, a, st in row.rcpts]}


def _log_json(r: Any, qid: str | None = None) -> dict[str, Any]:
    out = {"Time": iso(r.time if hasattr(r, "time") else r["time"])}
    get = (lambda k: getattr(r, k)) if hasattr(r, "result") else (lambda k: r[k])
    if qid is None:
        out["QueueID"] = get("qid")
    out.update({"Recipients": get("recipients"), "Host": get("host") or "", "Address": get("address") or "",
                "Result": get("result"), "Code": get("code") or 0, "Enhanced": get("enhanced") or "",
                "Text": get("text") or "", "TLS": get("tls") or "", "TLSPolicy": get("tls_policy") or ""})
    if isinstance(r, dict) and "node" in r:  # a cluster's log says which node tried
        out["Node"] = r["node"]
    return out


@router.get("/queue", summary="The outbound queue (admin only)")
async def queue(request: Request) -> Response:
    require_admin(request)
    c = ctx(request)
    rows = await _blocking(lambda: c.queue_store().all())
    return JSONResponse([_queue_json(r) for r in rows])


@router.get("/queue/{QID}", summary="One queued message and its delivery attempts (admin only)")
async def queue_entry(request: Request, QID: str) -> Response:  # noqa: N803
    require_admin(request)
    c = ctx(request)
    row = await _blocking(lambda: c.queue_store().get(QID))
    history = await _blocking(lambda: c.queue_store().history(QID))
    if row is None and not history:
        raise HTTPException(404, "no such queue entry")
    return JSONResponse({"Entry": _queue_json(row) if row else None,
                         "Attempts": [_log_json(h, QID) for h in history]})


@router.get("/delivery-log", summary="Latest delivery attempts (admin only)")
async def delivery_log(request: Request) -> Response:
    require_admin(request)
    limit = int_param(request, "limit", 100, 1000)

    return JSONResponse([_log_json(r) for r in await _blocking(ctx(request).recent_deliveries, limit)])
