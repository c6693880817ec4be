"""CaptureStore on a real data dir: storing, Mailpit-shaped reads, search, read state, deletion, retention,
re-indexing from the files alone, and events."""

import base64
import json
import os
import sqlite3
from email.message import EmailMessage

import pytest

from courrier.capture.envelope import read_envelope
from courrier.capture.records import Address
from courrier.capture.store import CaptureStore
from courrier.config import CaptureConfig
from courrier.web.api import mailpit


def make(tmp_path, **kw) -> CaptureStore:
    return CaptureStore(tmp_path, CaptureConfig(**kw), db_path=tmp_path / "courrier.db", hostname="mx.test")


@pytest.fixture
def store(tmp_path):
    s = make(tmp_path)
    yield s
    s.close()


def plain(subject="hello", body="hi there", to="Bob <bob@example.test>", **headers) -> bytes:
    m = EmailMessage()
    m["From"] = "Alice Example <alice@example.test>"
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = headers.pop("message_id", "<m1@example.test>")
    m["Date"] = "Fri, 27 Nov 2026 10:00:00 +0000"
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return m.as_bytes()


def rich() -> bytes:
    m = EmailMessage()
    m["From"] = "=?utf-8?q?Z=C3=A9lie?= <zelie@example.test>"
    m["To"] = "bob@example.test"
    m["Cc"] = "Carol <carol@example.test>"
    m["Subject"] = "=?utf-8?b?" + base64.b64encode("Réunion trimestrielle".encode()).decode() + "?="
    m.set_content("Le texte brut, café.\n", cte="quoted-printable")
    m.add_alternative("<html><head><style>p{}</style></head><body><p>Le <b>HTML</b> &amp; co</p>"
                      "<script>alert(1)</script></body></html>", subtype="html", cte="base64")
    m.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="rapport.pdf")
    return m.as_bytes()


def test_add_get_raw(store):
    data = rich()
    id_ = store.add_bytes(data, mail_from="bounce@example.test",
                          rcpts=["bob@example.test", "carol@example.test", "dave+vip@example.test"])
    s = store.summary(id_)
    assert b"Message-ID" not in data and s.message_id == f"{id_}@mailpit"  # added at arrival, as Mailpit
    data = f"Message-ID: <{id_}@mailpit>\r\n".encode() + data
    assert s.subject == "Réunion trimestrielle"
    assert s.from_ == Address("Zélie", "zelie@example.test")
    assert s.to == [Address("", "bob@example.test")]
    assert s.cc == [Address("Carol", "carol@example.test")]
    assert s.bcc == [Address("", "dave+vip@example.test")]  # envelope-only recipient
    assert s.tags == ["vip"] and s.attachments == 1 and s.read is False
    assert s.snippet.startswith("Le texte brut, café.")
    assert s.size == len(data.replace(b"\r\n", b"\n")) + data.replace(b"\r\n", b"\n").count(b"\n")
    m = store.get(id_)
    assert m.return_path == "bounce@example.test"
    assert m.text == "Le texte brut, café.\n" and "<b>HTML</b>" in m.html
    [att] = m.attachments
    assert att.filename == "rapport.pdf" and att.content_type == "application/pdf" and att.size == 13
    assert len(att.sha256) == 64
    ctype, fname, content = store.part(id_, att.part_id)
    assert (ctype, fname, content) == ("application/pdf", "rapport.pdf", b"%PDF-1.4 fake")
    raw = store.raw(id_)
    assert raw == data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # as sent (Message-ID added), CRLF
    assert store.raw(id_, trace=True).startswith(b"Return-Path: <bounce@example.test>\r\nX-Courrier-Envelope:")
    assert store.headers(id_)["Subject"] == ["Réunion trimestrielle"]
    assert store.envelope(id_).rcpts[2] == "dave+vip@example.test"
    assert store.get("nope") is None and store.raw("../../etc/passwd") is None


def test_list_order_counts_and_search(store):
    ids = [store.add_bytes(plain(subject=f"n{i}", body=f"body {i} banana" if i % 2 else f"body {i}",
                                 message_id=f"<m{i}@x.test>"), mail_from="a@x.test", rcpts=["bob@example.test"])
           for i in range(5)]
    page = store.list(start=1, limit=2)
    assert [m.id for m in page.messages] == [ids[3], ids[2]]  # newest first
    assert (page.total, page.unread, page.messages_count, page.start) == (5, 5, 5, 1)
    assert {m.id for m in store.search("banana").messages} == {ids[1], ids[3]}
    assert {m.id for m in store.search("-banana").messages} == {ids[0], ids[2], ids[4]}
    assert [m.id for m in store.search("subject:n4").messages] == [ids[4]]
    assert [m.id for m in store.search("message-id:<m2@x.test>").messages] == [ids[2]]
    assert store.search("from:alice").messages_count == 5
    assert store.search('"body 3 banana"').messages_count == 1
    assert store.search("to:nobody").messages_count == 0
    store.set_read([ids[0]], True)
    r = store.search("is:read")
    assert [m.id for m in r.messages] == [ids[0]] and r.total == 5 and r.unread == 4
    assert store.search("is:unread").messages_count == 4
    assert store.search("has:attachment").messages_count == 0
    assert store.search("after:2000-01-01 before:2999-01-01").messages_count == 5
    assert store.search("before:2000-01-01").messages_count == 0


