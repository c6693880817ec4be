"""``courrier send``: the sending MUA and swaks-like test client; ``courrier send --batch FILE.json``: mail-merge/load.

Without ``--server`` it talks to this configuration's own listener: ``submissions`` with ``--tls``, ``submission``
with ``--user``, the MX ``smtp`` listener otherwise.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from courrier.cli import Fail, common_options, main, read_password
from courrier.client import batch as batchmod
from courrier.client import compose
from courrier.client.smtpclient import ClientError, SMTPReplyError, Transaction
from courrier.client.submit import Security, ServerOptions, submit
from courrier.config import Config, HostPort, parse_hostport


def _server(cfg: Config, server: str | None, security: Security, user: str | None) -> HostPort:
    if server:
        try:
            return parse_hostport(server, default_port=465 if security == "tls" else 25)
        except ValueError as e:
            raise click.UsageError(f"--server: {e}") from None
    name = "submissions" if security == "tls" else ("submission" if user else "smtp")
    addrs = getattr(cfg.listen, name)
    if not addrs:
        raise Fail(f"no --server given and the {name} listener is disabled in the configuration")
    hp = addrs[0]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(hp.host, hp.host)
    return HostPort(host, hp.port)


def _trace(direction: str, line: str) -> None:
    click.echo(f"{direction}: {line}" if direction in "CS" else f"*  {line}")


def _report(tx: Transaction, where: str) -> None:
    """Success line on stdout; per-recipient results on stderr and exit 1 when some were refused."""
    if tx.refused or not tx.delivered:
        for rcpt, reply in tx.rcpt.items():
            click.echo(f"  {'accepted' if reply.ok else 'REFUSED '} {rcpt}: {reply}", err=True)
    if not tx.accepted:
        raise Fail(f"{where} refused every recipient")
    if not tx.delivered:
        raise Fail(f"{where} refused the message: {tx.data}")
    n = len(tx.accepted)
    click.echo(f"sent to {n} recipient{'s' if n != 1 else ''} via {where}: {tx.data}")
    if tx.refused:
        raise Fail(f"{len(tx.refused)} of {len(tx.rcpt)} recipients refused")


@main.command("send")
@click.option("--server", metavar="HOST:PORT", help="SMTP server (default: this configuration's own listener).")
@click.option("--starttls", is_flag=True, help="Upgrade to TLS with STARTTLS (RFC 3207) before anything else.")
@click.option("--tls", "implicit_tls", is_flag=True, help="TLS from the first byte (RFC 8314), e.g. port 465.")
@click.option("--user", metavar="U", help="Authenticate (AUTH PLAIN or LOGIN) as U.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--from", "sender", metavar="A", help="Sender: header From, and envelope sender unless --envelope-from.")
@click.option("--to", multiple=True, metavar="B", help="Recipient (To:); repeatable.")
@click.option("--cc", multiple=True, metavar="B", help="Recipient (Cc:); repeatable.")
@click.option("--bcc", multiple=True, metavar="B", help="Recipient in the envelope only; repeatable.")
@click.option("--subject", metavar="S")
@click.option("--body", metavar="T", help="Plain-text body.")
@click.option("--body-file", type=click.Path(dir_okay=False, allow_dash=True), help="Plain-text body from a file (- stdin).")
@click.option("--html-file", type=click.Path(exists=True, dir_okay=False), help="HTML alternative from a file.")
@click.option("--attach", multiple=True, type=click.Path(exists=True, dir_okay=False), help="Attach a file; repeatable.")
@click.option("--header", "headers", multiple=True, metavar='"K: V"', help="Add or replace a header; repeatable.")
@click.option("--envelope-from", metavar="X", help="MAIL FROM address when it should differ from --from.")
@click.option("--eml", type=click.Path(dir_okay=False, allow_dash=True), help="Send this message file as is.")
@click.option("--trace", is_flag=True, help="Print the SMTP dialogue (C:/S: lines, AUTH secrets masked).")
@click.option("--batch", "batch_file", type=click.Path(dir_okay=False), help="Send a JSON batch (docs/batch.md).")
@click.option("--concurrency", type=click.IntRange(1, 200), default=4, show_default=True,
              help="With --batch: connections used in parallel.")
@click.option("--helo", metavar="NAME", help="Name to give in EHLO (default: this machine's host name).")
@click.option("--insecure", is_flag=True,
              help="Do not verify the server's TLS certificate (never verified on loopback).")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=30, show_default=True,
              help="Seconds to wait for each reply.")
@common_options
def send(cfg: Config, server: str | None, starttls: bool, implicit_tls: bool, user: str | None,
         password_stdin: bool, sender: str | None, to: tuple[str, ...], cc: tuple[str, ...], bcc: tuple[str, ...],
         subject: str | None, body: str | None, body_file: str | None, html_file: str | None,
         attach: tuple[str, ...], headers: tuple[str, ...], envelope_from: str | None, eml: str | None,
         trace: bool, batch_file: str | None, concurrency: int, helo: str | None, insecure: bool,
         timeout: float) -> None:
    """Send a message (or a --batch of them) to an SMTP server."""
    if starttls and implicit_tls:
        raise click.UsageError("--starttls and --tls exclude each other")
    if password_stdin and not user:
        raise click.UsageError("--password-stdin needs --user")
    security: Security = "tls" if implicit_tls else ("starttls" if starttls else "none")
    hp = _server(cfg, server, security, user)
    password = read_password(password_stdin, confirm=False) if user else None
    opts = ServerOptions(hp.host, hp.port, security, user=user, password=password, helo=helo, insecure=insecure,
                         timeout=timeout)
    if batch_file:
        given = [n for n, v in (("--from", sender), ("--to", to), ("--cc", cc), ("--bcc", bcc), ("--subject", subject),
                                ("--body", body), ("--body-file", body_file), ("--html-file", html_file),
                                ("--attach", attach), ("--header", headers), ("--envelope-from", envelope_from),
                                ("--eml", eml), ("--trace", trace)) if v]
        if given:
            raise click.UsageError(f"--batch takes its messages from the file; {given[0]} cannot be used with it")
        _send_batch(Path(batch_file), opts, concurrency)
        return
    if eml:
        if any((subject, body, body_file, html_file, attach, headers)):
            raise click.UsageError("--eml is sent as is: --subject, --body*, --html-file, --attach and --header "
                                   "cannot be used with it")
        data, env_sender, rcpts = _eml(Path(eml), sender, envelope_from, to, cc, bcc)
    else:
        if not sender:
            raise click.UsageError("--from is required (or --eml)")
        data, env_sender, rcpts = _compose(sender, to, cc, bcc, subject, body, body_file, html_file, attach,
                                           headers, envelope_from)
    if not rcpts:
        raise click.UsageError("no recipient: give --to, --cc or --bcc")
    try:
        tx = asyncio.run(submit(opts, env_sender, rcpts, data, trace=_trace if trace else None))
    except SMTPReplyError as e:
        raise Fail(f"{opts.describe()} refused {e.step}: {e.reply}") from None
    except ClientError as e:
        raise Fail(str(e)) from None
    _report(tx, opts.describe())


def _compose(sender: str, to: tuple[str, ...], cc: tuple[str, ...], bcc: tuple[str, ...], subject: str | None,
             body: str | None, body_file: str | None, html_file: str | None, attach: tuple[str, ...],
             headers: tuple[str, ...], envelope_from: str | None) -> tuple[bytes, str, list[str]]:
    if body is not None and body_file is not None:
        raise click.UsageError("--body and --body-file exclude each other")
    try:
        if body_file is not None:
            body = sys.stdin.read() if body_file == "-" else Path(body_file).read_text(encoding="utf-8")
        html = Path(html_file).read_text(encoding="utf-8") if html_file else None
    except (OSError, UnicodeDecodeError) as e:
        raise Fail(f"cannot read the body: {e}") from None
    try:
        draft = compose.Draft(sender=sender, to=list(to), cc=list(cc), bcc=list(bcc), subject=subject, body=body,
                              html=html, attachments=[Path(a) for a in attach],
                              headers=[compose.parse_header_option(h) for h in headers])
        env_sender, rcpts = compose.envelope(draft, envelope_from)
        return compose.to_bytes(compose.build(draft)), env_sender, rcpts
    except compose.ComposeError as e:
        raise Fail(str(e)) from None


def _eml(path: Path, sender: str | None, envelope_from: str | None, to: tuple[str, ...], cc: tuple[str, ...],
         bcc: tuple[str, ...]) -> tuple[bytes, str, list[str]]:
    """The file's bytes untouched; envelope from the options, else from the file's headers."""
    try:
        data, parsed = compose.read_eml(path)
        head_sender, head_rcpts = compose.eml_envelope(parsed)
        env_sender = compose.addr_spec(envelope_from or sender or head_sender or "")
        if to or cc or bcc:
            _s, rcpts = compose.envelope(compose.Draft(sender=env_sender, to=to, cc=cc, bcc=bcc))
        else:
            rcpts = head_rcpts
    except compose.ComposeError as e:
        raise Fail(str(e) if "bad address ''" not in str(e) else f"{path}: no sender (give --from)") from None
    return data, env_sender, rcpts


def _send_batch(path: Path, opts: ServerOptions, concurrency: int) -> None:
    try:
        plans = batchmod.load(path)
    except batchmod.BatchError as e:
        raise Fail(str(e)) from None
    with click.progressbar(length=len(plans), label=f"sending {len(plans)} messages", file=sys.stderr,
                           show_pos=True, show_eta=True) as bar:
        summary = asyncio.run(batchmod.run(plans, opts, concurrency, progress=lambda _r: bar.update(1)))
    shown = 0
    for r in summary.results:
        if (r.error or r.refused) and shown < 20:
            shown += 1
            refused = "; ".join(f"{a}: {rep}" for a, rep in r.refused.items())
            click.echo(f"  {r.plan.label}: {r.error or ''}{' — ' if r.error and refused else ''}{refused}", err=True)
    click.echo(summary.line())
    if summary.failed or summary.refused_recipients:
        raise Fail(f"{len(summary.failed)} messages not sent, {summary.refused_recipients} recipients refused")
