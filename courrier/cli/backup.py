"""``courrier backup DIR``: a consistent copy of the data while the server runs (courrier/backup.py says how);
restore is ``courrier serve --data DIR`` (or pointing ``data_dir`` at it)."""

from __future__ import annotations

from pathlib import Path

import click

from courrier.cli import Fail, common_options, main
from courrier.config import Config


@main.command("backup")
@click.argument("directory", type=click.Path(file_okay=False))
@common_options
def backup_cmd(cfg: Config, directory: str) -> None:
    """Copy the data (database, mail, queue, keys) into DIRECTORY (absent or empty), consistently, while the server
    runs. Start on the copy with `courrier serve --data DIRECTORY`."""
    from courrier.backup import BackupError, backup

    dest = Path(directory).absolute()
    try:
        s = backup(cfg.data_dir, dest)
    except BackupError as e:
        raise Fail(str(e)) from None
    except OSError as e:
        raise Fail(f"backup into {dest} failed: {e.strerror or e}{f' ({e.filename})' if e.filename else ''}") from None
    how = "hard-linked" if s.linked else "copied (another file system)"
    click.echo(f"backup of {cfg.data_dir} in {dest}: database, {s.messages} messages and {s.queued} queued "
               f"{how}, keys copied; restore with `courrier serve --data {dest}`")
