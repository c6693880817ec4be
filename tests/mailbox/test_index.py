"""The mailbox index against a real Maildir on disk: UIDs survive, changes made behind its back are picked up."""

import os
import time

import pytest

from courrier.mailbox import flags as F
from courrier.mailbox import maildir
from courrier.mailbox.index import MailIndex, crlf_size, to_crlf


@pytest.fixture
def idx(tmp_path):
    return MailIndex(tmp_path / "courrier.db", tmp_path)


@pytest.fixture
def box(tmp_path):
    return maildir.ensure(tmp_path / "mail" / "example.test" / "bob")


def age(path):
    """Backdates the Maildir's directories so the mtime shortcut applies (as it does two seconds later)."""
    old = time.time() - 10
    for sub in ("new", "cur"):
        os.utime(path / sub, (old, old))


def test_new_files_get_ascending_uids_and_crlf_sizes(idx, box):
    maildir.write_new(box, [b"Subject: one\n\nbody\n"])
    maildir.write_new(box, [b"Subject: two\n\nbody\n"])
    snap = idx.sync(box)
    assert [m.uid for m in snap.messages] == [1, 2]
    assert snap.uidnext == 3
    m = snap.messages[0]
    assert m.size == crlf_size(b"Subject: one\n\nbody\n") == len(to_crlf(b"Subject: one\n\nbody\n")) == 22
    assert idx.read(box, m) == b"Subject: one\n\nbody\n"


def test_files_written_in_one_mtime_tick_get_uids_in_write_order(idx, box):
    """Our names carry M<usecs> without zero padding: M99 was written before M100 and must get the lower UID, even
    when both files share one mtime (coarse timestamps) and their names sort the other way as text."""
    for base, body in (("1700000000.M99P7Q1.host", b"Subject: first\n\n"),
                       ("1700000000.M100P7Q2.host", b"Subject: second\n\n")):
        (box / "new" / base).write_bytes(body)
        os.utime(box / "new" / base, (1700000000, 1700000000))
    snap = idx.sync(box)
    assert [(m.uid, m.base) for m in snap.messages] == [(1, "1700000000.M99P7Q1.host"), (2, "1700000000.M100P7Q2.host")]


def test_uids_and_uidvalidity_survive_a_new_index_object(tmp_path, idx, box):
    maildir.write_new(box, [b"a\n"])
    first = idx.sync(box)
    again = MailIndex(tmp_path / "courrier.db", tmp_path).sync(box)
    assert (again.uidvalidity, [m.uid for m in again.messages]) == (first.uidvalidity, [1])


def test_changes_behind_its_back(idx, box):
    """mutt or Dovecot rename (flags), delete and add files: the next sync sees all of it."""
    p1 = maildir.write_new(box, [b"one\n"])
    p2 = maildir.write_new(box, [b"two\n"])
    idx.sync(box)
    os.rename(p1, box / "cur" / (p1.name + ":2,FS"))  # another program marks it seen + flagged
    os.unlink(p2)
    maildir.write_new(box, [b"three\n"])
    snap = idx.sync(box)
    assert [(m.uid, sorted(m.flags)) for m in snap.messages] == [(1, [F.FLAGGED, F.SEEN]), (3, [])]
    assert snap.highestmodseq > 1


def test_unchanged_directories_are_not_listed_again(idx, box):
    maildir.write_new(box, [b"one\n"])
    age(box)
    a = idx.sync(box)
    assert idx.sync(box) is a  # same snapshot object: nothing re-read


def test_store_flags_renames_into_cur_keeping_foreign_letters(idx, box):
    p = maildir.write_new(box, [b"x\n"], subdir="cur", info="Sa")  # "a": a Dovecot keyword letter
    uid = idx.sync(box).messages[0].uid
    done = idx.store_flags(box, [(uid, frozenset({F.SEEN, F.ANSWERED, "$label1"}))])
    m = done[uid]
    assert m.file == f"cur/{p.name.split(':')[0]}:2,RSa"
    assert (box / m.file).exists() and not p.exists()
    assert idx.sync(box).messages[0].flags == {F.SEEN, F.ANSWERED, "$label1"}


