"""Issue 16's later IMAP extensions where they meet the shared command modules, so each of those takes them with
one line: the CAPABILITY names, the STATUS items, and the MAILBOXID of SELECT and CREATE.

SORT/THREAD (RFC 5256, cmd_sort.py), ESORT (RFC 5267), SORT=DISPLAY (RFC 5957), BINARY (RFC 3516, binary.py),
OBJECTID (RFC 8474, objectid.py), SAVEDATE (RFC 8514, savedate.py), STATUS=SIZE (RFC 8438), STATUS DELETED
(RFC 9051 §6.3.11) and DELETED-STORAGE (RFC 9208 §4.3 / §5.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courrier.access.imap import binary, cmd_sort, objectid, rev2, savedate, utf8
from courrier.mailbox import flags as F

if TYPE_CHECKING:
    from courrier.access.imap.session import Session
    from courrier.mailbox.api import Folder, Snapshot


def capabilities(logged_in: bool) -> list[str]:
    """What is advertised beside IMAP4rev1's own list (RFC 3501 §7.2.1)."""
    return [rev2.CAPABILITY, utf8.CAPABILITY, *cmd_sort.CAPABILITIES, binary.CAPABILITY, objectid.CAPABILITY, savedate.CAPABILITY, "STATUS=SIZE",
            "LIST-EXTENDED"]  # RFC 5258 (cmd_list.py)


ENABLE = {rev2.CAPABILITY: rev2.enabled, utf8.CAPABILITY: None}  # RFC 9051 §6.3.1, RFC 6855 §3


def enable(s: Session, names: list[str]) -> list[str]:
    """RFC 5161 §3.1: the extensions of this module that ``names`` turns on now (each named once in ENABLED)."""
    out = []
    for n in names:
        for cap, then in ENABLE.items():
            if n.upper() == cap.upper() and cap not in s.enabled and cap not in out:
                s.enabled.add(cap)
                out.append(cap)
                if then is not None:
                    then(s)
    return out


# RFC 8438 §3 SIZE, RFC 9051 §6.3.11 DELETED, RFC 9208 §4.3 DELETED-STORAGE, RFC 8474 §4 MAILBOXID,
# RFC 7889 §5 APPENDLIMIT
STATUS_ITEMS = ("SIZE", "DELETED", "DELETED-STORAGE", "MAILBOXID", "APPENDLIMIT")


async def mailbox_id(s: Session, path: Folder, uidvalidity: int, name: str) -> str:
    return await s.store.run(objectid.mailbox_id, s.store, path, uidvalidity, name)


async def status_values(s: Session, name: str, path: Folder, snap: Snapshot, items: list[str]) -> dict[str, str]:
    """The values of this module's STATUS items among ``items``, as they are written after the item's name."""
    out: dict[str, str] = {}
    if "SIZE" in items:  # RFC 8438 §3: the sum of RFC822.SIZE
        out["SIZE"] = str(sum(m.size for m in snap.messages))
    if "DELETED" in items:  # RFC 9051 §6.3.11: messages with \Deleted
        out["DELETED"] = str(sum(1 for m in snap.messages if F.DELETED in m.flags))
    if "DELETED-STORAGE" in items:  # RFC 9208 §4.3: what EXPUNGE would free, in the STORAGE unit (1024 octets)
        out["DELETED-STORAGE"] = str((sum(m.size for m in snap.messages if F.DELETED in m.flags) + 1023) // 1024)
    if "APPENDLIMIT" in items:  # RFC 7889 §5: the same limit for every mailbox (the CAPABILITY's value)
        out["APPENDLIMIT"] = str(s.server.limits.max_message_size)
    if "MAILBOXID" in items:  # RFC 8474 §4
        out["MAILBOXID"] = f"({await mailbox_id(s, path, snap.uidvalidity, name)})"
    return out
