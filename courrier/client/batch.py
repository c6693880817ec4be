"""``courrier send --batch FILE.json``: the SMTP story's mail robot, done properly.

The document (format in docs/batch.md) lists people and message templates with ``{first_name}``-style fields,
optionally restricted to groups and copied to Bcc witnesses, and/or a plain list of messages. It is checked whole
before the first connection — an unknown field or a bad address stops the batch before anything is sent.

Sending: ``concurrency`` workers, each with its own pooled SMTP session reused message after message. A message is
retried once on a fresh connection only if the connection failed *before* its bytes went out; after that the outcome
is unknown and a retry could deliver it twice, so it is reported as failed instead (at most once, by design).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from courrier.client import compose
from courrier.client.smtpclient import ClientError, ServerReply, SMTPClient, SMTPReplyError
from courrier.client.submit import ServerOptions, open_session

MAX_MESSAGES = 1_000_000
_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class BatchError(Exception):
    """The batch document is wrong: one line saying where."""


# --------------------------------------------------------------------------- the document


def fill(template: str, fields: dict[str, str], where: str) -> str:
    """``{name}`` → its value; ``{{`` and ``}}`` → literal braces; any other brace is left alone (CSS in HTML)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        name = m.group(1)
        if name not in fields:
            raise BatchError(f"{where}: unknown field {{{name}}} (known: {', '.join(sorted(fields))})")
        return fields[name]

    return _FIELD.sub(sub, template)


@dataclass(frozen=True)
class Plan:
    """One message to send: the draft to build and its envelope."""

    draft: compose.Draft
    sender: str
    recipients: tuple[str, ...]
    label: str  # where it came from, for reports: "templates[0] → ann@x.test" or "messages[3]"


def _str_list(v: Any, where: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise BatchError(f"{where}: expected an address or a list of addresses")


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    v = obj.get(key)
    if v is not None and not isinstance(v, str):
        raise BatchError(f"{where}.{key}: expected a string")
    return v


def _headers(obj: dict[str, Any], where: str) -> list[tuple[str, str]]:
    h = obj.get("headers") or {}
    if not isinstance(h, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in h.items()):
        raise BatchError(f"{where}.headers: expected an object of strings")
    out = []
    for k, v in h.items():
        try:
            out.append(compose.parse_header_option(f"{k}: {v}"))
        except compose.ComposeError as e:
            raise BatchError(f"{where}.headers: {e}") from None
    return out


def _body(obj: dict[str, Any], base: Path, where: str) -> tuple[str | None, str | None]:
    """``body``/``html`` inline, or ``body_file``/``html_file`` relative to the document's folder."""
    out: list[str | None] = []
    for key in ("body", "html"):
        text = _opt_str(obj, key, where)
        path = _opt_str(obj, f"{key}_file", where)
        if text is not None and path is not None:
            raise BatchError(f"{where}: give {key} or {key}_file, not both")
        if path is not None:
            try:
                text = (base / path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise BatchError(f"{where}.{key}_file: cannot read {path}: {e}") from None
        out.append(text)
    return out[0], out[1]


_KNOWN_TOP = {"from", "envelope_from", "bcc", "people", "templates", "messages"}
_KNOWN_TEMPLATE = {"from", "envelope_from", "to", "cc", "bcc", "subject", "body", "body_file", "html", "html_file",
                   "attach", "headers", "groups"}
_KNOWN_MESSAGE = _KNOWN_TEMPLATE - {"groups"}


def _check_keys(obj: Any, known: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BatchError(f"{where}: expected an object")
    unknown = set(obj) - known
    if unknown:
        raise BatchError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(known))})")
    return obj


