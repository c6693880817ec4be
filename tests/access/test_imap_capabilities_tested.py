"""Every capability the IMAP server advertises (before and after login, with a quota) is named, quoted, in some
test file of tests/ besides this one: advertising a capability means a test proves it (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.access.imapsrv import listener
from tests.access.wire import Wire

TESTS = Path(__file__).resolve().parents[1]


def advertised(port: int) -> set[str]:
    out: set[str] = set()
    w = Wire(port, login=False)
    out |= set(w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].decode().split()[2:])
    w.close()
    w = Wire(port)
    out |= set(w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].decode().split()[2:])
    w.close()
    return out


def test_every_advertised_capability_has_a_test(tmp_path):
    with listener(tmp_path, [], quota=1 << 20) as (port, _):
        caps = advertised(port)
    assert {"IMAP4rev1", "IMAP4rev2", "QUOTA"} <= caps
    text = "\n".join(p.read_text(errors="replace") for p in TESTS.rglob("*.py") if p.resolve() != Path(__file__))
    missing = []
    for cap in sorted(caps):
        name = cap.split("=", 1)[0] + "=" if cap.startswith("APPENDLIMIT=") else cap  # its value is configuration
        if not re.search(r"""["'\s(]""" + re.escape(name) + r"""(?:["'\s)]|$)""" if not name.endswith("=")
                         else re.escape(name), text, re.M):
            missing.append(cap)
    assert not missing, f"advertised without a test naming them: {missing}"