def test_read_state_is_the_maildir_seen_flag(store):
    id_ = store.add_bytes(plain(), mail_from="a@x.test", rcpts=["b@y.test"])
    assert store.path(id_).parent.name == "new"
    assert store.set_read([id_], True) == 1
    p = store.path(id_)
    assert p.parent.name == "cur" and p.name.endswith(":2,S")
    assert store.set_read(None, False) == 1
    assert store.path(id_).name.endswith(":2,") and store.counts() == (1, 1)


def test_delete_and_truncate(store):
    ids = [store.add_bytes(plain(subject=s), mail_from="a@x.test", rcpts=["b@y.test"]) for s in ("x1", "x2", "y")]
    files = [store.path(i) for i in ids]
    assert store.delete([ids[0], "unknown"]) == 1 and not files[0].exists()
    assert store.delete_search("subject:x") == 1 and not files[1].exists()
    assert store.delete(None) == 1 and store.counts() == (0, 0)
    assert not any(list((store.maildir / sub).iterdir()) for sub in ("new", "cur", "tmp"))


def test_retention_max_messages(tmp_path):
    s = make(tmp_path, max_messages=3)
    try:
        ids = [s.add_bytes(plain(subject=str(i)), mail_from="a@x.test", rcpts=["b@y.test"]) for i in range(5)]
        assert [m.id for m in s.list().messages] == ids[:1:-1]
        assert len(list((s.maildir / "new").iterdir())) == 3
    finally:
        s.close()


def test_retention_max_age(tmp_path):
    s = make(tmp_path, max_age=3600)
    try:
        old = s.add_bytes(plain(), mail_from="a@x.test", rcpts=["b@y.test"])
        s.index.conn.execute("UPDATE capture_messages SET created = created - 7200 WHERE id = ?", (old,))
        new = s.add_bytes(plain(), mail_from="a@x.test", rcpts=["b@y.test"])
        assert s.prune() == 1  # what the background task of start() runs
        assert [m.id for m in s.list().messages] == [new]
    finally:
        s.close()


def test_reindex_from_files_alone(tmp_path):
    s = make(tmp_path)
    a = s.add_bytes(rich(), mail_from="bounce@example.test", rcpts=["bob@example.test", "x+t1@example.test"],
                    user="app", helo="app.local")
    b = s.add_bytes(plain(), mail_from="", rcpts=["b@y.test"])
    s.set_read([b], True)
    before = {i: mailpit.summary(s.summary(i)) for i in (a, b)}  # as the API shows them
    s.close()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(tmp_path / f"courrier.db{suffix}")
        except FileNotFoundError:
            pass
    s = make(tmp_path)
    try:
        assert s.counts() == (0, 0)
        assert s.scan() == 2
        assert {i: mailpit.summary(s.summary(i)) for i in (a, b)} == before  # same IDs, envelope, tags, read state
        assert s.get(b).return_path == ""
        assert s.reindex() == 2 and mailpit.summary(s.summary(a)) == before[a]
    finally:
        s.close()


def test_foreign_file_is_adopted(tmp_path):
    s = make(tmp_path)
    try:
        (s.maildir / "new" / "123.foreign").write_bytes(plain(subject="dropped in").replace(b"\r\n", b"\n"))
        assert s.scan() == 1
        [m] = s.list().messages
        assert m.subject == "dropped in" and m.to[0].address == "bob@example.test"
        env = read_envelope(s.path(m.id).read_bytes())
        assert env.id == m.id  # written into the file: stable from now on
        assert not (s.maildir / "new" / "123.foreign").exists()
    finally:
        s.close()


def test_vanished_file_is_forgotten(store):
    id_ = store.add_bytes(plain(), mail_from="a@x.test", rcpts=["b@y.test"])
    store.path(id_).unlink()
    assert store.get(id_) is None
    assert store.scan() == 0 and store.counts() == (0, 0)


def test_events(store):
    seen = []
    cb = store.events.subscribe(seen.append)
    id_ = store.add_bytes(plain(), mail_from="a@x.test", rcpts=["b@y.test"])
    store.set_read([id_], True)
    store.delete([id_])
    store.delete(None)
    store.events.unsubscribe(cb)
    store.add_bytes(plain(), mail_from="a@x.test", rcpts=["b@y.test"])
    types = [e["Type"] for e in seen]
    assert types == ["new", "stats", "update", "stats", "delete", "stats", "truncate", "stats"]
    assert seen[0]["Data"].id == id_ and seen[1]["Data"]["Total"] == 1
    assert seen[2]["Data"] == {"ID": id_, "Read": True}
    assert seen[4]["Data"] == {"ID": id_}


