"""``GET /api/v1/info`` (AppInformation) and ``GET /api/v1/webui`` (WebUIConfiguration), Mailpit's shapes."""

from __future__ import annotations

import os
import time

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier import __version__
from courrier.web.api.common import ctx, source
from courrier.web.asgi import json_ok

router = APIRouter(tags=["application"])


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@router.get("/api/v1/info", summary="Application information")
async def info(request: Request) -> Response:
    c = ctx(request)
    total = unread = 0
    tags: dict[str, int] = {}
    db, db_size = "", 0
    if c.source is not None or c.mailboxes is not None:
        try:  # server mode: the selected mailbox (?mailbox=, default the admin's INBOX); none named: zeros
            src = source(request)
            total, unread = await src.counts()
            tags = await src.tag_counts()
        except HTTPException:
            src = None
        p = src.db_path() if src is not None else c.cfg.db_path
        if p is not None:
            db = str(p)
            try:
                db_size = p.stat().st_size
            except OSError:
                db_size = 0
    s = c.stats
    store = c.source.store if c.source is not None else None
    return json_ok({
        "Version": __version__, "LatestVersion": __version__, "Database": db, "DatabaseSize": db_size,
        "Messages": total, "Unread": unread, "Tags": tags,
        "RuntimeStats": {"Memory": _rss(), "Uptime": int(time.time() - s.started), "MessagesDeleted": s.deleted,
                         "SMTPAccepted": s.accepted, "SMTPAcceptedSize": s.accepted_size, "SMTPRejected": store.rejected if store else 0,
                         "SMTPIgnored": store.ignored if store else 0},
    })


@router.get("/api/v1/webui", summary="Web UI configuration")
async def webui(request: Request) -> Response:
    c = ctx(request)
    return json_ok({
        "Label": c.cfg.hostname, "SpamAssassin": c.source is not None and c.cfg.capture.spamassassin is not None,
        "ChaosEnabled": c.source is not None and c.cfg.capture.chaos,
        "DuplicatesIgnored": c.cfg.capture.ignore_duplicate_ids,
        "HideDeleteAllButton": False,
        "MessageRelay": {"Enabled": c.relay is not None, "SMTPServer": c.relay_description,
                         "ReturnPath": "", "AllowedRecipients": c.cfg.capture.release_allowed, "BlockedRecipients": "", "OverrideFrom": "",
                         "PreserveMessageIDs": True},
    })
