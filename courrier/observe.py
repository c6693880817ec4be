"""Observability: Prometheus metrics and the status file ``courrier status`` reads, both fed by the log events.

Why from the log: every event a mail server should be judged by is already one log line with stable keys
(``smtp.message listener=… result=250``, ``delivery.deferred to=…``). Counting those same events (``log.observe``)
means the numbers on a dashboard and the lines in the journal can never disagree, and no protocol module needs a
metrics import. Gauges that are a state, not an event — the queue's size, open connections per protocol — are
read when scraped.

Metrics (a registry of its own, never the process-global one):

- ``courrier_smtp_messages_total{listener,result}``: messages at end of DATA/BDAT; result ``accepted`` (2xx),
  ``rejected`` (5xx), ``deferred`` (4xx); listener ``smtp`` (MX or capture), ``submission``, ``submissions``
- ``courrier_deliveries_total{outcome}``: recipients per delivery attempt from the queue: sent, deferred, failed
- ``courrier_connections{protocol}``: open connections (smtp, imap, pop3, managesieve)
- ``courrier_sessions_total{protocol}``: sessions opened since start (smtp, imap), from their ``*.connect`` events
- ``courrier_http_request_duration_seconds{method,route}``: API and UI latency, a histogram; ``route`` is the
  route's template (``/api/v1/message/{ID}``), never the raw path, so the label set stays bounded
- ``courrier_queue_messages``: messages in the outbound queue
- ``courrier_log_events_total{event,level}``: warn and error events, by event name (bounded: names are constants)
- ``courrier_start_time_seconds``

The status file (``data_dir/status.json``, 0600, replaced atomically) holds the pid, start time, mode and
listeners, and the last ``RECENT_ERRORS`` warn/error lines; it is written at start, then at most every
``STATUS_EVERY`` seconds when something changed, and marked stopped at a clean stop.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from courrier import log

RECENT_ERRORS = 20
STATUS_EVERY = 2.0
STATUS_FILE = "status.json"


_SESSION_EVENTS = {"smtp.connect": "smtp", "imap.connect": "imap"}


def _result(code: Any) -> str:
    c = str(code)[:1]
    return {"2": "accepted", "4": "deferred"}.get(c, "rejected")


class _StateCollector:
    """Gauges computed at scrape time (a failing source is left out of that scrape, never a 500)."""

    def __init__(self, queue_size: Callable[[], int], connections: Callable[[], dict[str, int]]) -> None:
        self.queue_size, self.connections = queue_size, connections

    def collect(self) -> Any:
        q = GaugeMetricFamily("courrier_queue_messages", "Messages in the outbound queue")
        try:
            q.add_metric([], self.queue_size())
        except Exception as e:  # noqa: BLE001 - the database busy or gone: skip the sample
            log.event("metrics.source_failed", level="warn", source="queue", error=str(e)[:200])
        yield q
        c = GaugeMetricFamily("courrier_connections", "Open connections per protocol", labels=["protocol"])
        for proto, n in sorted(self.connections().items()):
            c.add_metric([proto], n)
        yield c


class Observer:
    """The metrics registry and the recent-errors ring of one running server."""

    def __init__(self, data_dir: Path, *, queue_size: Callable[[], int],
                 connections: Callable[[], dict[str, int]]) -> None:
        self.data_dir = data_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter("courrier_smtp_messages", "Messages received over SMTP at end of data",
                                ["listener", "result"], registry=self.registry)
        self.deliveries = Counter("courrier_deliveries", "Recipients per delivery attempt from the queue",
                                  ["outcome"], registry=self.registry)
        self.events = Counter("courrier_log_events", "Warn and error log events", ["event", "level"],
                              registry=self.registry)
        self.sessions = Counter("courrier_sessions", "Sessions opened since start", ["protocol"],
                                registry=self.registry)
        self.http = Histogram("courrier_http_request_duration_seconds", "HTTP request latency (API and UI)",
                              ["method", "route"], registry=self.registry,
                              buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
        self.started = time.time()
        Gauge("courrier_start_time_seconds", "Start time of the server (Unix time)",
              registry=self.registry).set(self.started)
        for listener in ("smtp", "submission", "submissions"):  # present from the first scrape on
            for result in ("accepted", "rejected", "deferred"):
                self.messages.labels(listener, result)
        for outcome in ("sent", "deferred", "failed"):
            self.deliveries.labels(outcome)
        for proto in _SESSION_EVENTS.values():
            self.sessions.labels(proto)
        self.registry.register(_StateCollector(queue_size, connections))  # type: ignore[arg-type]
        self.recent: deque[str] = deque(maxlen=RECENT_ERRORS)
        self.info: dict[str, Any] = {}
        self._dirty = False
        self._written = 0.0
        self._unobserve: Callable[[], None] | None = None

    # ------------------------------------------------------------------ events

    def on_event(self, event: str, level: str, fields: dict[str, Any]) -> None:
        if event in _SESSION_EVENTS:
            self.sessions.labels(_SESSION_EVENTS[event]).inc()
        elif event == "smtp.message":
            self.messages.labels(str(fields.get("listener") or "smtp"), _result(fields.get("result"))).inc()
        elif event.startswith("delivery.") and event[9:] in ("sent", "deferred", "failed"):
            to = str(fields.get("to") or "")
            self.deliveries.labels(event[9:]).inc(max(1, to.count(",") + 1) if to else 1)
        if level in ("warn", "error"):
            self.events.labels(event, level).inc()
            self.recent.append(log.format_event(level, event, fields))
            self._dirty = True

    def start(self, info: dict[str, Any]) -> None:
        self.info = {"pid": os.getpid(), "started": self.started, **info}
        self._unobserve = log.observe(self.on_event)
        self.write_status(force=True)

    def stop(self) -> None:
        if self._unobserve:
            self._unobserve()
            self._unobserve = None
        self.info["stopped"] = time.time()
        self.write_status(force=True)

    # ------------------------------------------------------------------ outputs

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format the scraper asks for: Prometheus text 0.0.4, or OpenMetrics when its Accept
        header names ``application/openmetrics-text``."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def write_status(self, force: bool = False) -> None:
        """Rewrites the status file when something changed (at most every STATUS_EVERY seconds unless forced)."""
        now = time.time()
        if not force and (not self._dirty or now - self._written < STATUS_EVERY):
            return
        self._dirty, self._written = False, now
        doc = {**self.info, "written": now, "recent_errors": list(self.recent)}
        path = self.data_dir / STATUS_FILE
        tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, path)
        except OSError as e:  # a full disk must not stop the server: say so once per attempt
            log.event("status.write_failed", level="warn", error=e.strerror or str(e))


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The status file of the server on ``data_dir`` (None: it never started there)."""
    try:
        return json.loads((data_dir / STATUS_FILE).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` is still a courrier process (not a later process that reused the number)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return b"courrier" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the signal test
