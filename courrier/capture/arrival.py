"""What capture mode does to a message as it arrives, as Mailpit's ``server/smtpd/smtpd.go`` (``SaveToDatabase``)
and ``internal/storage/tagfilters.go`` do:

- a message without Message-ID gets ``Message-ID: <ID@mailpit>`` as its first field (RFC 5322 §3.6.4 makes the
  field "SHOULD"; test helpers search by it), so ``message-id:`` finds every message;
- ``[capture] ignore_duplicate_ids``: the Message-ID of a message already kept drops the new one (still 250);
- ``[capture] tag_rules`` (Mailpit's ``--tag``) and ``tag_username`` (``--tags-username``): tags given at arrival.

Module-level and picklable (``Rules``): the disk-writer process (``writer_jobs.capture_job``) applies them too.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass

from courrier.capture import parse as P
from courrier.capture.envelope import CapturedEnvelope
from courrier.capture.search import compile_query
from courrier.config import CaptureConfig

_MSGID = re.compile(rb"(?im)^message-id[ \t]*:")


def header_section(body: bytes) -> bytes:
    """The header section of a message (LF line ends), without the blank line."""
    end = body.find(b"\n\n")
    return body if end < 0 else body[:end + 1]


def has_message_id(body: bytes) -> bool:
    return _MSGID.search(header_section(body)) is not None


def ensure_message_id(body: bytes, msg_id: str) -> bytes:
    """``body`` (LF) with ``Message-ID: <msg_id@mailpit>`` in front when it has no Message-ID field."""
    return body if has_message_id(body) else b"Message-ID: <" + msg_id.encode() + b"@mailpit>\n" + body


def message_id_of(body: bytes) -> str:
    """The Message-ID without <> ("" when none), read from the header section only."""
    head = header_section(body)
    if _MSGID.search(head) is None:
        return ""
    msg, p = P.parse(head + b"\n")
    return p.message_id


@dataclass(frozen=True)
class Rules:
    """Tag rules compiled once: ``(SQL condition on m, parameters, tags)`` per rule (capture/search.py)."""

    compiled: tuple[tuple[str, tuple[object, ...], tuple[str, ...]], ...] = ()
    tag_username: bool = False

    @classmethod
    def of(cls, cfg: CaptureConfig) -> Rules:
        out = []
        for query, tags in cfg.tag_rules:
            where, params = compile_query(query)
            out.append((where, tuple(params), tags))
        return cls(tuple(out), cfg.tag_username)


NO_RULES = Rules()


def api_arrival(data: bytes, *, hostname: str, mail_from: str, rcpts: list[str], client: str, user: str | None,
                helo: str | None, listener: str, tags: list[str] | None) -> tuple[bytes, CapturedEnvelope, str]:
    """A message that did not come over SMTP (the API's send), made ready for either store: (LF body with a
    Message-ID, its envelope — tags from the call and from ``+tag`` recipients —, its Received line)."""
    tags = list(tags or [])
    for r in rcpts:
        local = r.rpartition("@")[0]
        if "+" in local and not local.startswith("+"):
            t = local.split("+", 1)[1]
            if t and t not in tags:
                tags.append(t)
    cenv = CapturedEnvelope(mail_from=mail_from, rcpts=list(rcpts), client=client, user=user, helo=helo,
                            listener=listener, tags=tags)
    date = email.utils.formatdate(cenv.received, localtime=False)
    received = f"Received: from {listener} by {hostname} (courrier) with HTTP id {cenv.id};\n\t{date}\n"
    return ensure_message_id(data.replace(b"\r\n", b"\n"), cenv.id), cenv, received
