"""Scenario 05: malformed input gets protocol errors, never a crash — random commands, bytes and sequences."""

import random
import smtplib
import socket

VERBS = ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "VRFY", "HELP", "QUIT", "STARTTLS",
         "AUTH", "EXPN", "XCLIENT", "GET", "mail", "rcpt"]
ARGS = ["", "x", "FROM:<a@b.test>", "TO:<bob@example.test>", "FROM:<>", "TO:<>", "FROM:<a@b.test> SIZE=abc",
        "FROM:<a@b.test> BODY=BINARYMIME", "TO:<bob@example.test> NOTIFY=", "TO:<\"unterminated@x>",
        "PLAIN", "PLAIN =", "PLAIN !!!notbase64", "LOGIN", "CRAM-MD5", "10", "0 LAST", "-1", "99999999999999",
        "5 LAST extra", "FROM:<" + "a" * 300 + "@b.test>", "TO:<b@" + "c" * 300 + ">", "\x00\x01\x02",
        "FROM:<ä@ü.test> SMTPUTF8", "TO:<@a,@b:bob@example.test>"]


def random_line(rnd: random.Random) -> bytes:
    kind = rnd.random()
    if kind < 0.7:
        line = f"{rnd.choice(VERBS)} {rnd.choice(ARGS)}".encode("utf-8", "surrogateescape")
    elif kind < 0.85:
        line = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 80)))
    else:
        line = b"X" * rnd.choice([511, 512, 513, 2000, 13000])
    return line + rnd.choice([b"\r\n", b"\n", b"\r\n", b"\r\r\n"])


def test_random_sessions_never_break_the_server(server_factory):
    mx = server_factory(sections={"limits": {"idle_timeout": "3s", "data_timeout": "3s"}})
    mx.add_user("bob@example.test")
    mx.start()
    rnd = random.Random(20260)
    for _ in range(60):
        s = socket.create_connection(("127.0.0.1", mx.ports["smtp"]), timeout=5)
        try:
            s.recv(1024)
            payload = b"".join(random_line(rnd) for _ in range(rnd.randint(1, 25)))
            s.sendall(payload)
            s.settimeout(0.3)
            try:
                while s.recv(65536):
                    pass
            except (TimeoutError, ConnectionResetError):
                pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            s.close()
    # still serving, and a normal transaction still works
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"], timeout=10) as c:
        assert c.sendmail("a@else.test", ["bob@example.test"], b"Subject: after fuzz\r\n\r\nok\r\n") == {}
    assert mx.proc.poll() is None
    log = mx.log()
    assert "smtp.internal_error" not in log and "Traceback" not in log, log[-3000:]
