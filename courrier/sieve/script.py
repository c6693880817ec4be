"""Sieve scripts (RFC 5228) parsed by sievelib and compiled once into a small tree the interpreter walks.

sievelib (MIT, a maintained PyPI package) checks the grammar and each command's arguments against the extensions
the script ``require``s; it knows neither ``ereject`` (RFC 5429), ``include``/``return``/``global`` (RFC 6609) nor
the ``string`` test (RFC 5229 §5), which are declared here in its own terms. Its tree keeps strings quoted and tags
beside their extra arguments; :func:`compile_script` turns it into :class:`Node`\\ s with plain Python values so
nothing is re-parsed per message. A syntax error becomes :class:`SieveSyntaxError` with the line and the reason —
what ``PUTSCRIPT`` and ``courrier sieve put`` answer.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from sievelib import commands as sc
from sievelib.parser import Parser

MAX_SCRIPT = 64 * 1024  # octets; larger scripts are refused at upload (ManageSieve NO (QUOTA/MAXSIZE))
MAX_NESTING = 32  # blocks in blocks, and tests in tests (allof/anyof/not): Pigeonhole's limits (sieve-limits.h)

# What the interpreter runs: ManageSieve's SIEVE capability (RFC 5804 §1.7) and `require`'s allowed names.
EXTENSIONS = (
    "fileinto", "reject", "ereject", "envelope", "encoded-character", "imap4flags", "copy", "mailbox", "body",
    "variables", "vacation", "include", "regex", "relational", "comparator-i;ascii-numeric",
)


class SieveSyntaxError(ValueError):
    """A script that does not parse: ``line`` (1-based) and ``reason``; ``str()`` is ``line N: reason``."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


# ---------------------------------------------------------------- commands sievelib lacks, in its own terms


class ErejectCommand(sc.ActionCommand):
    """RFC 5429 §2.1: ``ereject reason``."""

    extension = "ereject"
    args_definition = [{"name": "text", "type": ["string"], "required": True}]


class IncludeCommand(sc.ActionCommand):
    """RFC 6609 §3.2: ``include [:personal / :global] [:once] [:optional] name``."""

    extension = "include"
    args_definition = [
        {"name": "location", "type": ["tag"], "values": [":personal", ":global"], "required": False},
        {"name": "once", "type": ["tag"], "values": [":once"], "required": False},
        {"name": "optional", "type": ["tag"], "values": [":optional"], "required": False},
        {"name": "script", "type": ["string"], "required": True},
    ]


class ReturnCommand(sc.ActionCommand):
    """RFC 6609 §3.3."""

    extension = "include"
    args_definition = []


class GlobalCommand(sc.ActionCommand):
    """RFC 6609 §3.4: ``global value``."""

    extension = "include"
    args_definition = [{"name": "names", "type": ["string", "stringlist"], "required": True}]


class StringCommand(sc.TestCommand):
    """RFC 5229 §5: ``string [comparator] [match-type] source key-list``."""

    extension = "variables"
    args_definition = [
        sc.comparator, sc.match_type,
        {"name": "source", "type": ["string", "stringlist"], "required": True},
        {"name": "key-list", "type": ["string", "stringlist"], "required": True},
    ]


sc.add_commands([ErejectCommand, IncludeCommand, ReturnCommand, GlobalCommand, StringCommand])

# RFC 5228 §8.1: comparators beyond sievelib's two (RFC 4790 §9.1 i;ascii-numeric, with the relational extension)
sc.comparator["extra_arg"]["values"] = ['"i;octet"', '"i;ascii-casemap"', '"i;ascii-numeric"']


# ---------------------------------------------------------------- the compiled tree

