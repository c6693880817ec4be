"""In-process change notification: delivery and sessions tell each other that a Maildir changed.

IMAP IDLE (RFC 2177) and the untagged EXISTS/EXPUNGE/FETCH updates of RFC 3501 §5.2 need to know when another
session or a delivery changed a mailbox. Callbacks run on the event loop; a writer on another thread goes through
``loop.call_soon_threadsafe``. Changes made by other processes are found by the periodic rescans of the sessions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


class Notifier:
    def __init__(self) -> None:
        self._subs: dict[str, set[Callable[[], None]]] = {}

    @staticmethod
    def _key(path: Path | str) -> str:
        return os.path.normpath(os.path.abspath(path))

    def subscribe(self, path: Path | str, callback: Callable[[], None]) -> Callable[[], None]:
        """Calls ``callback()`` whenever ``path`` is notified; returns the function that unsubscribes."""
        k = self._key(path)
        self._subs.setdefault(k, set()).add(callback)

        def cancel() -> None:
            subs = self._subs.get(k)
            if subs is not None:
                subs.discard(callback)
                if not subs:
                    self._subs.pop(k, None)

        return cancel

    def notify(self, path: Path | str) -> None:
        for cb in list(self._subs.get(self._key(path), ())):
            cb()
