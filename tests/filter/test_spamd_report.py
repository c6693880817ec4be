"""spamd's REPORT answer read into rules (``courrier/filter/spamd.py``, as Mailpit's
``internal/spamassassin/spamc/spamc.go`` reads it): the rows after "Content analysis details", a wrapped
description joined into one line. The e2e scenario 81 reads a real spamd's answer."""

from courrier.filter.spamd import SpamRule, parse_reply, parse_report_rules

ANSWER = (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 400\r\nSpam: True ; 1002.4 / 5.0\r\n\r\n"
          b"Spam detection software, running on the system \"h\",\r\nhas identified this incoming email as possible "
          b"spam.\r\n\r\nContent analysis details:   (1002.4 points, 5.0 required)\r\n\r\n"
          b" pts rule name              description\r\n"
          b"---- ---------------------- --------------------------------------------------\r\n"
          b"1000 GTUBE                  BODY: Generic Test for Unsolicited Bulk Email\r\n"
          b"-0.0 NO_RELAYS              Informational: message was not relayed via\r\n"
          b"                            SMTP\r\n"
          b" 2.4 MISSING_DATE           Missing Date: header\r\n")


def test_report_rows():
    assert parse_report_rules(ANSWER) == (
        SpamRule(1000.0, "GTUBE", "BODY: Generic Test for Unsolicited Bulk Email"),
        SpamRule(-0.0, "NO_RELAYS", "Informational: message was not relayed via SMTP"),
        SpamRule(2.4, "MISSING_DATE", "Missing Date: header"))
    assert parse_reply(ANSWER).score == 1002.4
