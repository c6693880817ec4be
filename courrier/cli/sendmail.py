"""``courrier sendmail``: a drop-in ``/usr/sbin/sendmail`` for applications (PHP's mail(), cron, git send-email).

Like Postfix's postdrop, it writes the message straight into the spool (``data_dir/queue/incoming/``, the same
framed, fsync'ed record the server writes), so it works while the server is down; the running server picks the file
up within a second, or at its next start. Local recipients end in their Maildir, others are relayed.

Accepted flags (as Postfix's sendmail): ``-t`` recipients from To/Cc/Bcc (added to those on the command line; Bcc is
removed), ``-f``/``-r SENDER`` envelope sender, ``-F NAME`` full name for a missing From:, ``-i``/``-oi`` a lone "."
does not end the message; ``-o…``, ``-B…``, ``-bm``, ``-v``, ``-N…``, ``-R…``, ``-V…`` are accepted and ignored.
Bare user names get ``@`` + the first local domain. Exit codes from sysexits.h: 0 OK, 64 usage, 65 bad data,
73 cannot create the spool file, 75 try again later.
"""

from __future__ import annotations

import email.utils
import getpass
import os
import sys
import time
from email.parser import BytesHeaderParser
from email.policy import compat32

import click

from courrier import config
from courrier.cli import main
from courrier.mail.envelope import Envelope, Recipient, new_queue_id
from courrier.mail.path import AddressError, parse_address, stored_address
from courrier.queue.spool import Spool
from courrier.smtp.replies import out_of_space

EX_OK, EX_USAGE, EX_DATAERR, EX_CANTCREAT, EX_TEMPFAIL = 0, 64, 65, 73, 75

_IGNORED_WITH_VALUE = "oBNRVLCh"  # -oem, -B8BITMIME, -Nnever, -Rhdrs, -V envid, -L tag, -C file, -h hops
_IGNORED_FLAGS = "vmUGn"


class Usage(Exception):
    pass


def parse_args(argv: list[str]) -> dict[str, object]:
    """sendmail's own option syntax (getopt-like: ``-oi``, ``-FName``, ``-f addr``, ``--`` ends options)."""
    opts: dict[str, object] = {"t": False, "i": False, "f": None, "F": None, "config": None, "data": None,
                               "rcpts": []}
    rcpts: list[str] = opts["rcpts"]  # type: ignore[assignment]
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            rcpts += argv[i:]
            break
        if a.startswith("--config") or a.startswith("--data"):
            key = "config" if a.startswith("--config") else "data"
            if "=" in a:
                opts[key] = a.split("=", 1)[1]
            elif i < len(argv):
                opts[key] = argv[i]
                i += 1
            else:
                raise Usage(f"{a} needs a value")
            continue
        if not a.startswith("-") or a == "-":
            rcpts.append(a)
            continue
        flag, rest = a[1], a[2:]
        if flag in "fFr":
            if not rest:
                if i >= len(argv):
                    raise Usage(f"-{flag} needs a value")
                rest = argv[i]
                i += 1
            opts["F" if flag == "F" else "f"] = rest
        elif flag == "t" and not rest:
            opts["t"] = True
        elif flag == "i" and not rest:
            opts["i"] = True
        elif flag == "o":
            if rest == "i":
                opts["i"] = True
            elif not rest:
                i += 1  # "-o value"
        elif flag == "b":
            if rest not in ("m", ""):
                raise Usage(f"-b{rest} is not supported (only -bm: deliver mail)")
        elif flag in _IGNORED_WITH_VALUE:
            if not rest:
                i += 1
        elif flag in _IGNORED_FLAGS:
            pass
        else:
            raise Usage(f"unknown option {a}")
    return opts


def read_message(stream: object, dot_ends: bool, limit: int) -> bytes:
    """Reads stdin, normalising line endings to CRLF; with ``dot_ends`` a line with a lone "." ends the input."""
    out: list[bytes] = []
    size = 0
    for line in stream:  # type: ignore[attr-defined]
        body = line.rstrip(b"\r\n")
        if dot_ends and body == b".":
            break
        out.append(body + b"\r\n")
        size += len(body) + 2
        if size > limit:
            raise ValueError(f"message larger than {limit} octets")
    return b"".join(out)


def split_message(msg: bytes) -> tuple[list[bytes], bytes]:
    """(header lines with their folded continuations as one item each, CRLF-terminated; the rest)."""
    end = msg.find(b"\r\n\r\n")
    if msg.startswith(b"\r\n"):
        return [], msg[2:]
    head, rest = (msg, b"") if end < 0 else (msg[: end + 2], msg[end + 4:])
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields, rest


def _qualify(addr: str, domain: str) -> str:
    return addr if "@" in addr else f"{addr}@{domain}"


