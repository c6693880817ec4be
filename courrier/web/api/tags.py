"""``/api/v1/tags``: Mailpit's tags — list, set on messages, rename, delete (``server/apiv1/tags.go``).

Mailpit's rules (``internal/tools/tags.go``, ``internal/storage/tags.go``): every tag given is cleaned — characters
other than letters, digits, ``-``, ``_``, ``.`` and space become spaces, runs of white space one space, ends
trimmed — and dropped when nothing is left; a message's tags are unique. Renaming or deleting a tag that does not
exist answers 400, and so does renaming onto another tag's name (a change of letter case only is a rename). Tag
names are compared without regard to case, as Mailpit's ``tags`` table does.

In server mode tags are the IMAP keywords of the selected mailbox's messages (``?mailbox=``), so mail clients see
them too; rename and delete act on that mailbox.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier.web.api.common import json_body, ok, source, str_list
from courrier.web.asgi import JSONError, json_ok
from courrier.web.store import SearchError

router = APIRouter(tags=["tags"])

_INVALID = re.compile(r"[^a-zA-Z0-9\-\ \_\.]")
_SPACES = re.compile(r"\s+")


def clean_tag(s: str) -> str:
    """Mailpit's ``tools.CleanTag``."""
    return _SPACES.sub(" ", _INVALID.sub(" ", s)).strip()


def clean_tags(tags: list[str]) -> list[str]:
    """Cleaned, empty ones dropped, each once (first spelling kept, compared without case)."""
    out: list[str] = []
    seen: set[str] = set()
    for t in tags:
        c = clean_tag(t)
        if c and c.lower() not in seen:
            seen.add(c.lower())
            out.append(c)
    return out


def _existing(tags: list[str], name: str) -> str | None:
    low = name.lower()
    return next((t for t in tags if t.lower() == low), None)


@router.get("/api/v1/tags", summary="Get all current tags")
async def get_tags(request: Request) -> Response:
    return json_ok(await source(request).tags())


@router.put("/api/v1/tags", summary="Set message tags")
async def set_tags(request: Request) -> Response:
    """Replaces the tags of every listed message; no ``Tags`` (or ``[]``) removes them all, no ``IDs`` changes
    nothing (Mailpit's ``SetMessageTags``)."""
    data = await json_body(request, required=True)
    ids, tags = str_list(data, "IDs") or [], str_list(data, "Tags") or []
    if ids:
        try:
            await source(request).set_tags(ids, clean_tags(tags))
        except SearchError as e:  # server mode: tags are IMAP keywords, which have a syntax
            raise JSONError(400, str(e)) from None
    return ok()


@router.put("/api/v1/tags/{Tag}", summary="Rename a tag")
async def rename_tag(request: Request, Tag: str) -> Response:  # noqa: N803
    data = await json_body(request, required=True)
    raw = data.get("Name")
    name = clean_tag(raw) if isinstance(raw, str) else ""
    if not name:
        raise HTTPException(400, f"invalid tag name: {raw if isinstance(raw, str) else ''}")
    src = source(request)
    current = await src.tags()
    old = _existing(current, Tag)
    if old is None:
        raise HTTPException(400, f"tag not found: {Tag}")
    if name == old:
        return ok()
    clash = _existing([t for t in current if t != old], name)
    if clash is not None:
        raise HTTPException(400, f"tag already exists: {clash}")
    try:
        await src.rename_tag(old, name)
    except SearchError as e:
        raise JSONError(400, str(e)) from None
    return ok()


@router.delete("/api/v1/tags/{Tag}", summary="Delete a tag")
async def delete_tag(request: Request, Tag: str) -> Response:  # noqa: N803
    src = source(request)
    old = _existing(await src.tags(), Tag)
    if old is None:
        raise HTTPException(400, f"tag not found: {Tag}")
    await src.delete_tag(old)
    return ok()
