"""The Sieve interpreter (RFC 5228 and the extensions in ``script.EXTENSIONS``): runs a compiled script over one
message and returns what it decided, as data. It stores nothing and sends nothing — ``courrier.delivery.sieve``
carries the result out — so it is a pure function of the script, the message, the envelope and the limits.

Each rule carries the RFC section it implements. Anything a script does wrong at run time (a limit reached, an
action conflict, a bad regex, a missing include) raises :class:`SieveRuntimeError`; the caller then files the
message in INBOX as if there were no script (never a lost message) and reports the error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from courrier.sieve.message import ASCII_LOWER, MessageView
from courrier.sieve.script import Node, Script

MAX_ACTIONS = 32        # fileinto/keep/redirect/vacation/reject per run
MAX_REDIRECTS = 4       # RFC 5804 §1.7 MAXREDIRECTS
MAX_STEPS = 20000       # commands and tests evaluated: a bound on run time
MAX_INCLUDE_DEPTH = 4   # RFC 6609 §3.2: nested includes
MAX_VARIABLE = 4096     # octets a variable may hold (RFC 5229 §6: implementations may truncate)
MAX_VACATION_DAYS = 30



class SieveRuntimeError(Exception):
    """A run that cannot finish as the script says; the message goes to INBOX."""


@dataclass
class Envelope:
    """RFC 5228 §5.4: the SMTP envelope as the envelope test sees it: ``mail_from`` ("" for ``<>``), ``to`` the
    recipient address this delivery is for."""

    mail_from: str
    to: str


@dataclass
class Vacation:
    """RFC 5230 §4: the reply the script asked for; whether it is sent is decided by the delivery side."""

    reason: str
    days: int = 7
    subject: str | None = None
    from_: str | None = None
    addresses: list[str] = field(default_factory=list)
    handle: str = ""
    mime: bool = False


@dataclass
class Result:
    """What a run decided. ``folders``: mailbox name → (flags, create); INBOX is the keep."""

    folders: dict[str, tuple[frozenset[str], bool]] = field(default_factory=dict)
    redirects: list[str] = field(default_factory=list)
    reject: str | None = None
    ereject: bool = False
    vacation: Vacation | None = None
    implicit_keep: bool = True
    actions: list[str] = field(default_factory=list)  # one word per action, for the log

    def stored(self) -> dict[str, tuple[frozenset[str], bool]]:
        """Where copies go: the folders named, plus INBOX when the implicit keep still stands (RFC 5228 §2.10.2)."""
        out = dict(self.folders)
        if self.implicit_keep and self.reject is None:
            out.setdefault("INBOX", (self._keep_flags, False))
        return out

    _keep_flags: frozenset[str] = frozenset()


class _Stop(Exception):
    pass


class _Return(Exception):
    pass


Include = Callable[[str, bool], "Script | None"]
"""(name, global) → the compiled script, None when there is none."""


# ---------------------------------------------------------------- matching (RFC 5228 §2.7)

def _fold(s: str, comparator: str) -> str:
    return s.translate(ASCII_LOWER) if comparator == "i;ascii-casemap" else s


def _numeric(s: str) -> float:
    """RFC 4790 §9.1.1: the leading digits' value; none = positive infinity."""
    m = re.match(r"[0-9]+", s)
    return int(m.group(0)) if m else float("inf")


_RELATIONAL = {"gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b,
               "le": lambda a, b: a <= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b}

_glob_cache: dict[tuple[str, bool], re.Pattern[str]] = {}
_regex_cache: dict[tuple[str, bool], re.Pattern[str]] = {}


def _glob(key: str, casefold: bool) -> re.Pattern[str]:
    """RFC 5228 §2.7.1 :matches: ``*`` any run, ``?`` one character, ``\\`` quotes the next; each wildcard is a
    group, so RFC 5229 §3.2's ${1}… are the groups."""
    pat = _glob_cache.get((key, casefold))
    if pat is None:
        out, i = [], 0
        while i < len(key):
            c = key[i]
            if c == "\\" and i + 1 < len(key):
                i += 1
                out.append(re.escape(key[i]))
            elif c == "*":
                out.append("(.*?)")
            elif c == "?":
                out.append("(.)")
            else:
                out.append(re.escape(c))
            i += 1
        pat = re.compile("".join(out) + r"\Z", re.S | (re.I if casefold else 0))
        if len(_glob_cache) > 4096:
            _glob_cache.clear()
        _glob_cache[(key, casefold)] = pat
    return pat


