"""IMAP QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA, and the ``[OVERQUOTA]`` refusal of APPEND and COPY.

One quota root per account, named ``""`` (courrier/quota.py), governing every mailbox of the account, with one
resource, STORAGE (§5.1: units of 1024 octets). The usage shown is rounded up (a non-empty mailbox never shows 0)
and the limit rounded down (it never promises room that is not there). A limit is the administrator's to set
(``courrier user quota``): SETQUOTA answers NO, as Dovecot does for users (§4.5 allows refusing it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courrier.access.imap import response as W
from courrier.access.imap import utf8 as U
from courrier.access.imap.parser import ParseError, Token, astring
from courrier.access.imap.state import TaggedResult, no
from courrier.mailbox import names as folders
from courrier.quota import ROOT_NAME, Quota

if TYPE_CHECKING:
    from courrier.access.imap.session import Session


def enabled(s: Session) -> bool:
    """Quotas apply to a logged-in account of server mode (not capture mode's shared mailbox)."""
    return s.server.quotas is not None and s.root is not None and not s.root.capture


def quota_line(q: Quota) -> bytes:
    """RFC 9208 §4.1.1 QUOTA response: the resources with a limit, usage and limit in 1024-octet units."""
    resources = f"STORAGE {(q.usage.octets + 1023) // 1024} {q.limit // 1024}" if q.limit else ""
    return b"* QUOTA " + W.string(ROOT_NAME) + f" ({resources})".encode()


async def _quota(s: Session) -> Quota:
    assert s.server.quotas is not None and s.root is not None
    return await s.store.run(s.server.quotas.of, s.root.user, exact=True)


async def getquota(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 9208 §4.2: the account's one root; any other name does not exist."""
    if len(args) != 1:
        raise ParseError("usage: GETQUOTA quota-root")
    if not enabled(s) or astring(args[0], "quota root") != ROOT_NAME:
        raise no("no such quota root")
    s.send(quota_line(await _quota(s)))
    return "GETQUOTA completed"


async def getquotaroot(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 9208 §4.3: QUOTAROOT names the mailbox's roots, then a QUOTA response for each."""
    if len(args) != 1:
        raise ParseError("usage: GETQUOTAROOT mailbox")
    name = folders.normalize(U.mailbox(s, args[0]))
    assert s.root is not None
    try:
        exists = await s.store.run(s.store.folder_exists, s.root.root, name)
    except folders.FolderError as e:  # a name no folder can have (too long, bad modified UTF-7…)
        raise no(f"[NONEXISTENT] {e}") from None
    if not exists:
        raise no("[NONEXISTENT] no such mailbox")
    if not enabled(s):
        s.send(b"* QUOTAROOT " + U.show(s, name))
        return "GETQUOTAROOT completed"
    s.send(b"* QUOTAROOT " + U.show(s, name) + b" " + W.string(ROOT_NAME))
    s.send(quota_line(await _quota(s)))
    return "GETQUOTAROOT completed"


async def setquota(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 9208 §4.4: refused — limits are the administrator's (``courrier user quota``)."""
    if len(args) != 2 or not isinstance(args[1], list):
        raise ParseError("usage: SETQUOTA quota-root (resource limit ...)")
    raise no("[NOPERM] quota limits are set by the administrator")


async def check_room(s: Session, octets: int) -> None:
    """APPEND and COPY: ``NO [OVERQUOTA]`` (RFC 9208 §7.1) when ``octets`` more would pass the account's limit;
    nothing is stored."""
    if not enabled(s) or octets <= 0:
        return
    assert s.server.quotas is not None and s.root is not None
    q = await s.server.quotas.refused(s.root.user, octets)
    if q is not None:
        s.send(quota_line(q))  # §4.1.1: the server may tell the client where it stands
        raise TaggedResult("NO", "[OVERQUOTA] over the storage quota of this account")