def test_append_copy_move_expunge(tmp_path, idx, box):
    sent = maildir.ensure(box / ".Sent")
    trash = maildir.ensure(box / ".Trash")
    when = 1_700_000_000.0
    validity, uid = idx.append(sent, b"Subject: s\r\n\r\nbody\r\n", frozenset({F.SEEN}), when)
    assert uid == 1
    m = idx.sync(sent).messages[0]
    assert m.internaldate == when and m.flags == {F.SEEN}
    assert (sent / m.file).read_bytes() == b"Subject: s\n\nbody\n"  # LF on disk
    _, pairs = idx.copy(sent, [1], trash)
    assert pairs == [(1, 1)]
    assert len(idx.sync(sent).messages) == 1
    _, pairs = idx.copy(sent, [1], box, move=True)
    assert pairs == [(1, 1)] and idx.sync(sent).messages == ()
    inbox = idx.sync(box).messages
    assert inbox[0].flags == {F.SEEN} and inbox[0].internaldate == when
    assert idx.expunge(trash, [1]) == [1]
    assert idx.sync(trash).messages == () and os.listdir(trash / "cur") == []
    assert idx.sync(trash).uidnext == 2  # UIDs are never reused


def test_recent_is_claimed_once(idx, box):
    idx.sync(box)
    maildir.write_new(box, [b"x\n"])
    idx.sync(box)
    assert idx.recent_count(box) == 1
    assert idx.claim_recent(box) == {1}
    assert idx.claim_recent(box) == set()