def header_recipients(fields: list[bytes]) -> list[str]:
    parsed = BytesHeaderParser(policy=compat32).parsebytes(b"".join(fields) + b"\r\n")
    values = [v for name in ("To", "Cc", "Bcc") for v in parsed.get_all(name, [])]
    return [a for _, a in email.utils.getaddresses([str(v) for v in values]) if a]


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": ["--help"]}, add_help_option=True)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sendmail(args: tuple[str, ...]) -> None:
    """Read a message on stdin and queue it, like /usr/sbin/sendmail.

    \b
    courrier sendmail [-t] [-f SENDER] [-i] [-F NAME] [RCPT…] [--config F] [--data DIR]
      -t        also take recipients from To:, Cc:, Bcc: (Bcc: is then removed)
      -f ADDR   envelope sender (default: your login name @ the first local domain); -r is the same
      -F NAME   full name for the From: header added when the message has none
      -i, -oi   a line with a single "." does not end the message
    -oem -odi -B8BITMIME and other sendmail flags are accepted and ignored.
    Exit status (sysexits.h): 0 queued, 64 usage, 65 bad message or address, 73 cannot write the spool,
    75 temporary failure (configuration, disk).
    """
    sys.exit(run(list(args), sys.stdin.buffer))


def _err(msg: str) -> None:
    click.echo(f"courrier sendmail: {msg}", err=True)


def run(argv: list[str], stdin: object) -> int:
    try:
        opts = parse_args(argv)
    except Usage as e:
        _err(str(e))
        return EX_USAGE
    try:
        cfg = config.load(opts["config"], data_dir=opts["data"])  # type: ignore[arg-type]
    except config.ConfigError as e:
        _err(f"config error: {e}")
        return EX_TEMPFAIL
    local_domain = cfg.domains[0]
    user = getpass.getuser()
    sender = str(opts["f"] if opts["f"] is not None else f"{user}@{local_domain}").strip().strip("<>")
    if sender in ("", "<>"):
        sender = ""
    else:
        sender = _qualify(sender, local_domain)
        try:
            parse_address(sender)
        except AddressError as e:
            _err(f"bad sender address {sender!r}: {e}")
            return EX_USAGE
    try:
        raw = read_message(stdin, dot_ends=not opts["i"], limit=cfg.limits.max_message_size)
    except ValueError as e:
        _err(str(e))
        return EX_DATAERR
    fields, body = split_message(raw)
    rcpts = [_qualify(r.strip(), local_domain) for arg in opts["rcpts"] for r in str(arg).split(",")  # type: ignore[attr-defined]
             if r.strip()]
    if opts["t"]:
        found = [_qualify(a, local_domain) for a in header_recipients(fields)]
        rcpts += [a for a in found if a not in rcpts]
        fields = [f for f in fields if f[:4].lower() != b"bcc:"]  # RFC 5322 §3.6.3: Bcc: is not transmitted
    if not rcpts:
        _err("no recipients given" + (" (none in To:, Cc:, Bcc: either)" if opts["t"] else ""))
        return EX_DATAERR if opts["t"] else EX_USAGE
    for r in rcpts:
        try:
            parse_address(r)
        except AddressError as e:
            _err(f"bad recipient address {r!r}: {e}")
            return EX_DATAERR
    qid = new_queue_id()
    now = time.time()
    names = {f.split(b":", 1)[0].strip().lower() for f in fields}
    added = [f"Received: by {cfg.hostname} (courrier sendmail, from userid {os.getuid()})\r\n"
             f"\tid {qid}; {email.utils.formatdate(now)}\r\n"]
    if b"from" not in names and sender:
        name = opts["F"]
        added.append(f"From: {email.utils.formataddr((str(name), sender)) if name else sender}\r\n")
    if b"date" not in names:
        added.append(f"Date: {email.utils.formatdate(now, localtime=True)}\r\n")
    if b"message-id" not in names:
        added.append(f"Message-ID: <{qid}.sendmail@{cfg.hostname}>\r\n")
    message = "".join(added).encode("utf-8") + b"".join(fields) + b"\r\n" + body
    env = Envelope(queue_id=qid, mail_from=stored_address(sender), rcpts=[Recipient(stored_address(r)) for r in rcpts],
                   received_at=now, body="8BITMIME" if not message.isascii() else None,
                   smtputf8=not sender.isascii() or any(not r.isascii() for r in rcpts),
                   origin=f"sendmail uid={os.getuid()}")
    try:
        Spool(cfg.data_dir / "queue").write(env, [message], incoming=True)
    except PermissionError as e:
        _err(f"cannot write the spool: permission denied ({e.filename})")
        return EX_CANTCREAT
    except OSError as e:
        _err(f"cannot write the spool: {e.strerror or e}")
        return EX_TEMPFAIL if out_of_space(e) else EX_CANTCREAT
    return EX_OK
