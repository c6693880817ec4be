"""``POST /api/v1/send``: Mailpit's JSON message → a MIME message (stdlib ``email``) kept in the capture store.

In server mode there is no capture store, and the API must not become a way around submission's rules (AUTH,
sender identity): the endpoint answers 400 with a JSON error that says so.

Errors answer ``{"Error": "…"}`` with 400, as Mailpit's spec gives for this endpoint (``JSONErrorResponse``). Every
string that ends up in a header field (names, addresses, Subject, Tags, Headers, attachment names, types and IDs) is
refused with 400 when it holds CR, LF or NUL: a header field is one line (RFC 5322 §2.2), and a CR/LF would let the
caller write header fields of its own (header injection).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from courrier.web.api.common import ctx, json_body, source

router = APIRouter(tags=["message"])
SERVER_MODE_SEND = ("sending through the API is not available in server mode: submit mail over SMTP "
                    "(the submission port) instead")


class SendError(ValueError):
    pass


_NOT_IN_HEADERS = ("\r", "\n", "\x00")


def _line(value: Any, field: str) -> str:
    """A string that goes into a header field: one line (RFC 5322 §2.2), no NUL."""
    if not isinstance(value, str):
        raise SendError(f"{field}: expected a string")
    if any(c in value for c in _NOT_IN_HEADERS):
        raise SendError(f"{field}: CR, LF and NUL are not allowed in a header field")
    return value


def _addr(v: Any, field: str) -> Address:
    if isinstance(v, str):
        v = {"Email": v}
    if not isinstance(v, dict) or not isinstance(v.get("Email"), str) or "@" not in v["Email"]:
        raise SendError(f"{field}: expected an object with an Email address")
    name = v.get("Name") or ""
    if not isinstance(name, str):
        raise SendError(f"{field}: Name must be a string")
    _line(name, f"{field}.Name")
    local, _, domain = _line(v["Email"], f"{field}.Email").strip().rpartition("@")
    if not local or not domain:
        raise SendError(f"{field}: invalid email address {v['Email']!r}")
    try:
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, TypeError, IndexError) as e:  # the email library's own refusal
        raise SendError(f"{field}: invalid email address {v['Email']!r}: {e}") from None


def _addrs(data: dict[str, Any], key: str) -> list[Address]:
    v = data.get(key) or []
    if not isinstance(v, list):
        raise SendError(f"{key}: expected an array")
    return [_addr(x, f"{key}[{i}]") for i, x in enumerate(v)]


def build_message(data: dict[str, Any], hostname: str) -> tuple[bytes, str, list[str]]:
    """(message bytes, envelope sender, envelope recipients) for a Mailpit send request; SendError (400) for any
    request it cannot make a message of."""
    try:
        return _build(data, hostname)
    except SendError:
        raise
    except (ValueError, TypeError, LookupError) as e:  # what the email library refuses that we did not foresee
        raise SendError(f"cannot build the message: {e}") from None


def _build(data: dict[str, Any], hostname: str) -> tuple[bytes, str, list[str]]:
    if "From" not in data:
        raise SendError("From: required")
    sender = _addr(data["From"], "From")
    to, cc, reply_to = _addrs(data, "To"), _addrs(data, "Cc"), _addrs(data, "ReplyTo")
    bcc = _addrs(data, "Bcc")
    if not (to or cc or bcc):
        raise SendError("To: at least one recipient is required")
    msg = EmailMessage()
    msg["From"] = sender
    if to:
        msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = _line(data.get("Subject") or "", "Subject")
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=hostname)
    tags = data.get("Tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SendError("Tags: expected an array of strings")
    if tags:
        msg["X-Tags"] = ", ".join(_line(t, "Tags").strip() for t in tags if t.strip())
    headers = data.get("Headers") or {}
    if not isinstance(headers, dict):
        raise SendError("Headers: expected an object")
    for k, v in headers.items():
        if not k or any(c in k for c in ": ") or not k.isascii() or not k.isprintable():
            raise SendError(f"Headers: bad header name {k[:100]!r}")  # RFC 5322 §2.2: printable US-ASCII, no colon
        _line(v, f"Headers.{k}")
        if k.lower() in msg:
            del msg[k]
        msg[k] = v
    text, html = data.get("Text") or "", data.get("HTML") or ""
    if not isinstance(text, str) or not isinstance(html, str):
        raise SendError("Text and HTML must be strings")
    if html and text:
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
    elif html:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(text)
    atts = data.get("Attachments") or []
    if not isinstance(atts, list):
        raise SendError("Attachments: expected an array")
    for i, a in enumerate(atts):
        if not isinstance(a, dict) or not isinstance(a.get("Filename"), str) or not isinstance(a.get("Content"), str):
            raise SendError(f"Attachments[{i}]: Filename and Content are required")
        try:
            content = base64.b64decode(a["Content"], validate=True)
        except (binascii.Error, ValueError):
            raise SendError(f"Attachments[{i}]: Content is not valid base64") from None
        _line(a["Filename"], f"Attachments[{i}].Filename")
        ctype = _line(a.get("ContentType") or mimetypes.guess_type(a["Filename"])[0] or "application/octet-stream",
                      f"Attachments[{i}].ContentType")
        maintype, _, subtype = ctype.partition("/")
        kw: dict[str, Any] = {"filename": a["Filename"]}
        cid = a.get("ContentID")
        if cid:
            _line(cid, f"Attachments[{i}].ContentID")
            kw["cid"] = f"<{cid}>"
            kw["disposition"] = "inline"
        msg.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", **kw)
    rcpts = [a.addr_spec for a in to + cc + bcc]
    return msg.as_bytes(), sender.addr_spec, rcpts


@router.post("/api/v1/send", summary="Send a message")
async def send(request: Request) -> Response:
    c = ctx(request)
    if c.mailboxes is not None:  # server mode: nothing to capture into; mail enters through SMTP submission
        return JSONResponse({"Error": SERVER_MODE_SEND}, 400)
    try:
        data = await json_body(request, required=True)
        raw, mail_from, rcpts = build_message(data, c.cfg.hostname)
        src = source(request)
    except SendError as e:
        return JSONResponse({"Error": str(e)}, 400)
    except HTTPException as e:
        return JSONResponse({"Error": str(e.detail)}, e.status_code)
    principal = request.scope.get("state", {}).get("principal")
    msg_id = await src.add(raw, mail_from, rcpts, getattr(principal, "user", "") or "")
    return JSONResponse({"ID": msg_id})
