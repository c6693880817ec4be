"""Server mode's message source over real Maildirs and the real mailbox index: mailbox names, IDs, summaries,
the envelope read back from local delivery's trace fields, search, \\Seen/expunge, and live events."""

from __future__ import annotations

import asyncio

import pytest
from starlette.exceptions import HTTPException

from courrier.accounts import Accounts
from courrier.capture.records import Address
from courrier.mail.envelope import Envelope, Hop, TLSInfo
from courrier.mail.path import parse_path
from courrier.mail.trace import delivery_trace
from courrier.mailbox import flags as F
from courrier.mailbox.store import MaildirStore
from courrier.web import mailsearch
from courrier.web.mailboxes import Mailbox, MailboxError, MailboxSource, decode_id, encode_id, envelope_of
from courrier.web.mailview import MailboxView

BOB = "bob@example.test"


@pytest.fixture
def src(tmp_path):
    accounts = Accounts(tmp_path / "courrier.db")
    accounts.add(BOB, "pw")
    accounts.add("admin@example.test", "pw", is_admin=True)
    store = MaildirStore(tmp_path)
    yield MailboxSource(store, accounts)
    store.close()


def delivered(subject: str, body: str = "hello", sender: str = "alice@sender.test", to: str = BOB,
              extra: str = "") -> bytes:
    """A message as local delivery stores it: Return-Path, Delivered-To and Received first (LF)."""
    hop = Hop(by="mx.example.test", listener="smtp", protocol="ESMTPS", client_ip="192.0.2.7", client_port=4000,
              helo="client.sender.test", tls=TLSInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256))
    env = Envelope(mail_from=parse_path("<bounces@sender.test>", allow_null=True, utf8=False))
    trace = delivery_trace(env, hop, BOB, BOB)
    msg = f"From: Alice <{sender}>\nTo: {to}\nSubject: {subject}\nMessage-ID: <{subject}@x>\n{extra}\n{body}\n"
    return trace + msg.encode()


def put(src: MailboxSource, mb: Mailbox, data: bytes, flags: frozenset[str] = frozenset()) -> int:
    return src.store.index.append(mb.path, data, flags)[1]


def test_mailbox_names_are_checked_and_normalized(src):
    mb = src.parse("Bob@Example.test")
    assert (mb.account, mb.folder, mb.name) == (BOB, "INBOX", "bob@example.test/INBOX")
    assert mb.path == src.store.root / "example.test" / "bob"
    assert src.parse(f"{BOB}/inbox").folder == "INBOX"
    assert src.parse(f"{BOB}/Archive.2026").path.name == ".Archive.2026"
    for bad in (f"{BOB}/../carol", f"{BOB}/.hidden", "../x@y/INBOX", f"{BOB}/a/b", "nobody", f"{BOB}/*"):
        with pytest.raises(MailboxError):
            src.parse(bad)
    assert src.check(mb)  # an INBOX not delivered to yet counts (empty)
    assert src.check(src.parse(f"{BOB}/Sent"))  # the default folders exist from `user add` on (issue 11 item 14)
    assert not src.check(src.parse(f"{BOB}/Projects"))  # any other folder must exist
    assert not src.check(src.parse("carol@example.test"))  # unknown account


def test_ids_are_stable_and_self_describing(src):
    mb = src.parse(f"{BOB}/&AMk-t&AOk-")  # folder names as IMAP has them: modified UTF-7 ("Été")
    mid = encode_id(mb, 1764245263, 42)
    assert decode_id(mid) == (f"{BOB}/&AMk-t&AOk-", 1764245263, 42)
    assert all(c.isalnum() or c in "-_" for c in mid)  # URL-safe as is
    for bad in ("", "latest", "1-2", "x-2-Ym9i", "1-2-***", "1-2-" + "A" * 2000):
        assert decode_id(bad) is None


def test_summary_envelope_and_find(src):
    mb = src.parse(BOB)
    uid = put(src, mb, delivered("hi there", "first line of the body"))
    snap = src.snapshot(mb)
    mid = encode_id(mb, snap.uidvalidity, uid)
    found = src.find(mid)
    assert found is not None and found[1].uid == uid
    s = src.summary(mb, snap, found[1])
    assert s.id == mid and s.subject == "hi there" and s.read is False
    assert s.from_ == Address("Alice", "alice@sender.test") and s.snippet == "first line of the body"
    assert s.bcc == []  # Delivered-To is in To
    info = src.info(mb, snap.uidvalidity, found[1])
    env = envelope_of(info, found[1])
    assert (env.mail_from, env.rcpts, env.client, env.helo) == ("bounces@sender.test", [BOB], "192.0.2.7",
                                                                  "client.sender.test")
    assert env.tls == "TLSv1.3 TLS_AES_256_GCM_SHA384" and env.qid and env.listener == "smtp"
    # a wrong UIDVALIDITY or an expunged UID no longer finds it
    assert src.find(encode_id(mb, snap.uidvalidity + 1, uid)) is None
    src.expunge(mb, [uid])
    assert src.find(mid) is None