def test_delivery_racing_sync_and_flag_changes_loses_nothing(tmp_path, idx, box):
    """Writers (delivery threads) and a reader (an IMAP session syncing and storing flags) at the same time:
    every message ends up indexed once, UIDs unique and ascending in arrival order per sync."""
    import threading

    n = 120
    seen_uids: set[int] = set()

    def deliver(k):
        for i in range(n // 4):
            maildir.write_new(box, [f"Subject: {k}-{i}\n\nx\n".encode()], sync=False)

    writers = [threading.Thread(target=deliver, args=(k,)) for k in range(4)]
    for w in writers:
        w.start()
    while any(w.is_alive() for w in writers):
        snap = idx.sync(box)
        uids = [m.uid for m in snap.messages]
        assert uids == sorted(set(uids))
        seen_uids.update(uids)
        if uids:
            idx.store_flags(box, [(uids[0], frozenset({F.SEEN}))])
    for w in writers:
        w.join()
    other = MailIndex(tmp_path / "courrier.db", tmp_path)  # a second process's view agrees
    final = idx.sync(box, force=True)
    assert len(final.messages) == n
    assert [m.uid for m in other.sync(box).messages] == [m.uid for m in final.messages]
    assert seen_uids <= {m.uid for m in final.messages}


def test_add_and_remove_apply_to_the_stored_flags(idx, box):
    """RFC 3501 §6.4.6 +FLAGS/-FLAGS against what is stored now: two writers with stale views both keep theirs."""
    maildir.write_new(box, [b"x\n"])
    uid = idx.sync(box).messages[0].uid
    idx.store_flags(box, [(uid, frozenset({F.SEEN}))], "add")
    idx.store_flags(box, [(uid, frozenset({F.FLAGGED, "$kw"}))], "add")
    current: dict = {}
    done = idx.store_flags(box, [(uid, frozenset({F.SEEN}))], "add", current)  # no change, still reported
    assert done == {} and current[uid].flags == {F.SEEN, F.FLAGGED, "$kw"}
    idx.store_flags(box, [(uid, frozenset({F.FLAGGED, F.RECENT}))], "remove")
    assert idx.sync(box).messages[0].flags == {F.SEEN, "$kw"}
    with pytest.raises(ValueError):
        idx.store_flags(box, [], "toggle")


def test_expunge_only_deleted_checks_the_flags_as_they_are_now(idx, box):
    """RFC 3501 §6.4.3: a message another program un-deleted on disk survives an EXPUNGE from a stale view."""
    p1 = maildir.write_new(box, [b"one\n"], subdir="cur", info="T")
    maildir.write_new(box, [b"two\n"], subdir="cur", info="T")
    idx.sync(box)
    os.rename(p1, box / "cur" / (p1.name.split(":")[0] + ":2,S"))  # mutt clears "T" (trashed = \Deleted)
    assert idx.expunge(box, [1, 2], only_deleted=True) == [2]
    assert [m.uid for m in idx.sync(box).messages] == [1]


def test_uidvalidity_is_never_given_twice_to_a_folder(tmp_path, idx, box):
    """RFC 3501 §2.3.1.1: after the folder's rows are forgotten (DELETE) or the whole index is lost, fresh UIDs
    come with a UIDVALIDITY the folder never had, whatever the clock says."""
    maildir.write_new(box, [b"x\n"])
    first = idx.sync(box).uidvalidity
    assert int((box / "courrier-uidvalidity").read_text()) == first
    idx.forget(box)
    second = idx.sync(box).uidvalidity
    assert second > first
    (tmp_path / "courrier.db").unlink()
    for extra in tmp_path.glob("courrier.db-*"):
        extra.unlink()
    third = MailIndex(tmp_path / "courrier.db", tmp_path).sync(box)
    # issue 16: the Maildir's courrier-uidlist keeps every UID, so the rebuilt index keeps the UIDVALIDITY too
    assert third.uidvalidity == second and [m.uid for m in third.messages] == [1]
    (box / "courrier-uidlist").unlink()  # without it the UIDs are new, and so is the UIDVALIDITY
    (tmp_path / "courrier.db").unlink()
    for extra in tmp_path.glob("courrier.db-*"):
        extra.unlink()
    third = MailIndex(tmp_path / "courrier.db", tmp_path).sync(box)
    assert third.uidvalidity > second and [m.uid for m in third.messages] == [1]
    # a folder deleted outright: the index's high-water mark keeps its number from coming back
    other = maildir.ensure(box / ".Other")
    idx2 = MailIndex(tmp_path / "courrier.db", tmp_path)
    v = idx2.sync(other).uidvalidity
    idx2.forget(other)
    import shutil

    shutil.rmtree(other)
    maildir.ensure(other)
    assert idx2.sync(other).uidvalidity > v


def test_recent_uids_does_not_claim(idx, box):
    idx.sync(box)
    maildir.write_new(box, [b"x\n"])
    idx.sync(box)
    assert idx.recent_uids(box) == {1} and idx.recent_uids(box) == {1}  # EXAMINE (RFC 3501 §6.3.2)
    assert idx.claim_recent(box) == {1} and idx.recent_uids(box) == set()


def test_expunge_records_are_bounded_and_raise_the_floor(tmp_path, idx, box, monkeypatch):
    """RFC 7162 §3.2.5.2: expunge records beyond VANISHED_KEEP go, oldest first; a client that synced before them
    is answered None (the caller names every missing UID) instead of an incomplete list."""
    from courrier.mailbox import index as I

    monkeypatch.setattr(I, "VANISHED_KEEP", 3)
    for i in range(6):
        maildir.write_new(box, [b"m%d\n" % i])
    snap = idx.sync(box)
    start = snap.highestmodseq
    for uid in range(1, 6):
        idx.expunge(box, [uid])
    assert idx.vanished(box, start) == [1, 2, 3, 4, 5]
    f = idx._folder(box)
    idx._rewrite_uidlist(f, idx._conn(), box)  # the compaction that prunes
    assert idx.vanished(box, start) is None
    assert idx.vanished(box, f.floor) == [3, 4, 5]
    # the uidlist keeps what the index keeps: a rebuild answers the same
    (tmp_path / "courrier.db").unlink()
    for extra in tmp_path.glob("courrier.db-*"):
        extra.unlink()
    again = MailIndex(tmp_path / "courrier.db", tmp_path)
    assert [m.uid for m in again.sync(box).messages] == [6]
    assert again.vanished(box, start) is None and again.vanished(box, f.floor) == [3, 4, 5]


def test_own_changes_skip_the_next_listing_but_foreign_ones_are_seen(idx, box, monkeypatch):
    """A sync right after the index's own change does not list the Maildir again (QRESYNC resyncs of big mailboxes
    stay fast), yet a rename another program makes afterwards is seen at the next sync."""
    for i in range(3):
        maildir.write_new(box, [b"m%d\n" % i])
    idx.sync(box)
    listings = []
    real = MailIndex._scan
    monkeypatch.setattr(MailIndex, "_scan", staticmethod(lambda p: listings.append(p) or real(p)))
    idx.store_flags(box, [(1, frozenset({"\\Seen"}))], "add")
    idx.expunge(box, [3])
    assert [m.uid for m in idx.sync(box).messages] == [1, 2] and listings == []
    time.sleep(0.01)
    p2 = next((box / "new").iterdir())
    os.rename(p2, box / "cur" / (p2.name + ":2,F"))  # mutt flags message 2
    snap = idx.sync(box)
    assert listings and "\\Flagged" in snap.messages[1].flags


def test_keywords_beyond_26_letters_stay_in_the_index(idx, box):
    """dovecot-keywords has 26 letters: further keywords are kept by the index alone, and survive a rename of the
    file by another program."""
    maildir.write_new(box, [b"m\n"])
    idx.sync(box)
    many = frozenset(f"k{i:02d}" for i in range(28))
    idx.store_flags(box, [(1, many)], "add")
    lines = (box / "dovecot-keywords").read_text().splitlines()
    assert len(lines) == 26
    name = next((box / "cur").iterdir()).name
    assert name.split(":2,")[1] == "abcdefghijklmnopqrstuvwxyz"
    time.sleep(0.01)
    p = next((box / "cur").iterdir())
    os.rename(p, p.with_name(p.name.replace(":2,", ":2,S")))  # mutt marks it seen
    flags = idx.sync(box).messages[0].flags
    assert flags == many | {"\\Seen"}
