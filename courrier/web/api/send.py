"""``POST /api/v1/send``: Mailpit's JSON message → a MIME message (stdlib ``email``) kept in the capture store.

In server mode there is no capture store, and the API must not become a way around submission's rules (AUTH,
sender identity): the endpoint answers 400 with a JSON error that says so.

Errors answer ``{"Error": "…"}`` with 400, as Mailpit's spec gives for this endpoint (``JSONErrorResponse``). Every
string that ends up in a header field (names, addresses, Subject, Tags, Headers, attachment names, types and IDs) is
refused with 400 when it holds CR, LF or NUL: a header field is one line (RFC 5322 §2.2), and a CR/LF would let the
caller write header fields of its own (header injection).

As Mailpit's ``server/apiv1/send.go``: ``Headers`` may not set To, From, Cc, Bcc, Reply-To, Date, Subject,
Content-Type or Mime-Version (nor X-Tags when ``Tags`` is given) — 400 naming the header; attachment ``Content`` may
be a data URI (``data:image/png;base64,…``, what a browser's ``readAsDataURL`` gives); attachments with a
``ContentID`` are inline parts of a multipart/related (RFC 2387) beside the text and HTML, the others attachments of
the multipart/mixed around them.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
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
_RESTRICTED = {"to", "from", "cc", "bcc", "reply-to", "date", "subject", "content-type", "mime-version"}


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
    restricted = _RESTRICTED | ({"x-tags"} if tags else set())
    for k, v in headers.items():
        if not k or any(c in k for c in ": ") or not k.isascii() or not k.isprintable():
            raise SendError(f"Headers: bad header name {k[:100]!r}")  # RFC 5322 §2.2: printable US-ASCII, no colon
        if k.lower() in restricted:
            raise SendError(f'cannot overwrite header: "{k}"')
        _line(v, f"Headers.{k}")
        if k.lower() in msg:
            del msg[k]
        msg[k] = v
    text, html = data.get("Text") or "", data.get("HTML") or ""
    if not isinstance(text, str) or not isinstance(html, str):
        raise SendError("Text and HTML must be strings")
    body = MIMEPart()  # a part: no MIME-Version of its own (RFC 2045 §4: the top level only)
    if html and text:
        body.set_content(text)
        body.add_alternative(html, subtype="html")
    elif html:
        body.set_content(html, subtype="html")
    else:
        body.set_content(text)
    inline, attached = _attachments(data)
    if inline:  # RFC 2387: the body first, then the parts it refers to by Content-ID
        related = MIMEPart()
        related.make_related()
        related.attach(body)
        for content, maintype, subtype, kw in inline:
            related.add_related(content, maintype=maintype, subtype=subtype, **kw)
        body = related
    if attached:
        msg.make_mixed()
        msg.attach(body)
        for content, maintype, subtype, kw in attached:
            msg.add_attachment(content, maintype=maintype, subtype=subtype, **kw)
    else:  # the body is the message's own content
        msg["MIME-Version"] = "1.0"
        for k in ("Content-Type", "Content-Transfer-Encoding"):
            if k in body:
                msg[k] = body[k]
        msg.set_payload(body.get_payload())
    rcpts = [a.addr_spec for a in to + cc + bcc]
    return msg.as_bytes(), sender.addr_spec, rcpts


_Part = tuple[bytes, str, str, dict[str, Any]]


def _attachments(data: dict[str, Any]) -> tuple[list[_Part], list[_Part]]:
    """(inline parts — those with a ContentID —, attachments), each (content, maintype, subtype, keywords)."""
    atts = data.get("Attachments") or []
    if not isinstance(atts, list):
        raise SendError("Attachments: expected an array")
    parts: list[_Part] = []
    for i, a in enumerate(atts):
        if not isinstance(a, dict) or not isinstance(a.get("Filename"), str) or not isinstance(a.get("Content"), str):
            raise SendError(f"Attachments[{i}]: Filename and Content are required")
        try:  # a data URI's base64 follows its last comma (RFC 2397 §3)
            content = base64.b64decode(a["Content"].rpartition(",")[2].strip(), validate=True)
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
            kw["cid"] = f"<{cid.strip().strip('<>')}>"
            kw["disposition"] = "inline"
        parts.append((content, maintype, subtype or "octet-stream", kw))
    return [p for p in parts if "cid" in p[3]], [p for p in parts if "cid" not in p[3]]


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
