"""Issue 16's smaller IMAP extensions over a real listener on loopback, on the raw protocol (tests/access/wire.py):
ID (RFC 2971), LITERAL+ (RFC 7888), SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), ESEARCH (RFC 4731) and
LIST-STATUS (RFC 5819). Each is checked in CAPABILITY too: advertised means tested here."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading

import pytest

from courrier import __version__
from courrier.access.auth import Authenticator
from courrier.access.imap.session import IMAPServer
from courrier.accounts import Accounts
from courrier.config import Config
from courrier.mailbox import maildir
from courrier.mailbox.store import MaildirStore
from courrier.net.limits import ConnectionLimiter
from courrier.net.listener import StreamListener
from tests.access.clients import PASSWORD, USER
from tests.access.wire import Wire


@pytest.fixture
def port(tmp_path):
    """A real IMAP listener (its own event loop in a thread) on an account holding five messages in INBOX."""
    cfg = dataclasses.replace(Config(), data_dir=tmp_path, domains=("example.test",))
    accounts = Accounts(cfg.db_path)
    accounts.add(USER, PASSWORD)
    store = MaildirStore(tmp_path)
    box = maildir.ensure(store.account_root(USER))
    for i in range(5):
        maildir.write_new(box, [f"Subject: m{i}\n\nbody {'even' if i % 2 == 0 else 'odd'}\n".encode()])
    loop = asyncio.new_event_loop()
    server = IMAPServer(store=store, auth=Authenticator(cfg, accounts, store), tls_context=None,
                        limits=cfg.limits, hostname="mx.test")
    lst = StreamListener("imap", server.handler(False), ConnectionLimiter(cfg.limits))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = asyncio.run_coroutine_threadsafe(loop.create_server(lst.factory, "127.0.0.1", 0), loop).result(10)
    yield srv.sockets[0].getsockname()[1]

    async def stop() -> None:  # sessions ended on their loop, so no coroutine is left to a closed one
        srv.close()
        await lst.shutdown()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    store.close()


def caps(w: Wire) -> set[str]:
    line = w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0]
    return set(line.decode().split()[2:])


# ---------------------------------------------------------------------------- ID, RFC 2971


def test_id_answers_name_and_version_before_and_after_login(port):
    """RFC 2971 §3.1: valid in any state; the server's own parameters in one untagged ID."""
    w = Wire(port, login=False)
    assert "ID" in caps(w)
    got = w.cmd("ID NIL")
    assert got[0] == f'* ID ("name" "courrier" "version" "{__version__}")\r\n'.encode()
    assert got[-1].split()[1] == b"OK"
    w.cmd(f"LOGIN {USER} {PASSWORD}")
    assert w.status('ID ("name" "imaptest" "version" NIL "os" "linux")') == b"OK"


def test_id_list_is_bounded_by_rfc_2971_section_3_3(port):
    """RFC 2971 §3.3: at most 30 field-value pairs, fields ≤ 30 octets, values ≤ 1024 octets; values NIL or strings."""
    w = Wire(port)
    pairs = " ".join(f'"f{i}" "v"' for i in range(30))
    assert w.status(f"ID ({pairs})") == b"OK"
    assert w.status(f'ID ({pairs} "f30" "v")') == b"BAD"  # a 31st pair
    assert w.status('ID ("name")') == b"BAD"  # a field without its value
    assert w.status(f'ID ("{"f" * 31}" "v")') == b"BAD"
    assert w.status(f'ID ("name" "{"v" * 1024}")') == b"OK"
    assert w.status(f'ID ("name" "{"v" * 1025}")') == b"BAD"
    assert w.status("ID (name value)") == b"BAD"  # §4: fields and values are strings, not atoms
    assert w.status("ID") == b"BAD"
    assert w.status("ID NOOP") == b"BAD"
    assert w.status("NOOP") == b"OK"  # the session goes on after each BAD


# ---------------------------------------------------------------------------- LITERAL+, RFC 7888


