"""Durable file writing, for the capture store: the same machinery the mail store delivers with.

Capture mode's mailbox is a Maildir by contract (``data_dir/capture``, read by IMAP and POP3 too), written by the
capture store (``courrier/capture/store.py``) with its own index. It takes from here — and from nothing else inside
``courrier/mailbox`` but the interface (``api``) — the pieces that make a write durable before the SMTP 250: a file
written to ``tmp/``, fsync'ed and renamed into ``new/`` (``write_new``), rounds sharing one directory fsync
(``BatchWriter``, ``Round``) and the disk-writer process (``ProcessWriter``, for messages up to ``PROCESS_MAX``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from courrier.mailbox.maildir import BatchWriter, Round, ensure, write_new

if TYPE_CHECKING:
    from courrier.mailbox.writer import PROCESS_MAX, PROCESS_THREADS, ProcessWriter


def __getattr__(name: str) -> Any:  # noqa: ANN401 - PEP 562: the disk-writer process's side is loaded on first use
    """The parent's side of the disk-writer (``mailbox/writer.py``, asyncio) only when asked: the child process
    imports this module for ``write_new`` and ``Round`` and should not carry an event loop's modules (9 MiB)."""
    if name in ("PROCESS_MAX", "PROCESS_THREADS", "ProcessWriter"):
        from courrier.mailbox import writer

        return getattr(writer, name)
    raise AttributeError(name)


__all__ = ["PROCESS_MAX", "PROCESS_THREADS", "BatchWriter", "ProcessWriter", "Round", "ensure", "write_new"]