def _regex(key: str, casefold: bool) -> re.Pattern[str]:
    pat = _regex_cache.get((key, casefold))
    if pat is None:
        if len(key) > 1024:
            raise SieveRuntimeError("regex longer than 1024 characters")
        try:
            pat = re.compile(key, re.S | (re.I if casefold else 0))
        except re.error as e:
            raise SieveRuntimeError(f"bad regex {key!r}: {e}") from None
        if len(_regex_cache) > 1024:
            _regex_cache.clear()
        _regex_cache[(key, casefold)] = pat
    return pat


# ---------------------------------------------------------------- the run

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*|[0-9]+)\}")


class Run:
    def __init__(self, script: Script, msg: MessageView, env: Envelope, include: Include | None = None) -> None:
        self.script = script
        self.msg = msg
        self.env = env
        self.include = include
        self.result = Result()
        self.steps = 0
        self.flags: set[str] = set()  # RFC 5232 §3: the internal variable
        self.variables: dict[str, str] = {}
        self.globals: dict[str, str] = {}
        self.global_names: set[str] = set()
        self.matches: list[str] = []
        self.requires = script.requires
        self.included: set[str] = set()
        self.depth = 0
        self.action_count = 0

    # ---------------------------------------------------------- strings

    def s(self, value: str) -> str:
        """RFC 5229 §3: ``${name}`` and ``${N}`` expanded when the script requires "variables"."""
        if "variables" not in self.requires or "${" not in value:
            return value

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.isdigit():
                n = int(name)
                return self.matches[n] if n < len(self.matches) else ""
            name = name.lower()
            if name in self.global_names:
                return self.globals.get(name, "")
            return self.variables.get(name, "")

        return _VAR.sub(sub, value)

    def sl(self, value: str | list[str]) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if "variables" not in self.requires:
            return value
        return [self.s(v) for v in value]

    def set_var(self, name: str, value: str) -> None:
        name = name.lower()
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise SieveRuntimeError(f"bad variable name {name!r}")
        value = value[:MAX_VARIABLE]
        if name in self.global_names:
            self.globals[name] = value
        else:
            self.variables[name] = value

    # ---------------------------------------------------------- control

    def run(self) -> Result:
        try:
            self.block(self.script.commands)
        except _Stop:
            pass
        except _Return:
            pass
        self.result._keep_flags = frozenset(self.flags)
        if self.result.reject is not None and (self.result.folders or self.result.redirects
                                               or self.result.vacation is not None):
            # RFC 5429 §2.1: reject is incompatible with the actions that deliver or answer the message
            raise SieveRuntimeError("reject cannot be combined with keep, fileinto, redirect or vacation")
        return self.result

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise SieveRuntimeError(f"script ran more than {MAX_STEPS} steps")

    def block(self, commands: list[Node]) -> None:
        taken = True  # whether the preceding if/elsif chain has run a branch
        for c in commands:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise SieveRuntimeError(f"script ran more than {MAX_STEPS} steps")
            name = c.name
            if name == "if":
                taken = self.test(c.tests[0])
                if taken:
                    self.block(c.block)
            elif name == "elsif":
                if not taken:
                    taken = self.test(c.tests[0])
                    if taken:
                        self.block(c.block)
            elif name == "else":
                if not taken:
                    self.block(c.block)
                taken = True
            else:
                self.action(c)

    # ---------------------------------------------------------- actions (RFC 5228 §4, extensions)

    def count_action(self, what: str) -> None:
        self.action_count += 1
        if self.action_count > MAX_ACTIONS:
            raise SieveRuntimeError(f"more than {MAX_ACTIONS} actions")
        self.result.actions.append(what)

    def flag_list(self, c: Node, key: str = "flags") -> frozenset[str]:
        if key in c.extra:
            return frozenset(_split_flags(self.sl(c.extra[key])))
        return frozenset(self.flags)

    def store(self, mailbox: str, flags: frozenset[str], create: bool) -> None:
        # RFC 5228 §2.10.3: the same mailbox twice is one copy; RFC 5232 §5: the later flags win
        if mailbox.upper() == "INBOX":
            mailbox = "INBOX"
        old = self.result.folders.get(mailbox)
        self.result.folders[mailbox] = (flags, create or (old[1] if old else False))

    def action(self, c: Node) -> None:
        name = c.name
        r = self.result
        if name == "stop":  # RFC 5228 §3.3
            raise _Stop()
        if name == "keep":  # §4.3
            self.count_action("keep")
            self.store("INBOX", self.flag_list(c), False)
            r.implicit_keep = False
        elif name == "discard":  # §4.4
            self.count_action("discard")
            r.implicit_keep = False
        elif name == "fileinto":  # §4.1, RFC 3894 :copy, RFC 5490 §3.2 :create, RFC 5232 §5 :flags
            box = self.s(c.args["mailbox"])
            if not box or len(box) > 255:
                raise SieveRuntimeError(f"bad mailbox name {box!r}")
            self.count_action(f"fileinto:{box}")
            self.store(box, self.flag_list(c), "create" in c.args)
            if "copy" not in c.args:
                r.implicit_keep = False
        elif name == "redirect":  # §4.2
            addr = self.s(c.args["address"]).strip()
            if not re.fullmatch(r"[^\s@<>()\[\],;:\"]+@[A-Za-z0-9.-]+|\"[^\"]*\"@[A-Za-z0-9.-]+", addr):
                raise SieveRuntimeError(f"redirect to an invalid address {addr!r}")
            if _addr_key(addr) not in (_addr_key(a) for a in r.redirects):  # RFC 5228 §2.10.3; RFC 5321 §2.4
                if len(r.redirects) >= MAX_REDIRECTS:
                    raise SieveRuntimeError(f"more than {MAX_REDIRECTS} redirects")
                self.count_action(f"redirect:{addr}")
                r.redirects.append(addr)
            if "copy" not in c.args:
                r.implicit_keep = False
        elif name in ("reject", "ereject"):  # RFC 5429 §2.1/§2.2
            if r.reject is not None:
                raise SieveRuntimeError("more than one reject")
            self.count_action(name)
            r.reject = self.s(c.args["text"])
            r.ereject = name == "ereject"
            r.implicit_keep = False
        elif name == "vacation":  # RFC 5230 §4
            if r.vacation is not None:
                raise SieveRuntimeError("more than one vacation action (RFC 5230 §4.7)")
            self.count_action("vacation")
            days = c.extra.get("days", 7)
            v = Vacation(reason=self.s(c.args["reason"]), days=max(1, min(int(days), MAX_VACATION_DAYS)),
                         subject=self.s(c.extra["subject"]) if "subject" in c.extra else None,
                         from_=self.s(c.extra["from"]) if "from" in c.extra else None,
                         addresses=self.sl(c.extra["addresses"]) if "addresses" in c.extra else [],
                         handle=self.s(c.extra["handle"]) if "handle" in c.extra else "",
                         mime="mime" in c.args)
            r.vacation = v
        elif name in ("setflag", "addflag", "removeflag"):  # RFC 5232 §4
            flags = _split_flags(self.sl(c.args["list-of-flags"]))
            var = c.args.get("variable-name")
            if var is not None:
                current = set(_split_flags([self.s(self.variables.get(var.lower(), ""))]))
            else:
                current = self.flags
            if name == "setflag":
                current = set(flags)
            elif name == "addflag":
                have = {f.lower() for f in current}
                current = set(current) | {f for f in flags if f.lower() not in have}
            else:
                drop = {f.lower() for f in flags}
                current = {f for f in current if f.lower() not in drop}
            if var is not None:
                self.set_var(var, " ".join(sorted(current)))
            else:
                self.flags = current
        elif name == "set":  # RFC 5229 §4
            self.set_var(self.s(c.args["name"]), _modify(c, self.s(c.args["value"])))
        elif name == "global":  # RFC 6609 §3.4
            for n in self.sl(c.args["names"]):
                self.global_names.add(n.lower())
        elif name == "return":  # RFC 6609 §3.3
            raise _Return()
        elif name == "include":  # RFC 6609 §3.2
            self.do_include(c)
        else:
            raise SieveRuntimeError(f"unsupported command {name!r}")

    def do_include(self, c: Node) -> None:
        name = self.s(c.args["script"])
        is_global = c.args.get("location") == ":global"
        key = f"{'g' if is_global else 'p'}:{name}"
        if "once" in c.args and key in self.included:
            return
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise SieveRuntimeError(f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
        script = self.include(name, is_global) if self.include is not None else None
        if script is None:
            if "optional" in c.args:
                return
            raise SieveRuntimeError(f"included script {name!r} does not exist")
        self.included.add(key)
        saved = (self.variables, self.requires, self.matches)
        self.variables, self.requires, self.matches = {}, script.requires, []
        self.depth += 1
        try:
            self.block(script.commands)
        except _Return:
            pass
        finally:
            self.depth -= 1
            self.variables, self.requires, self.matches = saved

    # ---------------------------------------------------------- tests (RFC 5228 §5)

    def arg(self, t: Node, name: str) -> list[str]:
        """A string-list argument, expanded only when it holds ``${`` and the script uses variables."""
        v = t.args[name]
        return self.sl(v) if t.dynamic and "variables" in self.requires else v

    def test(self, t: Node) -> bool:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise SieveRuntimeError(f"script ran more than {MAX_STEPS} steps")
        name = t.name
        if name == "header":  # §5.7
            names = self.arg(t, "header-names")
            msg = self.msg
            fast = self.fast(t)
            if fast is not None:  # the common case: constant keys, :is or :contains, i;ascii-casemap
                is_, keys = fast
                for h in names:
                    for v in msg.header_folded(h):
                        if (v in keys) if is_ else any(k in v for k in keys):
                            return True
                return False
            values = msg.header(names[0]) if len(names) == 1 else [v for h in names for v in msg.header(h)]
            return self.match(t, values) if values or t.args.get("match-type") == ":count" else False
        if name == "address":  # §5.1
            values = [_part(a, t) for h in self.arg(t, "header-list") for a in self.msg.addresses(h)]
            return self.match(t, values) if values or t.args.get("match-type") == ":count" else False
        if name == "exists":  # §5.5
            return all(self.msg.raw_header(h) for h in self.arg(t, "header-names"))
        if name == "anyof":
            return any(self.test(x) for x in t.tests)
        if name == "allof":
            return all(self.test(x) for x in t.tests)
        if name == "not":
            return not self.test(t.tests[0])
        if name == "envelope":  # §5.4
            values = []
            for part in self.arg(t, "header-list"):
                p = part.lower()
                if p == "from":
                    values.append(_part(self.env.mail_from, t) if self.env.mail_from else "")
                elif p == "to":
                    values.append(_part(self.env.to, t))
            return self.match(t, values)
        if name == "size":  # §5.9
            limit = t.args["limit"]
            return self.msg.size > limit if t.args["comparator"] == ":over" else self.msg.size < limit
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "body":  # RFC 5173
            transform = t.args.get("body-transform", ":text")
            types = self.sl(t.extra["body-transform"]) if transform == ":content" else None
            return self.match(t, self.msg.body_text(transform, types), body=True)
        if name == "hasflag":  # RFC 5232 §4
            if "variable-list" in t.args:
                have = _split_flags([self.s(self.variables.get(v.lower(), ""))
                                     for v in self.sl(t.args["variable-list"])])
            else:
                have = sorted(self.flags)
            return self.match(t, have, keys=_split_flags(self.sl(t.args["list-of-flags"])))
        if name == "string":  # RFC 5229 §5
            values = list(self.sl(t.args["source"]))
            if t.args.get("match-type") == ":count":
                values = [v for v in values if v]
            return self.match(t, values)
        raise SieveRuntimeError(f"unsupported test {name!r}")

    def fast(self, t: Node) -> tuple[bool, frozenset[str] | tuple[str, ...]] | None:
        """(is?, folded keys) when ``t`` compares constant keys with :is or :contains under i;ascii-casemap — worked
        out once per node; None otherwise."""
        f = t.pre.get("fast", 0)
        if f == 0:
            f = None
            if not (t.dynamic and "variables" in self.requires) and "key-list" in t.args and \
                    t.extra.get("comparator", "i;ascii-casemap") == "i;ascii-casemap":
                mt = t.args.get("match-type", ":is")
                keys = [k.translate(ASCII_LOWER) for k in t.args["key-list"]]
                if mt == ":is":
                    f = (True, frozenset(keys))
                elif mt == ":contains":
                    f = (False, tuple(keys))
            t.pre["fast"] = f
        return f

    def match(self, t: Node, values: list[str], *, body: bool = False, keys: list[str] | None = None) -> bool:
        """RFC 5228 §2.7: any value against any key with the match type and comparator."""
        mtype = t.args.get("match-type", ":is")
        comparator = t.extra.get("comparator", "i;ascii-casemap")
        static = keys is None and not (t.dynamic and "variables" in self.requires)
        if keys is None:
            keys = t.args["key-list"] if static else self.sl(t.args["key-list"])
        if mtype == ":count":  # RFC 5231 §4.2
            op = _RELATIONAL[t.extra.get("match-type", "eq")]
            n = len(values)
            return any(op(n, _numeric(k)) for k in keys)
        casefold = comparator == "i;ascii-casemap"
        if comparator == "i;ascii-numeric":
            if mtype not in (":is", ":value"):
                raise SieveRuntimeError(f"comparator i;ascii-numeric does not support {mtype}")
            op = _RELATIONAL[t.extra.get("match-type", "eq")] if mtype == ":value" else _RELATIONAL["eq"]
            return any(op(_numeric(v), _numeric(k)) for v in values for k in keys)
        if mtype == ":value":  # RFC 5231 §4.1 with an ordering comparator
            op = _RELATIONAL[t.extra.get("match-type", "eq")]
            return any(op(_fold(v, comparator), _fold(k, comparator)) for v in values for k in keys)
        if mtype == ":is":
            if casefold:
                folded = t.pre.get("is") if static else None
                if folded is None:
                    folded = {k.translate(ASCII_LOWER) for k in keys}
                    if static:
                        t.pre["is"] = folded
                return any(v.translate(ASCII_LOWER) in folded for v in values)
            return any(v in keys for v in values)
        if mtype == ":contains":
            if casefold:
                fk = t.pre.get("contains") if static else None
                if fk is None:
                    fk = [k.translate(ASCII_LOWER) for k in keys]
                    if static:
                        t.pre["contains"] = fk
                return any(k in v.translate(ASCII_LOWER) for v in values for k in fk)
            return any(k in v for v in values for k in keys)
        if mtype in (":matches", ":regex"):
            want_vars = "variables" in self.requires
            for k in keys:
                pat = _glob(k, casefold) if mtype == ":matches" else _regex(k, casefold)
                for v in values:
                    m = pat.match(v) if mtype == ":matches" else pat.search(v)
                    if m:
                        if want_vars:  # RFC 5229 §3.2
                            self.matches = [m.group(0), *(g or "" for g in m.groups())][:10]
                        return True
            return False
        raise SieveRuntimeError(f"unsupported match type {mtype}")


def _part(addr: str, t: Node) -> str:
    """RFC 5228 §2.7.4 address parts."""
    part = t.args.get("address-part", ":all")
    if part == ":all":
        return addr
    local, at, domain = addr.rpartition("@")
    if not at:
        local, domain = addr, ""
    return local if part == ":localpart" else domain


def _addr_key(addr: str) -> str:
    """An address compared as SMTP does: the local part exactly, the domain case aside (RFC 5321 §2.4)."""
    local, _, domain = addr.rpartition("@")
    return f"{local}@{domain.lower()}"


def _split_flags(lists: list[str]) -> list[str]:
    """RFC 5232 §3: flags are space-separated; duplicates (case aside) dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for s in lists:
        for f in s.split():
            if f.lower() not in seen:
                seen.add(f.lower())
                out.append(f)
    return out


def _modify(c: Node, value: str) -> str:
    """RFC 5229 §4.1: modifiers by precedence, highest first."""
    case = c.args.get("case")
    if case == ":lower":
        value = value.lower()
    elif case == ":upper":
        value = value.upper()
    first = c.args.get("first-case")
    if first == ":lowerfirst":
        value = value[:1].lower() + value[1:]
    elif first == ":upperfirst":
        value = value[:1].upper() + value[1:]
    if c.args.get("quotewildcard"):
        value = re.sub(r"([*?\\])", r"\\\1", value)
    if c.args.get("encoding") == ":quoteregex":
        value = re.sub(r"([*?\\.+^$|()\[\]{}])", r"\\\1", value)
    if c.args.get("length"):
        value = str(len(value))
    return value


def evaluate(script: Script, msg: MessageView, env: Envelope, include: Include | None = None) -> Result:
    """Runs ``script`` over ``msg``; raises SieveRuntimeError."""
    return Run(script, msg, env, include).run()
