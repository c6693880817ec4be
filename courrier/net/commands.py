"""One shape for a protocol's command table: a row per verb with the rules that belong to the verb (Postfix's smtpd
table idea), shared by SMTP, IMAP and POP3 so that each protocol's dispatcher checks the same columns in one place.

A row says in which phases (SMTP) or states (IMAP, POP3) the verb is valid; the dispatcher asks ``allowed`` once,
before the handler runs, so no handler repeats "MAIL first" or "not in this state" in an if-chain. What a protocol
answers for a verb in the wrong phase is the protocol's own default reply, unless the row names a more precise one
for that phase in ``refusals`` (SMTP's "Nested MAIL command" versus "Need MAIL command first").

Columns every protocol may use:
- ``phases``: where the verb is valid (a subset of the phases the table is declared with).
- ``rfc``: the section that defines the verb and its rules, written beside the row.
- ``needs_arg`` / ``no_arg``: the verb must have / must not have an argument (a syntax error otherwise).
- ``before_tls``: allowed while the policy still requires TLS (RFC 3207 §4).
- ``ends_group``: must be the last command of a pipelined group (RFC 2920 §3.1).
- ``flags``: the few columns only one protocol has (SMTP ``junk``, IMAP ``uid``…), named when the table is built so
  a misspelt flag fails at import rather than silently never matching.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

P = TypeVar("P", bound=Hashable)


class TableError(ValueError):
    """A command table contradicts itself (raised at import time, when the table is built)."""


@dataclass(frozen=True)
class Command(Generic[P]):
    """One verb of a protocol. ``handler`` is what the dispatcher calls: a method name (SMTP, POP3) or a function
    (IMAP, whose handlers live in modules by command group)."""

    name: str
    handler: Any
    phases: frozenset[P]
    rfc: str
    needs_arg: bool = False
    no_arg: bool = False
    before_tls: bool = False
    ends_group: bool = False
    flags: frozenset[str] = frozenset()
    refusals: tuple[tuple[P, Any], ...] = ()

    def allowed(self, phase: P) -> bool:
        return phase in self.phases

    def refusal(self, phase: P, default: Any) -> Any:
        """The reply for this verb in ``phase`` where it is not allowed: the row's own, else ``default``."""
        for p, reply in self.refusals:
            if p == phase:
                return reply
        return default

    def has(self, flag: str) -> bool:
        return flag in self.flags


def table(rows: Iterable[Command[P]], *, phases: Iterable[P], flags: Iterable[str] = ()) -> dict[str, Command[P]]:
    """The rows by name, after checking that they agree with the protocol's phases and flags and with themselves.

    Checked: names are unique upper-case words; every row is valid in at least one declared phase and names its
    RFC; a refusal is only given for a declared phase where the verb is *not* allowed (else it could never be
    sent); a verb cannot both need and forbid an argument; flags are among those the protocol declares.
    """
    declared, known = frozenset(phases), frozenset(flags)
    out: dict[str, Command[P]] = {}
    for row in rows:
        where = f"command {row.name!r}"
        if not row.name or not row.name.isalnum() or row.name != row.name.upper():
            raise TableError(f"{where}: a name is one upper-case word")
        if row.name in out:
            raise TableError(f"{where}: listed twice")
        if not row.phases:
            raise TableError(f"{where}: valid in no phase")
        if not row.phases <= declared:
            raise TableError(f"{where}: unknown phases {sorted(map(str, row.phases - declared))}")
        if "RFC" not in row.rfc:
            raise TableError(f"{where}: no RFC section beside the row")
        if row.needs_arg and row.no_arg:
            raise TableError(f"{where}: needs an argument and forbids one")
        if not row.flags <= known:
            raise TableError(f"{where}: unknown flags {sorted(row.flags - known)}")
        seen: set[P] = set()
        for p, _ in row.refusals:
            if p not in declared or p in row.phases or p in seen:
                raise TableError(f"{where}: refusal for phase {p!s} that is unknown, allowed or repeated")
            seen.add(p)
        out[row.name] = row
    return out
