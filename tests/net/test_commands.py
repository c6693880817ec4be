"""The shared command-row shape and the ``table`` helper that checks a protocol's rows when it is built."""

from __future__ import annotations

import pytest

from courrier.access.imap.commands import COMMANDS as IMAP
from courrier.access.pop3.commands import COMMANDS as POP3
from courrier.net.commands import Command, TableError, table
from courrier.smtp.commands import COMMANDS as SMTP

PHASES = ("start", "ready", "busy")
READY = frozenset({"ready"})


def row(name: str = "NOOP", **kw) -> Command[str]:
    kw.setdefault("phases", READY)
    kw.setdefault("rfc", "RFC 5321 §4.1.1.9")
    return Command(name, f"do_{name.lower()}", **kw)


def test_rows_by_name_and_the_columns_they_answer():
    t = table([row("NOOP"), row("MAIL", phases=frozenset({"ready", "busy"}), flags=frozenset({"junk"}),
                                 refusals=(("start", "send HELO first"),))], phases=PHASES, flags=("junk",))
    assert list(t) == ["NOOP", "MAIL"]
    mail = t["MAIL"]
    assert mail.allowed("busy") and not mail.allowed("start")
    assert mail.refusal("start", "default") == "send HELO first"  # the row's own reply for that phase
    assert t["NOOP"].refusal("start", "default") == "default"  # else the protocol's
    assert mail.has("junk") and not t["NOOP"].has("junk")
    assert mail.handler == "do_mail" and not mail.ends_group and not mail.before_tls


def test_rows_are_values():
    with pytest.raises(AttributeError):
        row().phases = frozenset()  # type: ignore[misc]


@pytest.mark.parametrize("rows,why", [
    ([row("NOOP"), row("NOOP")], "listed twice"),
    ([row("noop")], "upper-case"),
    ([row("NO OP")], "upper-case"),
    ([row("")], "upper-case"),
    ([row(phases=frozenset())], "valid in no phase"),
    ([row(phases=frozenset({"gone"}))], "unknown phases"),
    ([row(rfc="")], "no RFC section"),
    ([row(needs_arg=True, no_arg=True)], "needs an argument and forbids one"),
    ([row(flags=frozenset({"jnuk"}))], "unknown flags"),
    ([row(refusals=(("ready", "x"),))], "refusal for phase ready"),  # allowed there: never sent
    ([row(refusals=(("gone", "x"),))], "refusal for phase gone"),
    ([row(refusals=(("start", "x"), ("start", "y")))], "refusal for phase start"),
])
def test_a_table_that_contradicts_itself_fails_when_built(rows, why):
    with pytest.raises(TableError, match=why):
        table(rows, phases=PHASES, flags=("junk",))


def test_the_three_protocol_tables_are_built_with_the_shared_shape():
    for t in (SMTP, IMAP, POP3):
        assert t and all(isinstance(c, Command) and "RFC" in c.rfc for c in t.values())