@dataclass(slots=True)
class Node:
    """One command or test: ``args`` maps sievelib's argument names to plain values (a tag's value is the tag,
    e.g. ``":contains"``; its own argument sits in ``extra``); ``tests`` are the nested tests (allof, anyof, not,
    if), ``block`` the commands of an if/elsif/else."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    tests: list[Node] = field(default_factory=list)
    block: list[Node] = field(default_factory=list)
    dynamic: bool = False  # a string argument holds "${": expanded per run when the script uses variables
    pre: dict[str, Any] = field(default_factory=dict)  # per-node values the interpreter works out once


@dataclass(slots=True)
class Script:
    """A compiled script: its commands and the extensions it requires."""

    commands: list[Node]
    requires: frozenset[str]
    size: int


_NUMBER = re.compile(r"^([0-9]+)([KMGkmg]?)$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _string(v: str) -> str:
    """A quoted string (RFC 5228 §2.4.2: ``\\"`` and ``\\\\``; any other backslash is dropped) or a multi-line one
    (``text:`` … ``.``, with dot-unstuffing)."""
    if v.startswith('"'):
        return re.sub(r"\\(.)", r"\1", v[1:-1], flags=re.S)
    if v.startswith("text:"):
        body = v[5:].split("\n", 1)[1] if "\n" in v[5:] else ""
        body = body.replace("\r\n", "\n")
        if body.endswith("\n."):
            body = body[:-1]
        elif body == ".":
            body = ""
        lines = body.split("\n")
        return "\n".join(ln[1:] if ln.startswith("..") else ln for ln in lines)
    return v


def _value(v: Any) -> Any:
    if isinstance(v, list):
        return [_value(x) for x in v]
    if isinstance(v, str):
        m = _NUMBER.match(v)
        if m:
            return int(m.group(1)) * _UNITS[m.group(2).lower()]
        return _string(v)
    return v


# arguments that are string lists (RFC 5228 §2.4.2.1): always held as lists, a single string as a list of one
_LISTS = frozenset({"header-names", "header-list", "key-list", "list-of-flags", "variable-list", "source",
                    "capabilities", "names", "addresses", "flags", "body-transform"})


class _TooDeep(Exception):
    def __init__(self, what: str, opener: bytes) -> None:
        self.what, self.opener = what, opener


def _convert(cmd: sc.Command, blocks: int = 0, tests: int = 0) -> Node:
    """sievelib's command tree to ours. Recursive, hence the nesting bounds: a 64 KiB script can nest 5,000 deep."""
    if blocks > MAX_NESTING:
        raise _TooDeep("blocks", b"{")
    if tests > MAX_NESTING:
        raise _TooDeep("tests", b"(")
    node = Node(cmd.name)
    for name, value in cmd.arguments.items():
        if isinstance(value, sc.Command):
            node.tests.append(_convert(value, blocks, tests + 1))
        elif isinstance(value, list) and value and isinstance(value[0], sc.Command):
            node.tests.extend(_convert(t, blocks, tests + 1) for t in value)
        elif isinstance(value, str) and value.startswith(":"):
            node.args[name] = value
        else:
            v = _value(value)
            node.args[name] = [v] if name in _LISTS and not isinstance(v, list) else v
    for name, value in cmd.extra_arguments.items():
        v = _value(value)
        node.extra[name] = [v] if name in _LISTS and not isinstance(v, list) else v
    node.dynamic = any("${" in x for t in (node.args, node.extra) for v in t.values()
                       for x in (v if isinstance(v, list) else [v]) if isinstance(x, str))
    node.block = [_convert(c, blocks + 1, tests) for c in cmd.children]
    return node


def _line_past(data: bytes, opener: bytes, limit: int) -> int:
    """The line where ``opener`` first opens deeper than ``limit`` (quoted strings and # comments skipped; a best
    effort for the error message only)."""
    closer = {b"{": b"}", b"(": b")"}[opener]
    depth, line, i, n = 0, 1, 0, len(data)
    while i < n:
        c = data[i:i + 1]
        if c == b"\n":
            line += 1
        elif c == b"#":
            j = data.find(b"\n", i)
            i = n if j < 0 else j
            continue
        elif c == b'"':
            j = i + 1
            while j < n and data[j:j + 1] != b'"':
                j += 2 if data[j:j + 1] == b"\\" else 1
            line += data.count(b"\n", i, j)
            i = j
        elif c == opener:
            depth += 1
            if depth > limit:
                return line
        elif c == closer:
            depth -= 1
        i += 1
    return 1


_lock = threading.Lock()  # sievelib keeps the `require`d extensions in a per-thread global; one parse at a time


def compile_script(text: str | bytes) -> Script:
    """Parses and compiles a script; raises SieveSyntaxError (line and reason)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if len(data) > MAX_SCRIPT:
        raise SieveSyntaxError(1, f"script larger than {MAX_SCRIPT} octets")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SieveSyntaxError(data[:e.start].count(b"\n") + 1, "script is not UTF-8 (RFC 5228 §2.1)") from None
    with _lock:
        p = Parser()
        if not p.parse(data):
            line, _, reason = str(p.error).partition(": ")
            reason = reason.removeprefix("parsing error: ")
            try:
                n = int(line.removeprefix("line "))
            except ValueError:
                n = 1
            raise SieveSyntaxError(n, reason or str(p.error))
        tree = list(p.result)
    requires: set[str] = set()
    out: list[Node] = []
    for c in tree:
        try:
            node = _convert(c)
        except _TooDeep as e:
            raise SieveSyntaxError(_line_past(data, e.opener, MAX_NESTING + (e.what == "tests")),
                                   f"{e.what} nested deeper than {MAX_NESTING}") from None
        if node.name == "require":
            caps = node.args["capabilities"]
            for ext in caps if isinstance(caps, list) else [caps]:
                if ext not in EXTENSIONS:
                    at = data.find(ext.encode("utf-8"))
                    raise SieveSyntaxError(data[:max(at, 0)].count(b"\n") + 1,
                                           f"unsupported extension {ext!r} in require")
                requires.add(ext)
            continue
        out.append(node)
    if "encoded-character" in requires:
        for node in out:
            _decode_tree(node)
    return Script(out, frozenset(requires), len(data))


_ENCODED = re.compile(r"\$\{(hex|unicode):([\s0-9A-Fa-f]*)\}", re.I)


def _decode_encoded(value: str) -> str:
    """RFC 5228 §2.4.2.4: ``${hex:41 42}`` and ``${unicode:20AC}``; a sequence that does not decode stays as is."""

    def sub(m: re.Match[str]) -> str:
        units = m.group(2).split()
        try:
            if m.group(1).lower() == "hex":
                return bytes(int(u, 16) for u in units).decode("utf-8")
            return "".join(chr(int(u, 16)) for u in units)
        except (ValueError, UnicodeDecodeError, OverflowError):
            return m.group(0)

    return _ENCODED.sub(sub, value) if "${" in value else value


def _decode_tree(node: Node) -> None:
    for table in (node.args, node.extra):
        for k, v in table.items():
            if isinstance(v, str) and not v.startswith(":"):
                table[k] = _decode_encoded(v)
            elif isinstance(v, list):
                table[k] = [_decode_encoded(x) if isinstance(x, str) else x for x in v]
    for child in (*node.tests, *node.block):
        _decode_tree(child)


def check(text: str | bytes) -> str | None:
    """None when the script is good, else ``line N: reason``."""
    try:
        compile_script(text)
    except SieveSyntaxError as e:
        return str(e)
    return None
