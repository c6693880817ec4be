"""One reply type for the server, the peers and delivery: ``permanent`` follows the code unless set (the queue's
4.4.7 expiry), an Outcome is a reply plus who said it, and the delivery side's own replies are named, with the
texts the delivery log and the bounces have always shown."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest

from courrier.delivery import replies as R
from courrier.delivery.outcome import Outcome
from courrier.delivery.remote import split_reply
from courrier.smtp import replies as server
from courrier.smtp.replies import Reply


def test_permanent_follows_the_code_by_default():
    assert (Reply(250, "2.0.0", "Ok").ok, Reply(250, "2.0.0", "Ok").permanent) == (True, False)
    assert Reply(451, "4.3.0", "later").temporary and not Reply(451, "4.3.0", "later").permanent
    assert Reply(550, "5.1.1", "no").permanent and not Reply(550, "5.1.1", "no").temporary


def test_permanent_can_be_said():
    final = Reply(451, "4.4.7", "expired", permanent=True)
    assert final.permanent and not final.temporary and not final.ok
    assert final.with_text("other").permanent  # a reworded reply stays final
    assert Reply(550, "5.7.1", "try again", permanent=False).temporary
    with pytest.raises(FrozenInstanceError):
        final.permanent = False  # type: ignore[misc]


def test_status_falls_back_on_the_class():
    assert [Reply(c, None, "x").status for c in (250, 421, 554)] == ["2.0.0", "4.0.0", "5.0.0"]
    assert Reply(554, "4.4.7", "x").status == "4.4.7"


def test_wire_form_unchanged_by_the_flag():
    assert Reply(554, "4.4.7", "a\nb", permanent=True).wire == b"554-4.4.7 a\r\n554 4.4.7 b\r\n"
    assert server.NO_SUCH_USER.wire == b"550 5.1.1 No such user here\r\n"


def test_outcome_is_a_reply_and_where_it_came_from():
    o = Outcome(Reply(550, "5.1.1", "no such user"), host="mx.b.test", address="192.0.2.1:25", tls="TLSv1.3")
    assert (o.code, o.enhanced, o.text, o.status) == (550, "5.1.1", "no such user", "5.1.1")
    assert o.permanent and not o.ok and str(o) == "550 5.1.1 no such user"
    assert replace(o, remote_dsn=True).reply is o.reply
    assert Outcome(R.EXPIRED.filled(age="5d"), host="queue").permanent  # the flag is the reply's, not recomputed


def test_split_reply_keeps_the_peer_reply_and_its_class():
    o = split_reply(452, "4.2.2 mailbox\nfull", "mx.b.test", "192.0.2.1:25", "TLSv1.3")
    assert o.reply == Reply(452, "4.2.2", "mailbox full") and not o.permanent
    assert (o.host, o.address, o.tls) == ("mx.b.test", "192.0.2.1:25", "TLSv1.3")
    assert split_reply(550, "no enhanced code").reply == Reply(550, None, "no enhanced code")


def test_named_delivery_replies_read_as_before():
    # these strings are what the delivery log and the bounce's Diagnostic-Code show: they must not drift
    assert str(R.NULL_MX.filled(domain="b.test")) == "556 5.1.10 b.test accepts no mail (null MX, RFC 7505)"
    assert str(R.NO_SUCH_DOMAIN.filled(domain="b.test")) == "550 5.1.2 domain b.test does not exist (NXDOMAIN)"
    assert str(R.DNS_TEMPFAIL.filled(domain="b.test", notes="a; b")) == \
        "451 4.4.3 DNS lookup for b.test failed: a; b"
    assert str(R.CONNECT_FAILED.filled(where="mx[192.0.2.1]:25", reason="Connection refused")) == \
        "451 4.4.1 connect to mx[192.0.2.1]:25: Connection refused"
    assert str(R.ALL_MX_FAILED.filled(last=Outcome(Reply(550, "5.0.0", "no")))) == \
        "451 4.4.1 all mail exchangers failed; last: 550 5.0.0 no"
    assert str(R.NEEDS_SMTPUTF8) == ("553 5.6.7 the recipient's server does not support SMTPUTF8, needed for these "
                                     "addresses (RFC 6531 §3.2)")
    assert str(R.EXPIRED.filled(age="5d")) == "554 4.4.7 message expired after 5d in the queue"
    assert str(R.LOOP.filled(max_hops=50)) == "554 5.4.6 too many Received: headers (more than 50): mail loop"
    assert str(R.LOCAL_FAILED.filled(error="No space left on device")) == \
        "451 4.3.0 local delivery failed: No space left on device"


def test_every_delivery_reply_is_consistent():
    named = {k: v for k, v in vars(R).items() if isinstance(v, Reply)}
    assert len(named) >= 20
    for name, r in named.items():
        assert r.enhanced and r.enhanced.split(".")[0] in "245", name
        # the enhanced class agrees with the reply, except where the reply says it is final (expiry)
        assert r.enhanced[0] == str(r.code)[0] or (name == "EXPIRED" and r.permanent), name
        assert r.ok == (r.code < 400) and r.permanent == (r.code >= 500 or name == "EXPIRED"), name