def test_index_lives_in_courrier_db(store):
    store.add_bytes(plain(), mail_from="a@x.test", rcpts=["b@y.test"])
    conn = sqlite3.connect(store.maildir.parent / "courrier.db")
    assert conn.execute("SELECT count(*) FROM capture_messages").fetchone()[0] == 1


def test_scan_follows_other_clients(store):
    """IMAP/POP3 clients share the Maildir: flags set, files moved or expunged by them reach the index."""
    a = store.add_bytes(plain(subject="a"), mail_from="a@x.test", rcpts=["b@y.test"])
    b = store.add_bytes(plain(subject="b"), mail_from="a@x.test", rcpts=["b@y.test"])
    pa = store.path(a)
    os.rename(pa, store.maildir / "cur" / (pa.name + ":2,FS"))  # what an IMAP client's \Seen \Flagged does
    store.path(b).unlink()  # an expunge
    seen = []
    store.events.subscribe(seen.append)
    assert store.scan() == 0
    assert store.summary(a).read is True and store.summary(b) is None
    assert {e["Type"] for e in seen} == {"update", "delete", "prune", "stats"}
    # a file indexed meanwhile by the writer thread is the same message, not a copy to adopt
    store._index_existing(store.path(a))
    assert store.counts() == (1, 0) and store.path(a).exists()



def test_a_message_renamed_between_lookup_and_read_is_still_read(store, monkeypatch):
    """An IMAP client (or a read mark from a parallel request) renames the file new/ → cur/ just after the store found
    it: the read retries the lookup instead of answering "no such message" (the UI saw 404 on a parallel fetch)."""
    id_ = store.add_bytes(plain(), mail_from="a@x.test", rcpts=["b@y.test"])
    before = store.raw(id_)
    assert before is not None
    real_path = CaptureStore.path
    calls = []

    def path_then_rename(self, ident):
        where = real_path(self, ident)
        if not calls and where is not None:  # the first lookup loses the race: the file moves right after it
            calls.append(where)
            os.rename(where, self.maildir / "cur" / (where.name.split(":")[0] + ":2,S"))
        return where

    monkeypatch.setattr(CaptureStore, "path", path_then_rename)
    assert store.raw(id_) == before
    assert calls, "the race was not staged"


def test_header_search(store):
    """``header:Name:text`` (decoded, unfolded value, any case) and ``header:Name`` (present) — issue 14."""
    a = store.add_bytes(plain("php", X_Mailer="PHPMailer 6.9.1 (https://github.com/PHPMailer)",
                              X_Campaign="=?utf-8?q?Rentr=C3=A9e_2026?=", message_id="<a@x>"),
                        mail_from="a@example.test", rcpts=["bob@example.test"])
    b = store.add_bytes(plain("node", X_Mailer="nodemailer (6.9.8; +https://nodemailer.com/)",
                              List_Id="<news.example.test>", message_id="<b@x>"),
                        mail_from="a@example.test", rcpts=["bob@example.test"])

    def ids(q):
        return sorted(m.id for m in store.search(q, start=0, limit=-1).messages)

    assert ids("header:X-Mailer:phpmailer") == [a]
    assert ids("header:x-mailer:NODEMAILER") == [b]
    assert ids('header:X-Campaign:"rentrée 2026"') == [a]  # RFC 2047 decoded
    assert ids("header:List-Id") == [b] and ids("-header:List-Id") == [a]
    assert ids("header:X-Mailer") == sorted([a, b])
    assert ids("header:X-Mailer:%") == [] and ids("header:Subject:node") == [b]
    assert ids("header:Return-Path") == []  # our trace block is no header the client sent


def test_header_search_backfills_rows_indexed_before_the_column(store):
    """Rows indexed before migration 0063 have no ``headers`` (NULL): the next scan reads them from the files."""
    a = store.add_bytes(plain("old", X_Mailer="Legacy/1.0"), mail_from="a@example.test", rcpts=["bob@example.test"])
    store.index.conn.execute("UPDATE capture_messages SET headers = NULL")
    assert store.search("header:X-Mailer:legacy", start=0, limit=-1).messages == []
    store.scan()
    assert [m.id for m in store.search("header:X-Mailer:legacy", start=0, limit=-1).messages] == [a]
    (left,) = store.index.conn.execute("SELECT count(*) FROM capture_messages WHERE headers IS NULL").fetchone()
    assert left == 0


def test_header_values_are_bounded(store):
    """A hostile message cannot make its row large: 200 fields, 2 KiB per value, 64 KiB in all."""
    many = "".join(f"X-F{i}: {'v' * 3000}\r\n" for i in range(400))
    data = (many + "Subject: big\r\n\r\nbody\r\n").encode()
    store.add_bytes(data, mail_from="a@example.test", rcpts=["bob@example.test"])
    (h,) = store.index.conn.execute("SELECT headers FROM capture_messages").fetchone()
    pairs = json.loads(h)
    assert len(pairs) <= 200 and all(len(v) <= 2048 for _, v in pairs) and len(h) < 80 * 1024
