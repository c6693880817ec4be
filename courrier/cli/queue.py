"""``courrier queue list|show|retry|delete|flush``: the outbound queue, whether the server runs or not.

The command works on the same files the server uses — the spool (``data_dir/queue``) and the queue tables of
``courrier.db`` — so it needs no connection to the server: a running server sees ``retry``/``flush`` within its poll
interval (≤ 1 s) and skips a message ``delete`` removed. Messages dropped by ``courrier sendmail`` that the server has
not picked up yet are listed as ``waiting``.
"""

from __future__ import annotations

import time

import click

from courrier.cli import Fail, common_options, main
from courrier.config import Config
from courrier.queue.api import QueueStore
from courrier.queue.spool import Spool, SpoolError
from courrier.queue.store import SQLiteQueueStore


def _open(cfg: Config) -> tuple[Spool, QueueStore]:
    if cfg.store.backend == "postgresql":  # a cluster: the queue every node works (courrier/cluster/queue.py)
        from courrier.cluster.pg import Pool
        from courrier.cluster.queue import PgQueueStore, PgSpool

        pool = Pool(cfg.store.dsn, cfg.store.timeout)
        return PgSpool(pool, cfg.data_dir / "queue"), PgQueueStore(pool, "cli", cfg.store.lease)  # type: ignore[return-value]
    try:
        return Spool(cfg.data_dir / "queue"), SQLiteQueueStore(cfg.db_path)
    except PermissionError as e:
        raise Fail(f"permission denied: {e.filename}") from None
    except OSError as e:
        raise Fail(f"cannot open the queue in {cfg.data_dir}: {e.strerror or e}") from None


def _when(t: float | None, now: float) -> str:
    if t is None:
        return "-"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    delta = t - now
    if delta <= 0:
        return f"{stamp} (due)"
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= n:
            return f"{stamp} (in {delta / n:.0f}{unit})"
    return f"{stamp} (in {delta:.0f}s)"


@main.group()
def queue() -> None:
    """The outbound queue: list, show, retry, delete, flush."""


@queue.command("list")
@common_options
def list_(cfg: Config) -> None:
    """One line per queued message: id, sender, recipients, attempts, next attempt, last error."""
    spool, store = _open(cfg)
    now = time.time()
    rows = store.all()
    n = 0
    for r in rows:
        pending = r.pending or [a for _, a, _ in r.rcpts]
        click.echo(f"{r.qid}  <{r.sender}>  {','.join(pending)}  attempts={r.attempts}  "
                   f"next={_when(r.next_attempt, now)}  last_error={r.last_error or '-'}")
        n += 1
    for p in spool.incoming_files():
        try:
            env = spool.read_envelope_path(p)
        except (SpoolError, OSError, ValueError):
            continue
        click.echo(f"{env.queue_id}  <{env.mail_from}>  {','.join(str(x.address) for x in env.rcpts)}  attempts=0  "
                   f"next=waiting for the server  last_error=-")
        n += 1
    if n == 0:
        click.echo("queue is empty (nothing queued)")


@queue.command()
@click.argument("qid")
@common_options
def show(cfg: Config, qid: str) -> None:
    """A message's envelope, recipients and every delivery attempt (the delivery log)."""
    spool, store = _open(cfg)
    row = store.get(qid)
    history = store.history(qid)
    if row is None and not history:
        raise Fail(f"no message {qid} in the queue or its log")
    now = time.time()
    if row is not None:
        click.echo(f"id:           {row.qid}")
        click.echo(f"sender:       <{row.sender}>")
        click.echo(f"queued:       {_when(row.created, now).split(' ')[0]}")
        click.echo(f"size:         {row.size}")
        click.echo(f"attempts:     {row.attempts}")
        click.echo(f"next attempt: {_when(row.next_attempt, now)}")
        if row.last_error:
            click.echo(f"last error:   {row.last_error}")
        try:
            env = spool.read_envelope(qid)
            extra = [f"{k}={v}" for k, v in (("RET", env.ret), ("ENVID", env.envid), ("BODY", env.body)) if v]
            if env.smtputf8:
                extra.append("SMTPUTF8")
            if extra:
                click.echo(f"parameters:   {' '.join(extra)}")
        except (SpoolError, OSError, ValueError):
            click.echo("spool file:   missing or unreadable")
        click.echo("recipients:")
        for _, addr, status in row.rcpts:
            click.echo(f"  {status:<8} {addr}")
    else:
        click.echo(f"id:           {qid} (no longer queued)")
    click.echo("delivery log:")
    if not history:
        click.echo("  (no attempt yet)")
    for h in history:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h.time))
        reply = " ".join(str(x) for x in (h.code, h.enhanced, h.text) if x)
        where = (f"{h.host or '-'}" + (f" [{h.address}]" if h.address else "") + (f" {h.tls}" if h.tls else "")
                 + (f" tls_policy={h.tls_policy}" if h.tls_policy else ""))
        click.echo(f"  {stamp}  {h.result:<8} {h.recipients}  via {where}: {reply}")


@queue.command()
@click.argument("qid")
@common_options
def retry(cfg: Config, qid: str) -> None:
    """Make one message due now (the server tries it within a second)."""
    _, store = _open(cfg)
    if store.retry_now(qid) == 0:
        raise Fail(f"no message {qid} in the queue")
    click.echo(f"{qid}: will be retried now")


@queue.command()
@click.argument("qid")
@common_options
def delete(cfg: Config, qid: str) -> None:
    """Remove one message from the queue without delivering it and without a bounce."""
    spool, store = _open(cfg)
    found = store.get(qid) is not None
    store.remove(qid)
    try:
        path = spool.path(qid)
    except ValueError:
        raise Fail(f"bad queue id {qid!r}") from None
    for p in (path, spool.incoming / qid):
        if p.exists():
            p.unlink()
            found = True
    if not found:
        raise Fail(f"no message {qid} in the queue")
    click.echo(f"{qid}: deleted")


@queue.command()
@common_options
def flush(cfg: Config) -> None:
    """Make every queued message due now."""
    _, store = _open(cfg)
    n = store.retry_now(None)
    click.echo(f"{n} message{'s' if n != 1 else ''} will be retried now")
