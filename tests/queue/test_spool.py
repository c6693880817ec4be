"""The spool record format: framed, checksummed, END-terminated; anything short of that is never delivered."""

import threading

import pytest

from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.path import parse_address
from courrier.queue.spool import (
    MAGIC,
    DirSyncer,
    Spool,
    SpoolError,
    _record,
    decode,
    encode,
    envelope_json,
)


def env(qid="Q1"):
    return Envelope(queue_id=qid, mail_from=parse_address("a@a.test"),
                    rcpts=[Recipient(parse_address("b@b.test"), notify=("FAILURE",), orcpt="rfc822;b@b.test")],
                    received_at=1.5, ret="HDRS", envid="x", body="8BITMIME", smtputf8=False, origin="test")


def test_round_trip_large_message_in_chunks(tmp_path):
    msg = b"Subject: x\r\n\r\n" + b"0123456789" * 300_000  # > 1 MiB: several M records
    spool = Spool(tmp_path)
    spool.write(env(), [msg])
    e, m = spool.read("Q1")
    assert m == msg and e == env()
    assert spool.read_envelope("Q1") == env()
    assert spool.queued_ids() == ["Q1"] and not list(spool.tmp.iterdir())


def test_every_truncation_is_refused():
    data = b"".join(encode(env(), [b"hello\r\n"]))
    decode(data)
    for cut in range(len(data)):
        with pytest.raises(SpoolError):
            decode(data[:cut])


def test_every_bit_flip_is_refused():
    data = bytearray(b"".join(encode(env(), [b"hello world\r\n"])))
    for i in range(len(MAGIC), len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x20
        with pytest.raises(SpoolError):
            decode(bytes(flipped))


def test_trailing_garbage_refused():
    data = b"".join(encode(env(), [b"x"]))
    with pytest.raises(SpoolError):
        decode(data + b"more")


def test_incoming_then_adopt_and_quarantine(tmp_path):
    spool = Spool(tmp_path)
    p = spool.write(env("Q2"), [b"m"], incoming=True)
    assert spool.incoming_files() == [p]
    spool.adopt(p)
    assert spool.queued_ids() == ["Q2"]
    bad = spool.msg / "Q3"
    bad.write_bytes(MAGIC + b"junk")
    dest = spool.quarantine(bad)
    assert dest.parent == spool.corrupt and dest.exists()


def test_duplicate_qid_refused(tmp_path):
    spool = Spool(tmp_path)
    spool.write(env("Q4"), [b"m"])
    with pytest.raises(FileExistsError):
        spool.write(env("Q4"), [b"other"])
    assert spool.read("Q4")[1] == b"m" and not list(spool.tmp.iterdir())


def test_directory_fsyncs_are_shared(tmp_path):
    syncer = DirSyncer(tmp_path)
    barrier = threading.Barrier(16)

    def worker():
        barrier.wait()
        for _ in range(10):
            syncer.sync()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert syncer._done == 160  # every caller covered…
    assert syncer.syncs < 160  # …by fewer fsyncs than callers: concurrent renames share one


def test_files_written_before_the_one_envelope_still_load(tmp_path):
    """The ``E`` record as SpoolEnvelope wrote it (keys and order): read into mail.Envelope, written back the same."""
    old = (b'{"qid":"OLD1","sender":"Ann@A.test","rcpts":[{"address":"\\"b c\\"@b.test","notify":["SUCCESS"],'
           b'"orcpt":"rfc822;b@b.test"},{"address":"d@D.test","notify":[],"orcpt":null}],"received_at":1.5,'
           b'"ret":"HDRS","envid":"e","body":"8BITMIME","smtputf8":false,"origin":"sendmail uid=1000"}')
    msg = b"Subject: s\r\n\r\nx\r\n"
    data = MAGIC + _record(b"E", old) + b"".join(list(encode(env("X"), [msg]))[2:])  # the M and Z records
    e, m = decode(data)
    assert m == msg and e.queue_id == "OLD1" and str(e.mail_from) == "Ann@A.test" and e.origin == "sendmail uid=1000"
    assert [str(r.address) for r in e.rcpts] == ['"b c"@b.test', "d@D.test"]
    assert e.rcpts[0].notify == ("SUCCESS",) and e.rcpts[0].orcpt == "rfc822;b@b.test" and e.ret == "HDRS"
    assert envelope_json(e) == old
