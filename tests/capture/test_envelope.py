"""The envelope header: round trip, folding, hostile values, and stripping back to the message as sent."""

import email

from courrier.capture.envelope import CapturedEnvelope, new_id, read_envelope, strip_trace, valid_id


def test_new_ids_are_distinct_and_valid():
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 22 and valid_id(i) for i in ids)


def test_round_trip_with_awkward_values():
    env = CapturedEnvelope(received=1764245263.123456, mail_from='"odd; user"@x.test', rcpts=[f"r{i}+t@ex.test" for i in range(60)] + ["Ünï@ex.test"],
                           client="[::1]:2525", helo="h; x=1", tls="TLSv1.3 TLS_AES_256_GCM_SHA384", user="100%",
                           qid="Q1", tags=["a b", "ç"])
    head = env.header()
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.splitlines())
    back = read_envelope(f"Return-Path: <x>\n{head}Received: by h; now\nSubject: s\n\nbody\n".encode())
    assert back == env


def test_only_our_leading_field_counts():
    forged = CapturedEnvelope(id=new_id(), rcpts=["evil@x.test"]).header()
    data = f"Subject: s\n{forged}\nbody\n".encode()
    assert read_envelope(data) is None  # not in the trace block: ignored


def test_strip_trace_gives_back_the_message():
    env = CapturedEnvelope(rcpts=["b@y.test"])
    original = b"From: a@x.test\nSubject: hi\n\nbody\n"
    stored = b"Return-Path: <a@x.test>\n" + env.header().encode() + b"Received: from h\n\tby me; date\n" + original
    assert strip_trace(stored) == original
    assert strip_trace(original) == original
    msg = email.message_from_bytes(stored)
    assert msg["X-Courrier-Envelope"] and msg["Subject"] == "hi"  # still a valid RFC 5322 message
