"""Mailpit's Chaos triggers: random SMTP failures a capture server answers on purpose, so an application's retry
and error paths can be tested against it (Mailpit's ``internal/smtpd/chaos/chaos.go``).

Three triggers — ``Sender`` (at MAIL), ``Recipient`` (at each RCPT), ``Authentication`` (at AUTH, before the
credentials are read) — each an SMTP ``ErrorCode`` (400-599) and a ``Probability`` (0-100 %). They start disabled
(probability 0) and are set at run time through ``PUT /api/v1/chaos``; only when ``[capture] chaos`` is on.
``fail_by_address`` (deterministic, by recipient local part) is courrier's own and independent of these.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

from courrier.mail.reply import Reply

# Mailpit's defaults: the error code a trigger gets when none (0) is given.
DEFAULT_CODES = {"Sender": 451, "Recipient": 451, "Authentication": 535}
TEXTS = {"Sender": "Chaos sender error", "Recipient": "Chaos recipient error",
         "Authentication": "Chaos authentication error"}


class ChaosError(ValueError):
    """A trigger value Mailpit refuses (the API answers 400 with this text)."""


@dataclass(frozen=True)
class Trigger:
    error_code: int
    probability: int


def _int_field(value: Any, name: str) -> int:
    """A JSON number as Go's ``json.Decode`` into an int accepts it: whole numbers only."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ChaosError(f"{name}: expected an integer")
    return int(value)


def _folded(d: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in d.items()}


class Chaos:
    """The current triggers; read by the SMTP role on every MAIL/RCPT/AUTH, replaced whole by the API."""

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._triggers = {k: Trigger(code, 0) for k, code in DEFAULT_CODES.items()}

    def as_json(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: {"ErrorCode": t.error_code, "Probability": t.probability} for k, t in self._triggers.items()}

    def set_from(self, data: dict[str, Any]) -> None:
        """Every trigger from one JSON body: an omitted trigger (or field) resets to its default with 0 %, as
        Mailpit's ``SetFromStruct``. Nothing changes when any value is out of range."""
        new = {}
        given = _folded(data)  # Go's encoding/json matches field names without regard to case
        for key, default in DEFAULT_CODES.items():
            raw = given.get(key.lower())
            raw = {} if raw is None else raw
            if not isinstance(raw, dict):
                raise ChaosError(f"{key}: expected an object")
            fields = _folded(raw)
            code = _int_field(fields.get("errorcode"), f"{key}.ErrorCode") or default
            prob = _int_field(fields.get("probability"), f"{key}.Probability")
            if not 400 <= code <= 599:
                raise ChaosError("error code must be between 400 and 599")
            if not 0 <= prob <= 100:
                raise ChaosError("probability must be between 0 and 100")
            new[key] = Trigger(code, prob)
        with self._lock:
            self._triggers = new

    def roll(self, key: str) -> Reply | None:
        """The failure to answer now, or None. A draw of 0-99 below the probability fires (100 % always)."""
        if not self.enabled:
            return None
        t = self._triggers[key]
        if t.probability <= 0 or secrets.randbelow(100) >= t.probability:
            return None
        return Reply(t.error_code, None, TEXTS[key])
