"""LIST-EXTENDED (RFC 5258) on the raw protocol over a real listener: the capability, RECURSIVEMATCH with
CHILDINFO ("SUBSCRIBED") (§3.5), RECURSIVEMATCH alone refused (§3.1), the return options together."""

from __future__ import annotations

import pytest

from tests.access.imapsrv import listener
from tests.access.wire import Wire


@pytest.fixture
def w(tmp_path):
    with listener(tmp_path, []) as (port, _):
        c = Wire(port)
        for name in ("Fruit", "Fruit.Apple", "Fruit.Pear", "Veg", "Veg.Leek.Young"):
            assert c.status(f"CREATE {name}") == b"OK"
        assert c.status("SUBSCRIBE Fruit.Apple") == b"OK"
        assert c.status("SUBSCRIBE Veg.Leek.Young") == b"OK"
        yield c
        c.close()


def lines(w: Wire, command: str) -> list[bytes]:
    got = w.cmd(command)
    assert got[-1].split()[1] == b"OK", got
    return [ln.rstrip(b"\r\n") for ln in got[:-1]]


def test_capability(w):
    assert "LIST-EXTENDED" in w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].decode().split()


def test_recursivematch_childinfo(w):
    got = lines(w, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    # RFC 5258 §3.5: Fruit and Veg are not subscribed but hold subscribed descendants (Veg two levels down)
    assert b'* LIST (\\HasChildren) "." Fruit ("CHILDINFO" ("SUBSCRIBED"))' in got
    assert b'* LIST (\\HasChildren) "." Veg ("CHILDINFO" ("SUBSCRIBED"))' in got
    assert b'* LIST (\\HasNoChildren \\Subscribed) "." INBOX' in got  # subscribed itself: no CHILDINFO
    got = lines(w, 'LIST (SUBSCRIBED) "" "%"')
    assert not any(b"Fruit" in ln or b"Veg" in ln for ln in got)
    got = lines(w, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Fruit.*"')
    assert got == [b'* LIST (\\HasNoChildren \\Subscribed) "." Fruit.Apple']
    # the subscribed child matches too: it is listed itself, its parent without CHILDINFO (as imaptest's listext)
    apple = [b'* LIST (\\HasNoChildren \\Subscribed) "." Fruit.Apple']
    assert lines(w, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*Apple"') == apple
    assert lines(w, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Fruit" "Fruit.Apple")') == apple
    got = lines(w, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Fruit" "Veg.%")')
    assert got == [b'* LIST (\\HasChildren) "." Fruit ("CHILDINFO" ("SUBSCRIBED"))',
                   b'* LIST (\\HasChildren) "." Veg.Leek ("CHILDINFO" ("SUBSCRIBED"))']


def test_recursivematch_alone_is_bad(w):
    assert w.status('LIST (RECURSIVEMATCH) "" "*"') == b"BAD"
    assert w.status('LIST (RECURSIVEMATCH REMOTE) "" "*"') == b"BAD"
    assert w.status('LIST (BOGUS) "" "*"') == b"BAD"


def test_return_options_together(w):
    got = lines(w, 'LIST "" ("Fruit" "Veg.*") RETURN (SUBSCRIBED CHILDREN STATUS (MESSAGES SIZE))')
    assert b'* LIST (\\HasChildren) "." Fruit' in got
    assert b'* LIST (\\HasNoChildren \\Subscribed) "." Veg.Leek.Young' in got
    assert b"* STATUS Fruit (MESSAGES 0 SIZE 0)" in got
