"""``courrier serve``: every enabled listener in one process until SIGINT/SIGTERM."""

from __future__ import annotations

import click

from courrier import log
from courrier.cli import Fail, common_options, main
from courrier.config import Config


@main.command()
@click.option("--capture", is_flag=True, help="Capture mode: accept and keep every message, relay nothing.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warn", "error"]), default="info",
              show_default=True, help="Least important event level to log.")
@common_options
def serve(cfg: Config, log_level: str) -> None:
    """Run the mail server (or the capture server with --capture)."""
    from courrier.app import StartupError
    from courrier.app import serve as run

    log.setup(log_level, background=True)
    try:
        run(cfg)
    except StartupError as e:
        raise Fail(str(e)) from None
    except PermissionError as e:
        raise Fail(f"permission denied: {e.filename}") from None
    except KeyboardInterrupt:
        pass
    finally:
        log.flush()  # every pending log line out before any error line or exit