def test_non_synchronizing_literals_need_no_continuation(port):
    """RFC 7888 §3: ``{N+}`` is followed by its octets at once; the server sends no "+" before or after login."""
    w = Wire(port, login=False)
    assert "LITERAL+" in caps(w)
    w.send(b"a LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(USER), USER.encode(), len(PASSWORD), PASSWORD.encode()))
    assert w.line().startswith(b"a OK")  # no "+ Ready" line came first
    assert "LITERAL+" in caps(w)
    w.send(b"b SELECT {5+}\r\nINBOX\r\n")
    got = w.read_response(b"b")
    assert not any(ln.startswith(b"+") for ln in got) and got[-1].startswith(b"b OK")
    big = b"x" * 60_000  # after login a non-synchronizing literal is bounded like a synchronizing one (64 KiB)
    w.send(b"c SEARCH BODY {%d+}\r\n%s\r\n" % (len(big), big))
    got = w.read_response(b"c")
    assert got == [b"* SEARCH\r\n", got[-1]] and got[-1].startswith(b"c OK")


def test_before_login_a_non_synchronizing_literal_over_4096_octets_ends_the_session(port):
    """RFC 7888 §4: LITERAL-'s 4096-octet bound holds before authentication; a non-synchronizing literal is already on
    its way, so the server cannot refuse it and read on: BYE. A synchronizing one of the same size gets its "+" (it
    stays within the pre-login bound of 8 KiB) and the command its answer."""
    w = Wire(port, login=False)
    w.send(b"a LOGIN {4096+}\r\n" + b"u" * 4096 + b" x\r\n")
    assert w.line().startswith(b"a NO")  # 4096 octets: taken, and the login just fails
    w.send(b"b LOGIN {5000}\r\n")
    assert w.line().startswith(b"+")
    w.send(b"u" * 5000 + b" x\r\n")
    assert w.line().startswith(b"b NO")
    w.send(b"c LOGIN {4097+}\r\n")
    assert w.line().startswith(b"* BYE")
    w.close()


def test_after_login_a_non_synchronizing_literal_over_the_bound_ends_the_session(port):
    """RFC 7888 §4: a non-synchronizing literal larger than the server takes cannot be skipped: BYE, not a hang."""
    w = Wire(port)
    w.send(b"a SEARCH BODY {%d+}\r\n" % (1 << 20))
    assert w.line().startswith(b"* BYE")
    w.close()


# ---------------------------------------------------------------------------- SPECIAL-USE, RFC 6154


def listed(lines: list[bytes]) -> dict[str, set[str]]:
    """LIST responses → mailbox name → attributes."""
    out = {}
    for ln in lines:
        m = re.match(rb'\* LIST \(([^)]*)\) "\." "?([^"\r]*)"?\r\n', ln)
        if m:
            out[m.group(2).decode()] = set(m.group(1).decode().split())
    return out


def test_special_use_attributes_on_the_well_known_folders(port):
    """RFC 6154 §2: \\Sent \\Drafts \\Junk \\Trash \\Archive on the folders of those names, in plain LIST too."""
    w = Wire(port)
    assert "SPECIAL-USE" in caps(w)
    assert w.status("CREATE Work") == b"OK"
    got = listed(w.cmd('LIST "" *'))
    for name in ("Sent", "Drafts", "Junk", "Trash", "Archive"):
        assert "\\" + name in got[name], got
    assert got["Work"] == {"\\HasNoChildren"} and got["INBOX"] == {"\\HasNoChildren"}


def test_list_special_use_selection_and_return_option(port):
    """RFC 6154 §3: the SPECIAL-USE selection option lists only mailboxes with a special use; RETURN (SPECIAL-USE)
    gives their attributes (RFC 5258 §3 extended LIST syntax)."""
    w = Wire(port)
    w.cmd("CREATE Work")
    got = w.cmd('LIST (SPECIAL-USE) "" *')
    assert got[-1].split()[1] == b"OK"
    assert set(listed(got)) == {"Sent", "Drafts", "Junk", "Trash", "Archive"}
    got = listed(w.cmd('LIST "" ("INBOX" "Junk" "Work") RETURN (SPECIAL-USE)'))
    assert set(got) == {"INBOX", "Junk", "Work"} and "\\Junk" in got["Junk"]
    assert set(listed(w.cmd('LIST (SPECIAL-USE) "" "J*" RETURN (SPECIAL-USE)'))) == {"Junk"}
    assert set(listed(w.cmd('LIST (REMOTE) "" "W*"'))) == {"Work"}  # RFC 5258 §3.1: REMOTE alone selects all
    assert w.status('LIST (BOGUS) "" *') == b"BAD"  # RFC 5258 §3: unknown options are BAD
    assert w.status('LIST "" * RETURN (BOGUS)') == b"BAD"


def test_list_subscribed_selection_and_return(port):
    """RFC 5258 §3.1/§3.2/§3.4: SUBSCRIBED selects subscribed names, \\Subscribed marks them, \\NonExistent a
    subscribed name with no mailbox."""
    w = Wire(port)
    w.cmd("CREATE Gone")
    w.cmd("SUBSCRIBE Gone")
    w.cmd("DELETE Gone")
    w.cmd("CREATE Work")
    got = listed(w.cmd('LIST (SUBSCRIBED) "" *'))
    assert "Work" not in got and {"\\Subscribed", "\\NonExistent"} <= got["Gone"] and "\\Subscribed" in got["Sent"]
    got = listed(w.cmd('LIST "" * RETURN (SUBSCRIBED)'))
    assert "\\Subscribed" not in got["Work"] and "\\Subscribed" in got["Sent"] and "Gone" not in got


def test_create_special_use(port):
    """RFC 6154 §3 CREATE-SPECIAL-USE: a use is granted to the folder whose name carries it; any other is
    NO [USEATTR] and creates nothing."""
    w = Wire(port)
    assert "CREATE-SPECIAL-USE" in caps(w)
    assert w.status("DELETE Junk") == b"OK"
    assert w.status("CREATE Junk (USE (\\junk))") == b"OK"
    assert "\\Junk" in listed(w.cmd('LIST "" Junk'))["Junk"]
    got = w.cmd("CREATE Spam (USE (\\Junk))")
    assert got[-1].split()[1:3] == [b"NO", b"[USEATTR]"]
    assert listed(w.cmd('LIST "" Spam')) == {}
    assert w.cmd("CREATE Stuff (USE (\\All))")[-1].split()[1:3] == [b"NO", b"[USEATTR]"]
    assert w.status("CREATE Stuff (USE ())") == b"OK"  # no use asked: a plain CREATE
    assert w.status("CREATE Other (SIZE 4)") == b"BAD"


# ---------------------------------------------------------------------------- ESEARCH, RFC 4731


def es(w: Wire, command: str) -> bytes:
    """The ESEARCH response to ``command`` after its correlator, which must name the command's tag (RFC 4731 §3.1)."""
    got = w.cmd(command)
    assert got[-1].split()[1] == b"OK", got
    prefix = b'* ESEARCH (TAG "t%d") ' % w.n
    assert len(got) == 2 and got[0].startswith(prefix), got
    return got[0][len(prefix):].rstrip(b"\r\n")


def test_esearch_min_max_count_all(port):
    """RFC 4731 §3.1: one ``* ESEARCH (TAG "t")`` response with what RETURN asked for; ALL as a sequence-set."""
    w = Wire(port)
    assert "ESEARCH" in caps(w)
    w.cmd("SELECT INBOX")
    assert es(w, "SEARCH RETURN (MIN MAX COUNT ALL) BODY even") == b"MIN 1 MAX 5 COUNT 3 ALL 1,3,5"  # 1, 3, 5
    assert es(w, "SEARCH RETURN (COUNT) ALL") == b"COUNT 5"
    assert es(w, "SEARCH RETURN () ALL") == b"ALL 1:5"  # () is (ALL)
    assert es(w, "SEARCH RETURN (MIN ALL COUNT) CHARSET UTF-8 BODY nowhere") == b"COUNT 0"  # no MIN, MAX, ALL
    assert w.cmd("SEARCH ALL")[0] == b"* SEARCH 1 2 3 4 5\r\n"  # without RETURN: RFC 3501's answer


def test_uid_esearch(port):
    """RFC 4731 §3.1: the UID form says UID after the tag correlator and answers in UIDs."""
    w = Wire(port)
    w.cmd("SELECT INBOX")
    w.cmd("STORE 1 +FLAGS (\\Deleted)")
    w.cmd("EXPUNGE")  # UIDs 2..5 are now messages 1..4
    assert es(w, "UID SEARCH RETURN (MIN MAX COUNT ALL) BODY odd") == b"UID MIN 2 MAX 4 COUNT 2 ALL 2,4"
    assert es(w, "UID SEARCH RETURN (ALL) 1:*") == b"UID ALL 2:5"
    assert w.status("SEARCH RETURN (SAVE) ALL") == b"BAD"  # SEARCHRES (RFC 5182) is not offered
    assert w.status("SEARCH RETURN MIN ALL") == b"BAD"


# ---------------------------------------------------------------------------- LIST-STATUS, RFC 5819


def test_list_status_follows_each_selectable_mailbox(port):
    """RFC 5819 §2: RETURN (STATUS (items)) sends each selectable mailbox's STATUS right after its LIST response,
    none for a \\Noselect name; the items are STATUS's (RFC 3501 §6.3.10)."""
    w = Wire(port)
    assert "LIST-STATUS" in caps(w)
    w.cmd("CREATE Parent.Child")
    w.cmd("DELETE Parent")  # Parent.Child keeps Parent listed, as \Noselect
    w.cmd("SELECT INBOX")
    w.cmd("STORE 2 +FLAGS (\\Seen)")
    got = w.cmd('LIST "" * RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')
    assert got[-1].split()[1] == b"OK"
    i = got.index(b'* LIST (\\HasNoChildren) "." INBOX\r\n')
    assert got[i + 1] == b"* STATUS INBOX (MESSAGES 5 UNSEEN 4 UIDNEXT 6)\r\n"
    j = next(k for k, ln in enumerate(got) if ln.endswith(b'"." Sent\r\n'))
    assert got[j + 1] == b"* STATUS Sent (MESSAGES 0 UNSEEN 0 UIDNEXT 1)\r\n"
    j = next(k for k, ln in enumerate(got) if ln.endswith(b'"." Parent.Child\r\n'))
    assert got[j + 1] == b"* STATUS Parent.Child (MESSAGES 0 UNSEEN 0 UIDNEXT 1)\r\n"
    lists = [ln for ln in got if ln.startswith(b"* LIST")]
    statuses = [ln for ln in got if ln.startswith(b"* STATUS")]
    noselect = [ln for ln in lists if b"\\Noselect" in ln]
    assert noselect == [b'* LIST (\\HasChildren \\Noselect) "." Parent\r\n']
    assert len(statuses) == len(lists) - len(noselect)
    for k, ln in enumerate(got[:-1]):
        if b"\\Noselect" in ln:
            assert not got[k + 1].startswith(b"* STATUS"), got


def test_list_status_with_special_use_and_bad_items(port):
    """RFC 5819 §2 with RFC 6154 §3: the selection narrows what gets a STATUS; an unknown item or a STATUS without
    its item list is BAD (RFC 5258 §3)."""
    w = Wire(port)
    got = w.cmd('LIST (SPECIAL-USE) "" * RETURN (SPECIAL-USE STATUS (MESSAGES))')
    assert sorted(ln for ln in got if ln.startswith(b"* STATUS")) == [
        b"* STATUS %s (MESSAGES 0)\r\n" % n for n in (b"Archive", b"Drafts", b"Junk", b"Sent", b"Trash")]
    assert w.status('LIST "" * RETURN (STATUS (BOGUS))') == b"BAD"
    assert w.status('LIST "" * RETURN (STATUS)') == b"BAD"
    assert w.status('LIST "" * RETURN (STATUS ())') == b"BAD"
