"""``courrier status``: is the server on this data_dir running, on which listeners, how big is its queue, and what
went wrong lately.

It reads what the running server writes (``data_dir/status.json``, courrier/observe.py) and the queue from the
database, so it works without any network access to the server and while the web UI is disabled. Exit status: 0 the
server is running, 3 it is not (as LSB init scripts' ``status``), 1 a failure explained in one line.
"""

from __future__ import annotations

import time

import click

from courrier.cli import Fail, common_options, main
from courrier.config import Config


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@main.command("status")
@click.option("--errors", "max_errors", type=click.IntRange(0, 20), default=10, show_default=True,
              help="How many recent warnings and errors to show.")
@common_options
def status(cfg: Config, max_errors: int) -> None:
    """Show whether the server runs, its listeners, the queue size and the last errors."""
    from courrier import observe
    from courrier.queue.store import SQLiteQueueStore

    doc = observe.read_status(cfg.data_dir)
    running = bool(doc) and "stopped" not in doc and observe.alive(int(doc.get("pid", 0)))
    if doc is None:
        click.echo(f"server: not running (it never started on {cfg.data_dir})")
    elif running:
        click.echo(f"server: running (pid {doc['pid']}, since {_when(doc['started'])}, courrier {doc.get('version')}, "
                   f"{doc.get('mode', 'server')} mode, hostname {doc.get('hostname')})")
    else:
        when = doc.get("stopped")
        click.echo("server: not running (" + (f"stopped {_when(when)}" if when else
                                             f"pid {doc.get('pid')} is gone: it did not stop cleanly") + ")")
    if doc and running:
        click.echo("listeners:")
        for name, addr, desc in doc.get("listeners", []):
            click.echo(f"  {name:<12} {addr:<24} {desc}")
    if cfg.db_path.exists():
        try:
            if cfg.store.backend == "postgresql":  # a cluster: the queue every node works
                from courrier.cluster.pg import Pool
                from courrier.cluster.queue import PgQueueStore

                rows = PgQueueStore(Pool(cfg.store.dsn, cfg.store.timeout), "cli", cfg.store.lease).all()
            else:
                rows = SQLiteQueueStore(cfg.db_path).all()
        except Exception as e:  # noqa: BLE001 - a locked or damaged database: one line, not a traceback
            raise Fail(f"cannot read the queue in {cfg.db_path}: {e}") from None
        line = f"queue: {len(rows)} message{'s' if len(rows) != 1 else ''}"
        if rows:
            now = time.time()
            oldest = min(r.created for r in rows)
            nxt = min(r.next_attempt for r in rows)
            line += f" (oldest {_ago(now - oldest)} old, next attempt " + (
                f"in {_ago(nxt - now)})" if nxt > now else "due now)")
        click.echo(line)
    errors = (doc or {}).get("recent_errors", [])[-max_errors:] if max_errors else []
    click.echo(f"last errors: {'none' if not errors else ''}".rstrip())
    for e in errors:
        click.echo(f"  {e}")
    if not running:
        raise SystemExit(3)