def test_search_terms(src, monkeypatch):
    mb = src.parse(BOB)
    put(src, mb, delivered("quarterly report", "numbers inside"), frozenset({F.SEEN, "work"}))
    put(src, mb, delivered("lunch", "see you at noon", sender="carol@friends.test"))
    put(src, mb, delivered("old news", "nothing", extra="Cc: Dave <dave@example.test>\n"))
    snap = src.snapshot(mb)

    def q(query: str) -> list[str]:
        return [src.info(mb, snap.uidvalidity, m).subject for m in mailsearch.matching(src, mb, snap, query)]

    assert q("") == ["old news", "lunch", "quarterly report"]  # newest first
    assert q("subject:REPORT") == ["quarterly report"]
    assert q("from:carol") == ["lunch"] and q("-from:carol") == ["old news", "quarterly report"]
    assert q("cc:dave") == ["old news"] and q("addressed:dave") == ["old news"]
    assert q("is:read") == ["quarterly report"] and q("is:unread") == ["old news", "lunch"]
    assert q("tag:WORK") == ["quarterly report"] and q("is:tagged") == ["quarterly report"]
    assert q('"at noon"') == ["lunch"]  # body text
    assert q("message-id:<lunch@x>") == ["lunch"]
    assert q("before:2000-01-01") == [] and len(q("after:2000-01-01")) == 3
    assert q("larger:10k") == [] and len(q("smaller:10k")) == 3
    # bodies beyond the newest BODY_SCAN_MAX messages are not read; headers still are
    monkeypatch.setattr(mailsearch, "BODY_SCAN_MAX", 1)
    assert q("numbers") == [] and q("quarterly") == ["quarterly report"]


async def test_view_changes_go_through_the_index_and_wake_watchers(src):
    mb = src.parse(BOB)
    uid = put(src, mb, delivered("one"))
    view = MailboxView(src, None, BOB)  # default: the account's own INBOX
    page = await view.page(None, 0, 50)
    mid = page.messages[0].id
    assert page.total == 1 and page.unread == 1

    events: list[dict] = []
    woke = asyncio.Event()
    task = asyncio.create_task(view.watch(lambda e: (events.append(e), woke.set()), poll=30))
    await asyncio.sleep(0.05)
    try:
        await view.set_read([mid], True)  # \Seen through store_flags, then notify
        await asyncio.wait_for(woke.wait(), 5)
        assert events[0] == {"Type": "update", "Data": {"ID": mid, "Read": True}}
        assert events[-1]["Type"] == "stats" and events[-1]["Data"]["Unread"] == 0
        assert F.SEEN in src.snapshot(mb).messages[0].flags
        assert (src.store.root / "example.test" / "bob" / src.snapshot(mb).messages[0].file).name.endswith(":2,S")

        events.clear()
        woke.clear()
        put(src, mb, delivered("two"))
        src.store.notify(mb.path)  # what local delivery does after writing
        await asyncio.wait_for(woke.wait(), 5)
        assert events[0]["Type"] == "new" and events[0]["Data"].subject == "two"

        events.clear()
        woke.clear()
        await view.delete([mid])
        await asyncio.wait_for(woke.wait(), 5)
        assert events[0] == {"Type": "delete", "Data": {"ID": mid}}
        assert [m.uid for m in src.snapshot(mb).messages] == [uid + 1]
    finally:
        task.cancel()

    await view.set_tags([encode_id(mb, src.snapshot(mb).uidvalidity, uid + 1)], ["$Work", "later"])
    assert await view.tags() == ["$Work", "later"]
    await view.rename_tag("later", "soon")
    assert await view.tag_counts() == {"$Work": 1, "soon": 1}
    with pytest.raises(ValueError):
        await view.set_tags([mid], ["two words"])
    with pytest.raises(HTTPException) as e:
        MailboxView(src, None, None)  # no account to default to
    assert e.value.status_code == 400
    with pytest.raises(HTTPException) as e:
        await MailboxView(src, "carol@example.test", None).page(None, 0, 10)
    assert e.value.status_code == 404
