"""Scenario 11: the envelope lives in the message file — delete the SQLite index, restart, and everything is back
with the same IDs (tags, Bcc, sender, read state); a plain restart keeps the IDs too."""

import os

from courrier.web.api import mailpit
from tests.e2e.capture_support import capture_server, envelopes, open_store, send


def body(i: int) -> bytes:
    return (f"From: a@sender.test\r\nTo: Bob <bob@dest.test>\r\nSubject: report {i}\r\n"
            f"Message-ID: <r{i}@sender.test>\r\n\r\nquarterly numbers {i}\r\n").encode()


def test_reindex_after_deleting_the_index(server_factory):
    srv = capture_server(server_factory)
    srv.start()
    ids = [send(srv.ports["smtp"], ["bob@dest.test", f"audit+q{i}@dest.test"], body(i), mail_from=f"s{i}@sender.test")
           for i in range(3)]
    store = open_store(srv.data, expect=3)
    try:
        store.set_read([ids[1]], True)
        before = {i: mailpit.summary(store.summary(i)) for i in ids}  # as the API shows them
        gets = {i: mailpit.message(store.get(i)) for i in ids}
    finally:
        store.close()
    srv.stop()

    # plain restart: same IDs
    srv.start()
    assert send(srv.ports["smtp"], ["x@y.test"], body(9)) not in ids
    store = open_store(srv.data)
    try:
        assert [mailpit.summary(store.summary(i)) for i in ids] == [before[i] for i in ids]
    finally:
        store.close()
    srv.stop()

    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(srv.data / f"courrier.db{suffix}")
        except FileNotFoundError:
            pass
    srv.start()  # the start-up scan rebuilds the index from the Maildir
    store = open_store(srv.data)
    try:
        assert store.counts() == (4, 3)
        for i in ids:
            assert mailpit.summary(store.summary(i)) == before[i]
            assert mailpit.message(store.get(i)) == gets[i]
        assert before[ids[0]]["Tags"] == ["q0"] and before[ids[1]]["Read"] is True
        assert [a["Address"] for a in before[ids[2]]["Bcc"]] == ["audit+q2@dest.test"]
        assert gets[ids[2]]["ReturnPath"] == "s2@sender.test"
        assert [m.id for m in store.search("quarterly -report").messages] == []
        assert [m.id for m in store.search("tag:q1").messages] == [ids[1]]
    finally:
        store.close()
    srv.stop()
    assert set(ids) <= set(envelopes(srv.data))
