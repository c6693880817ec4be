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
@click.option("--check-config", is_flag=True,
              help="Check the configuration, certificates, user and ports; print each problem on a line; exit 0/1.")
@common_options
def serve(cfg: Config, log_level: str, check_config: bool) -> None:
    """Run the mail server (or the capture server with --capture)."""
    if check_config:
        from courrier.preflight import problems

        found = problems(cfg)
        for p in found:
            click.echo(p)
        if found:
            raise SystemExit(1)
        click.echo(f"configuration OK ({cfg.source or 'built-in defaults'})")
        return
    from courrier.app import serve as run
    from courrier.lifecycle import StartupError

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