def _person_fields(p: Any, where: str) -> tuple[dict[str, str], set[str]]:
    if not isinstance(p, dict) or not isinstance(p.get("email"), str):
        raise BatchError(f"{where}: every person needs an \"email\"")
    fields: dict[str, str] = {}
    for k, v in p.items():
        if k == "groups":
            continue
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise BatchError(f"{where}.{k}: expected a string or a number")
        fields[k] = str(v)
    try:
        compose.addr_spec(fields["email"])
    except compose.ComposeError as e:
        raise BatchError(f"{where}: {e}") from None
    if "name" not in fields:
        fields["name"] = " ".join(x for x in (fields.get("first_name"), fields.get("last_name")) if x)
    groups = p.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise BatchError(f"{where}.groups: expected a list of group names")
    return fields, set(groups)


def _display(fields: dict[str, str]) -> str:
    from email.headerregistry import Address

    name = fields.get("name", "")
    local, _, domain = compose.addr_spec(fields["email"]).rpartition("@")
    return str(Address(display_name=name, username=local, domain=domain)) if name else fields["email"]


def _plan(obj: dict[str, Any], top: dict[str, Any], base: Path, where: str, fields: dict[str, str] | None,
          default_to: list[str]) -> Plan:
    def f(s: str | None, key: str) -> str | None:
        return fill(s, fields, f"{where}.{key}") if (s is not None and fields is not None) else s

    def fl(values: list[str], key: str) -> list[str]:
        return [f(v, key) or "" for v in values]

    sender = f(_opt_str(obj, "from", where) or _opt_str(top, "from", "batch"), "from")
    if not sender:
        raise BatchError(f"{where}: no \"from\" (give one here or at the top of the document)")
    to = fl(_str_list(obj.get("to"), f"{where}.to"), "to") or default_to
    cc = fl(_str_list(obj.get("cc"), f"{where}.cc"), "cc")
    bcc = fl(_str_list(obj.get("bcc"), f"{where}.bcc"), "bcc") + _str_list(top.get("bcc"), "batch.bcc")
    body, html = _body(obj, base, where)
    attach = [base / a for a in _str_list(obj.get("attach"), f"{where}.attach")]
    for a in attach:
        if not a.is_file():
            raise BatchError(f"{where}.attach: no such file {a}")
    headers = [(k, f(v, "headers") or "") for k, v in _headers(obj, where)]
    draft = compose.Draft(sender=sender, to=to, cc=cc, bcc=bcc, subject=f(_opt_str(obj, "subject", where), "subject"),
                          body=f(body, "body"), html=f(html, "html"), attachments=attach, headers=headers)
    env_from = f(_opt_str(obj, "envelope_from", where) or _opt_str(top, "envelope_from", "batch"), "envelope_from")
    try:
        env_sender, rcpts = compose.envelope(draft, env_from)
    except compose.ComposeError as e:
        raise BatchError(f"{where}: {e}") from None
    if not rcpts:
        raise BatchError(f"{where}: no recipient")
    return Plan(draft, env_sender, tuple(rcpts), where)


def plans(doc: Any, base: Path) -> list[Plan]:
    """Every message the document asks for, in order: each template × its people, then the plain messages."""
    top = _check_keys(doc, _KNOWN_TOP, "batch")
    people_raw = top.get("people", [])
    templates = top.get("templates", [])
    messages = top.get("messages", [])
    for key, v in (("people", people_raw), ("templates", templates), ("messages", messages)):
        if not isinstance(v, list):
            raise BatchError(f"batch.{key}: expected a list")
    if templates and not people_raw:
        raise BatchError("batch: templates need a list of \"people\"")
    if not templates and not messages:
        raise BatchError("batch: nothing to send (no \"templates\" and no \"messages\")")
    people = [_person_fields(p, f"people[{i}]") for i, p in enumerate(people_raw)]
    out: list[Plan] = []
    n = 0
    for ti, t in enumerate(templates):
        t = _check_keys(t, _KNOWN_TEMPLATE, f"templates[{ti}]")
        groups = set(_str_list(t.get("groups"), f"templates[{ti}].groups"))
        for pf, pgroups in people:
            if groups and not (groups & pgroups):
                continue
            n += 1
            fields = {**pf, "n": str(n)}
            out.append(_plan(t, top, base, f"templates[{ti}] → {pf['email']}", fields, [_display(pf)]))
            if len(out) > MAX_MESSAGES:
                raise BatchError(f"batch: more than {MAX_MESSAGES} messages")
    for mi, m in enumerate(messages):
        m = _check_keys(m, _KNOWN_MESSAGE, f"messages[{mi}]")
        out.append(_plan(m, top, base, f"messages[{mi}]", None, []))
    if len(out) > MAX_MESSAGES:
        raise BatchError(f"batch: more than {MAX_MESSAGES} messages")
    return out


