"""The Sieve hook of local delivery (courrier/delivery/sieve.py) over a real Maildir store and database: where the
copies land with their flags, what is sent (redirect, vacation, rejection MDN), and that a broken or looping script
never loses a message (INBOX, one report per script version)."""

from __future__ import annotations

import email
import email.policy
import io

import pytest

from courrier.accounts import Accounts
from courrier.delivery.local import deliver_local
from courrier.delivery.sieve import SieveFilter, SieveRejected
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import NULL, parse_address
from courrier.mailbox.store import MaildirStore
from courrier.sieve.store import SieveStore

ME, OTHER = "me@example.test", "other@example.test"
MSG = (b"From: Bob <bob@example.org>\r\nTo: me@example.test\r\nSubject: [dev] build broken\r\n"
       b"Message-ID: <m1@example.org>\r\n\r\nThe build is broken.\r\n")


class World:
    def __init__(self, tmp) -> None:
        self.accounts = Accounts(tmp / "courrier.db")
        for a in (ME, OTHER):
            self.accounts.add(a, "secret")
        self.store = MaildirStore(tmp)
        self.scripts = SieveStore(tmp / "courrier.db")
        self.sent: list[tuple[str, list[str], bytes, str]] = []

        async def send(sender: str, rcpts: list[str], data: bytes, why: str) -> None:
            self.sent.append((sender, rcpts, data, why))

        self.sieve = SieveFilter(self.scripts, self.store, "mx.example.test", send=send)

    def script(self, text: str, account: str = ME) -> None:
        self.scripts.put(account, "main", text)
        self.scripts.activate(account, "main")

    async def deliver(self, msg: bytes = MSG, sender: str = "bob@example.org", to: tuple[str, ...] = (ME,),
                      may_refuse: bool = False) -> None:
        env = Envelope(mail_from=parse_address(sender) if sender else NULL,
                       rcpts=[Recipient(parse_address(a), mailbox=a) for a in to])
        await deliver_local(self.store, env, None, ReceivedMessage(io.BytesIO(msg), len(msg)), {a: a for a in to},
                            sieve=self.sieve, may_refuse=may_refuse)

    def folder(self, name: str, account: str = ME) -> list[tuple[email.message.Message, frozenset[str]]]:
        """(message, flags) in folder ``name``, from the index as IMAP sees them."""
        root = self.store.account_root(account)
        if not self.store.folder_exists(root, name):
            return []
        folder = self.store.folder(root, name)
        snap = self.store.index.sync(folder, force=True)
        out = []
        for m in snap.messages:
            data = self.store.index.read(folder, m)
            out.append((email.message_from_bytes(data, policy=email.policy.default), frozenset(m.flags)))
        return out


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.close()


async def test_no_script_delivers_to_inbox(world):
    await world.deliver()
    assert len(world.folder("INBOX")) == 1 and not world.sent


async def test_fileinto_create_and_flags(world):
    """RFC 5490 §3.2 :create makes the folder; RFC 5232 §5 :flags arrive with the message."""
    world.script('require ["fileinto", "mailbox", "imap4flags", "variables"];\n'
                 'if header :matches "subject" "[*] *" { fileinto :create :flags "\\\\Flagged $dev" "Lists.${1}"; }')
    await world.deliver()
    [(msg, flags)] = world.folder("Lists.dev")
    assert msg["Subject"] == "[dev] build broken" and msg["Delivered-To"] == ME
    assert flags == {"\\Flagged", "$dev"}
    assert world.folder("INBOX") == []


async def test_fileinto_missing_folder_without_create_keeps_in_inbox(world):
    world.script('require "fileinto"; fileinto "Nowhere";')
    await world.deliver()
    assert len(world.folder("INBOX")) == 1 and world.folder("Nowhere") == []


async def test_keep_with_flags_and_discard(world):
    world.script('require "imap4flags"; addflag "\\\\Seen"; keep;')
    await world.deliver()
    [(_, flags)] = world.folder("INBOX")
    assert flags == {"\\Seen"}
    world.script('discard;')
    await world.deliver()
    assert len(world.folder("INBOX")) == 1  # the discarded one is not there


async def test_runtime_error_goes_to_inbox_with_one_report_per_version(world):
    """A script error: the message in INBOX as without a script, and one note per script version."""
    world.script('require ["regex"]; if header :regex "subject" "([" { discard; }')  # a bad regex at run time
    await world.deliver()
    await world.deliver()
    inbox = world.folder("INBOX")
    subjects = sorted(str(m["Subject"]) for m, _ in inbox)
    assert subjects.count("[dev] build broken") == 2
    reports = [m for m, _ in inbox if "failed" in str(m["Subject"])]
    assert len(reports) == 1 and "bad regex" in reports[0].get_content()
    world.script('require ["regex"]; if header :regex "subject" "(((" { discard; }')  # a new version: a new note
    await world.deliver()
    assert len([m for m, _ in world.folder("INBOX") if "failed" in str(m["Subject"])]) == 2


async def test_reject_at_smtp_time_raises_550(world):
    """RFC 5429 §2.1.1: while the client waits, every mailbox rejecting → 550 5.7.1 and nothing stored."""
    world.script('require "reject"; reject text:\nWe do not want\nyour builds.\n.\n;')
    with pytest.raises(SieveRejected) as e:
        await world.deliver(may_refuse=True)
    assert e.value.reply.code == 550 and e.value.reply.status == "5.7.1"
    assert "We do not want your builds." in e.value.reply.text
    assert world.folder("INBOX") == [] and not world.sent


