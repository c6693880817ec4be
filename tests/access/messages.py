"""Awkward real-world shaped messages (LF line endings, as stored in Maildir) shared by the access tests."""

SIMPLE = b"""From: Alice Example <alice@else.test>
To: bob@example.test
Subject: simple
Date: Mon, 02 Mar 2026 10:00:00 +0000
Message-ID: <simple@else.test>

Hello Bob.
.a line starting with a dot
"""

ALTERNATIVE = b"""From: "Carol, Q." <carol@else.test>
To: Bob <bob@example.test>, dave@example.test
Cc: erin@else.test
Subject: alternative
Date: Tue, 03 Mar 2026 11:00:00 +0100
Message-ID: <alt@else.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

preamble
--b1
Content-Type: text/plain; charset=utf-8

plain part
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>html part</p>
--b1--
epilogue
"""

NESTED = b"""From: frank@else.test
To: bob@example.test
Subject: nested
Date: Wed, 04 Mar 2026 12:00:00 +0000
Message-ID: <nested@else.test>
In-Reply-To: <alt@else.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

inner plain
--inner
Content-Type: text/html

<b>inner html</b>
--inner--

--outer
Content-Type: message/rfc822

From: gina@else.test
To: frank@else.test
Subject: forwarded
Date: Thu, 05 Mar 2026 08:00:00 +0000

forwarded body
line two
--outer
Content-Type: application/pdf; name="doc.pdf"
Content-Disposition: attachment; filename="doc.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer--
"""

NON_ASCII = """From: =?utf-8?q?Ren=C3=A9e_Dupr=C3=A9?= <renee@else.test>
To: bob@example.test
Subject: =?utf-8?b?Q2Fmw6kgZMOpasOgIHZ1?=
Date: Fri, 06 Mar 2026 09:30:00 +0100
Message-ID: <utf8@else.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Le café est déjà servi — où êtes-vous ?
""".encode()

ALL = {"simple": SIMPLE, "alternative": ALTERNATIVE, "nested": NESTED, "non_ascii": NON_ASCII}


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")