def load(path: Path) -> list[Plan]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise BatchError(f"cannot read {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BatchError(f"{path}: not valid JSON: {e}") from None
    return plans(doc, Path(path).resolve().parent)


# --------------------------------------------------------------------------- sending


@dataclass
class Result:
    plan: Plan
    sent: bool = False
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, ServerReply] = field(default_factory=dict)
    error: str | None = None  # why the message was not sent (MAIL or DATA refused, connection failure)


@dataclass
class Summary:
    results: list[Result]
    elapsed: float

    @property
    def sent(self) -> int:
        return sum(1 for r in self.results if r.sent)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.sent]

    @property
    def refused_recipients(self) -> int:
        return sum(len(r.refused) for r in self.results)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        return (f"sent {self.sent} of {len(self.results)} messages "
                f"({sum(len(r.accepted) for r in self.results)} recipients accepted, "
                f"{self.refused_recipients} refused), {len(self.failed)} not sent, "
                f"in {self.elapsed:.2f} s: {self.rate:.1f} messages/second")


class _Worker:
    """One pooled connection, reused for message after message; reopened when the server closes it."""

    def __init__(self, opts: ServerOptions) -> None:
        self.opts = opts
        self.client: SMTPClient | None = None

    async def _session(self) -> SMTPClient:
        if self.client is None or self.client.closed:
            self.client = await open_session(self.opts)
        return self.client

    async def _drop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def send(self, plan: Plan) -> Result:
        res = Result(plan)
        data = compose.to_bytes(compose.build(plan.draft))
        for attempt in (1, 2):
            try:
                c = await self._session()
            except (ClientError, OSError) as e:
                res.error = str(e)
                return res  # a fresh connection failed: retrying at once would not help
            try:
                tx = await c.send(plan.sender, plan.recipients, data)
            except SMTPReplyError as e:
                res.error = f"{e.step} refused: {e.reply}"
                if e.reply.code == 421:  # RFC 5321 §3.8: the server is closing the channel
                    await self._drop()
                return res
            except ClientError as e:
                payload_started = c.payload_started
                await self._drop()
                if attempt == 1 and not payload_started:
                    continue  # nothing reached the server's queue: safe to try once more
                res.error = f"{e} (outcome unknown: not retried, to avoid a duplicate)" if payload_started else str(e)
                return res
            res.accepted, res.refused = tx.accepted, tx.refused
            res.sent = tx.delivered
            if not res.sent:
                res.error = f"DATA refused: {tx.data}" if tx.data is not None else "every recipient refused"
            if tx.data is not None and tx.data.code == 421:
                await self._drop()
            return res
        return res

    async def close(self) -> None:
        if self.client is not None:
            await self.client.quit()
            self.client = None


async def run(all_plans: list[Plan], opts: ServerOptions, concurrency: int = 4,
              progress: Callable[[Result], None] | None = None) -> Summary:
    """Sends every plan over at most ``concurrency`` connections; results in the plans' order."""
    results: list[Result | None] = [None] * len(all_plans)
    it: Iterator[tuple[int, Plan]] = iter(enumerate(all_plans))
    start = time.monotonic()

    async def work() -> None:
        w = _Worker(opts)
        try:
            for i, plan in it:  # a shared iterator: each message is taken by exactly one worker
                r = await w.send(plan)
                results[i] = r
                if progress:
                    progress(r)
        finally:
            await w.close()

    await asyncio.gather(*(work() for _ in range(max(1, min(concurrency, len(all_plans))))))
    return Summary([r for r in results if r is not None], time.monotonic() - start)