async def test_reject_later_sends_an_mdn_and_others_still_get_it(world):
    """Mixed recipients (or out of the queue): the rejecting account's sender gets an MDN (RFC 8098)."""
    world.script('require "reject"; reject "No thanks.";')
    await world.deliver(to=(ME, OTHER), may_refuse=True)
    assert world.folder("INBOX") == [] and len(world.folder("INBOX", OTHER)) == 1
    [(sender, rcpts, data, why)] = world.sent
    assert (sender, rcpts, why) == ("", ["bob@example.org"], "reject")
    mdn = email.message_from_bytes(data, policy=email.policy.default)
    assert mdn.get_content_type() == "multipart/report" and mdn["Content-Type"].params["report-type"] == \
        "disposition-notification"
    assert "No thanks." in data.decode() and "deleted" in data.decode()


async def test_ereject_later_sends_a_dsn(world):
    """RFC 5429 §2.1.1: ereject, when the SMTP answer is gone, is a DSN (RFC 3464) with 5.7.1."""
    world.script('require "ereject"; ereject "Go away.";')
    await world.deliver()
    [(sender, rcpts, data, why)] = world.sent
    assert (sender, rcpts, why) == ("", ["bob@example.org"], "reject")
    dsn = email.message_from_bytes(data, policy=email.policy.default)
    assert dsn["Content-Type"].params["report-type"] == "delivery-status"
    text = data.decode()
    assert "Status: 5.7.1" in text and "550 5.7.1 Go away." in text and "Final-Recipient: rfc822; me@example.test" \
        in text.replace("rfc822;me", "rfc822; me")


async def test_redirect_and_loop(world):
    world.script('redirect "boss@example.com";')
    await world.deliver()
    [(sender, rcpts, data, why)] = world.sent
    assert (sender, rcpts, why) == ("bob@example.org", ["boss@example.com"], "redirect")
    assert data.startswith(b"Delivered-To: me@example.test\r\n") and world.folder("INBOX") == []
    world.sent.clear()
    await world.deliver(msg=data)  # the redirected copy came back: not redirected again, kept
    assert not world.sent and len(world.folder("INBOX")) == 1


async def test_vacation_once_per_sender_and_rfc3834(world):
    world.script('require "vacation"; vacation :days 2 :subject "Away" "Back on Monday.";')
    await world.deliver()
    await world.deliver()  # within :days: no second reply (RFC 5230 §4.2)
    [(sender, rcpts, data, why)] = world.sent
    assert (sender, rcpts, why) == ("", ["bob@example.org"], "vacation")
    reply = email.message_from_bytes(data, policy=email.policy.default)
    assert reply["Auto-Submitted"].startswith("auto-replied") and reply["In-Reply-To"] == "<m1@example.org>"
    assert reply["References"] == "<m1@example.org>" and reply["Subject"] == "Away"
    assert reply["From"] == ME and reply.get_content().strip() == "Back on Monday."
    assert len(world.folder("INBOX")) == 2  # vacation keeps the message (implicit keep)


@pytest.mark.parametrize("extra,sender", [
    (b"", ""),                                              # RFC 5230 §4.6: never to <>
    (b"List-Id: <dev.lists.example.org>\r\n", "bob@example.org"),
    (b"Auto-Submitted: auto-generated\r\n", "bob@example.org"),  # RFC 3834 §2
    (b"Precedence: bulk\r\n", "bob@example.org"),
    (b"", "owner-dev@example.org"),
    (b"", "MAILER-DAEMON@example.org"),
])
async def test_vacation_never_to_lists_robots_or_null(world, extra, sender):
    world.script('require "vacation"; vacation "Away.";')
    await world.deliver(msg=extra + MSG, sender=sender)
    assert world.sent == []


async def test_vacation_not_addressed_to_me(world):
    """RFC 5230 §4.5: only for mail with the account (or :addresses) in To/Cc/Bcc."""
    world.script('require "vacation"; vacation "Away.";')
    await world.deliver(msg=MSG.replace(b"To: me@example.test", b"To: all@example.test"))
    assert world.sent == []
    world.script('require "vacation"; vacation :addresses "all@example.test" "Away.";')
    await world.deliver(msg=MSG.replace(b"To: me@example.test", b"To: all@example.test"))
    assert len(world.sent) == 1


async def test_include_personal(world):
    """RFC 6609: include :personal another of the account's scripts; return ends it."""
    world.scripts.put(ME, "lists", 'require ["fileinto", "mailbox", "include"]; '
                                   'if header :contains "subject" "[dev]" { fileinto :create "Dev"; return; } '
                                   'discard;')
    world.script('require "include"; include :personal "lists";')
    await world.deliver()
    assert len(world.folder("Dev")) == 1 and world.folder("INBOX") == []


async def test_a_script_lookup_that_waits_on_the_network_never_holds_the_loop(world):
    """The cluster's script store (``LOOKUP_BLOCKS``) answers from PostgreSQL on a version check or a cache miss; in
    an outage that waits up to ``[store] timeout``. Delivery asks it from a thread: other sessions go on meanwhile.
    Here the local store, with the flag set and a 0.3 s wait in its lookup, stands for it."""
    import asyncio
    import time

    class Slow(SieveStore):
        LOOKUP_BLOCKS = True

        def active(self, account):  # noqa: ANN001, ANN202
            time.sleep(0.3)
            return super().active(account)

    world.scripts.__class__ = Slow
    world.script('require ["fileinto", "mailbox"]; fileinto :create "Slow";')
    gaps = [0.0]

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    t = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await world.deliver()
    t.cancel()
    assert len(world.folder("Slow")) == 1
    assert max(gaps) < 0.2, f"the loop stood still {max(gaps):.2f} s during a 0.3 s lookup"
