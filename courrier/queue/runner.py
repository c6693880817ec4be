"""The queue's scheduler: takes messages into the spool, tries them when due, retries, bounces, and forgets them.

One pass over a message (``_process``): read, deliver, plan, execute.

1. read and verify its spool file (a file that fails verification goes to ``queue/corrupt/``, never delivered);
2. hand the pending recipients to the transport (local Maildir or remote SMTP), which reports one Outcome per
   recipient and one log row per attempt — unless the message has expired or loops (then every pending recipient
   gets the same failure without an attempt);
3. :func:`courrier.queue.plan.plan` decides, without I/O: who is done, failed or deferred, the next attempt, and
   which DSNs go (failure, delay once, success on request);
4. execute it: DSNs are spooled *before* the state is recorded, so a crash can repeat a notice but never lose one;
   then each recipient's status and the next attempt (back-off) in one transaction; when nothing is pending, the
   row and the spool file go.

The runner wakes when a message is enqueued, when the earliest retry falls due, and every ``poll_interval`` to pick up
what other processes did: files dropped by ``courrier sendmail`` into ``queue/incoming/`` and ``courrier queue
retry|flush|delete``. At start it reconciles the spool with the database, so a message spooled just before a crash
(file written, row not yet) is delivered anyway — at-least-once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from courrier import log
from courrier.delivery import bounce
from courrier.delivery.loops import count_received
from courrier.delivery.outcome import Outcome
from courrier.delivery.signing import sign_or_keep
from courrier.mail.envelope import Envelope, Recipient, new_queue_id
from courrier.mail.path import NULL
from courrier.queue.api import QueueRow, QueueStore
from courrier.queue.batch import Batcher
from courrier.queue.plan import Plan, Record, Target, before_delivery, plan, result_of
from courrier.queue.schedule import Schedule
from courrier.queue.spool import Spool, SpoolError, decode

# (recipients, outcome) for one attempt: the runner turns it into a log line and a delivery-log row
AttemptHook = Callable[[list[str], Outcome], None]


class Transport(Protocol):
    async def deliver(self, env: Envelope, message: bytes, rcpts: list[tuple[int, Recipient]],
                      on_attempt: AttemptHook) -> dict[int, Outcome]: ...


class Queue:
    def __init__(self, *, spool: Spool, store: QueueStore, transport: Transport, schedule: Schedule,
                 hostname: str, max_active: int = 200, poll_interval: float = 1.0,
                 stop_timeout: float = 10.0, signer: Callable[[], Callable[[bytes], bytes] | None] | None = None
                 ) -> None:
        self.spool = spool
        self.store = store
        self.transport = transport
        self.schedule = schedule
        self.hostname = hostname
        self.max_active = max_active
        self.poll_interval = poll_interval
        self.stop_timeout = stop_timeout
        self.signer = signer  # returns the current DKIM signer (App.outbound_signer), which SIGHUP may replace
        self.disk = ThreadPoolExecutor(max_workers=16, thread_name_prefix="courrier-spool")
        self.dbx = ThreadPoolExecutor(max_workers=1, thread_name_prefix="courrier-queuedb")
        self.loadx = ThreadPoolExecutor(max_workers=1, thread_name_prefix="courrier-queueload")
        # messages are loaded and their passes recorded in batches: one thread hand-off, one SQLite transaction and
        # one directory fsync for everything that finished meanwhile (courrier/queue/batch.py)
        self._loader: Batcher[str, object] = Batcher(self.loadx, self._load_many)
        self._completer: Batcher[tuple[str, dict[str, object] | None, bool], None] = Batcher(
            self.dbx, self._complete_many)
        self._wake = asyncio.Event()
        self._active: dict[str, asyncio.Task[None]] = {}
        # passes delivered and waiting for their record (a batched transaction and fsync): they keep their queue id
        # out of due() but not their slot, so a slow disk does not stall delivery (up to 4 × max_active of them)
        self._completing: set[str] = set()
        self._main: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------------ helpers

    async def _db(self, fn: Callable[..., object], *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self.dbx, fn, *args)

    async def _disk(self, fn: Callable[..., object], *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self.disk, fn, *args)

    def sign(self, message: bytes, qid: str) -> bytes:
        """``message`` with the DKIM header the signer gives (none when no key applies); unsigned on error."""
        return sign_or_keep(self.signer() if self.signer else None, message, qid)

    def kick(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ intake

    async def enqueue(self, env: Envelope, parts: Iterable[bytes]) -> None:
        """Spools a message durably and registers it; returns once it is on stable storage (the 250 may follow)."""
        parts = list(parts)
        await self._disk(self.spool.write, env, parts)
        size = sum(len(p) for p in parts)
        await self._db(self.store.add, env.queue_id, str(env.mail_from), env.received_at, size,
                       [str(r.address) for r in env.rcpts])
        log.event("queue.queued", qid=env.queue_id, sender=f"<{env.mail_from}>", rcpts=len(env.rcpts), size=size,
                  origin=env.origin)
        self.kick()

    def _adopt_sync(self, path_or_qid: str, incoming: bool) -> str | None:
        """Registers a verified spool file the database does not know (sendmail drop, crash recovery)."""
        path = (self.spool.incoming / path_or_qid) if incoming else self.spool.path(path_or_qid)
        try:
            env, message = decode(path.read_bytes())
        except FileNotFoundError:
            return None
        except SpoolError as e:
            if incoming or time.time() - path.stat().st_mtime > 5:
                dest = self.spool.quarantine(path)
                log.event("queue.corrupt", level="error", file=str(dest), error=str(e))
            return None
        if incoming:
            signed = self.sign(message, env.queue_id)  # a sendmail drop: DKIM-sign it like submitted mail
            if (self.spool.msg / env.queue_id).exists():
                env.queue_id = new_queue_id()  # a clash with a queued id: take a fresh one (the file name is the id)
            if signed is not message or env.queue_id != path.name:
                message = signed
                self.spool.write(env, [message])
                path.unlink()
            else:
                self.spool.adopt(path)
        self.store.add(env.queue_id, str(env.mail_from), env.received_at, len(message),
                       [str(r.address) for r in env.rcpts])
        log.event("queue.adopted", qid=env.queue_id, sender=f"<{env.mail_from}>", rcpts=len(env.rcpts),
                  origin=env.origin)
        return env.queue_id

    def _scan_sync(self, full: bool) -> int:
        """Picks up ``incoming/`` (always) and, with ``full``, every spool file without a row (and vice versa)."""
        n = 0
        for p in self.spool.incoming_files():
            if self._adopt_sync(p.name, incoming=True):
                n += 1
        if full:
            known = self.store.qids()
            on_disk = set(self.spool.queued_ids())
            for qid in sorted(on_disk - known):
                if self._adopt_sync(qid, incoming=False):
                    n += 1
            for qid in known - on_disk:  # delivered and unlinked, or deleted by hand: nothing left to send
                self.store.remove(qid)
            self.spool.clean_tmp()
        return n

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        n = await self._disk(self._scan_sync, True)
        rows = await self._db(self.store.qids)
        log.event("queue.started", queued=len(rows), adopted=n)  # type: ignore[arg-type]
        self._main = asyncio.create_task(self._loop(), name="queue-runner")

    async def stop(self) -> None:
        """Stops taking new work; in-flight deliveries get ``stop_timeout`` to finish, then are cancelled (they stay
        queued: at-least-once)."""
        self._stopping = True
        self.kick()
        if self._main:
            self._main.cancel()
            try:
                await self._main
            except asyncio.CancelledError:
                pass
        if self._active:
            done, pending = await asyncio.wait(list(self._active.values()), timeout=self.stop_timeout)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        close = getattr(self.transport, "close", None)
        if close:
            await close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.dbx, self.store.close)
        await loop.run_in_executor(self.loadx, self.store.close)
        await loop.run_in_executor(None, lambda: (self.disk.shutdown(wait=True), self.dbx.shutdown(wait=True),
                                                  self.loadx.shutdown(wait=True)))
        log.event("queue.stopped")

    async def _loop(self) -> None:
        last_scan = 0.0
        batch = max(1, self.max_active // 8)  # refill in batches: one due() query per several completions
        while not self._stopping:
            self._wake.clear()
            now = time.time()
            free = min(self.max_active - (len(self._active) - len(self._completing)),
                       4 * self.max_active - len(self._active))
            if free < batch and now - last_scan < self.poll_interval:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
                except TimeoutError:
                    pass
                continue
            try:
                if now - last_scan >= self.poll_interval:
                    last_scan = now
                    await self._disk(self._scan_sync, False)
                # read in the loader's thread: the writer's may be waiting for a directory fsync
                due, nxt = await asyncio.get_running_loop().run_in_executor(  # type: ignore[misc]
                    self.loadx, self.store.due, now, max(free, 0), set(self._active))
            except Exception as e:  # a disk or DB hiccup must not kill the runner
                log.event("queue.loop_error", level="error", error=repr(e))
                due, nxt = [], None
            for qid in due:
                t = asyncio.create_task(self._run_one(qid), name=f"queue-{qid}")
                self._active[qid] = t
            timeout = self.poll_interval
            if nxt is not None:
                timeout = max(0.0, min(timeout, nxt - time.time()))
            if due and len(self._active) - len(self._completing) >= self.max_active:
                timeout = self.poll_interval
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                pass

    async def _run_one(self, qid: str) -> None:
        try:
            await self._process(qid)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.event("queue.process_error", level="error", qid=qid, error=repr(e))
            try:
                await self._db(self._defer_after_error, qid, repr(e))
            except Exception:
                pass
        finally:
            self._active.pop(qid, None)
            self.kick()

    def _defer_after_error(self, qid: str, error: str) -> None:
        row = self.store.get(qid)
        if row:
            nxt = self.schedule.next_attempt(row.created, time.time(), row.attempts)
            self.store.record(qid, {}, next_attempt=nxt, last_error=f"internal error: {error}")

    # ------------------------------------------------------------------ one pass over one message

    async def _process(self, qid: str) -> None:
        """One pass: read, deliver, plan, execute."""
        loaded = await self._load(qid)
        if loaded is None:
            return
        row, env, message = loaded
        del loaded
        record = _record(row, env)
        if not record.pending:
            await self._finish(qid)
            return
        now = time.time()
        attempts: list[tuple[list[str], Outcome]] = []
        results = await self._deliver(qid, record, env, message, now, attempts)
        p = plan(record, results, now, self.schedule)
        # DSNs first: a crash after this point may repeat one, never lose one.
        for entries in p.notices:
            await self.send_dsn(env, message, [bounce.DSNEntry(env.rcpts[e.idx], e.action, e.status, e.diagnostic,
                                                               e.remote_mta) for e in entries])
        del message  # what is left is bookkeeping: the slot goes to the next message, the bytes are not held
        self._completing.add(qid)
        self.kick()
        try:
            await self._execute(qid, p, attempts, now)
        finally:
            self._completing.discard(qid)

    async def _load(self, qid: str) -> tuple[QueueRow, Envelope, bytes] | None:
        """The row and the verified spool file; None when there is nothing to send (the row is dropped, a file that
        fails verification quarantined)."""
        loaded = await self._loader.submit(qid)
        if loaded is None:
            return None
        if isinstance(loaded, FileNotFoundError):
            await self._db(self.store.remove, qid)
            return None
        if isinstance(loaded, SpoolError):
            dest = await self._disk(self.spool.quarantine, self.spool.path(qid))
            await self._db(self.store.remove, qid)
            log.event("queue.corrupt", level="error", qid=qid, file=str(dest), error=str(loaded))
            return None
        if isinstance(loaded, BaseException):
            raise loaded
        return loaded  # type: ignore[return-value]

    def _load_many(self, qids: list[str]) -> list[object]:
        """Rows and spool files of ``qids``: None (no row), the read's exception, or (row, envelope, message)."""
        get_many = getattr(self.store, "get_many", None)
        rows = get_many(qids) if get_many else {q: r for q in qids if (r := self.store.get(q)) is not None}
        wanted = [q for q in qids if q in rows]
        read_many = getattr(self.spool, "read_many", None)
        if read_many is not None:
            files = dict(zip(wanted, read_many(wanted), strict=True))
        else:
            files = {}
            for q in wanted:
                try:
                    files[q] = self.spool.read(q)
                except (OSError, SpoolError) as e:
                    files[q] = e
        out: list[object] = []
        for q in qids:
            f = files.get(q)
            out.append(None if q not in rows else f if isinstance(f, BaseException) else (rows[q], *f))  # type: ignore[misc]
        return out

    def _complete_many(self, items: list[tuple[str, dict[str, object] | None, bool]]) -> list[None]:
        """Records several passes in one transaction, then forgets the finished messages: their files first (one
        directory fsync for all), then their rows — the order of :meth:`_finish`, for a whole batch."""
        passes = [(qid, kw) for qid, kw, _ in items if kw is not None]
        if passes:
            record_many = getattr(self.store, "record_many", None)
            if record_many is not None:
                record_many(passes)
            else:
                for qid, kw in passes:
                    self.store.record(qid, **kw)  # type: ignore[arg-type]
        done = [qid for qid, _, finished in items if finished]
        if done:
            remove_many = getattr(self.spool, "remove_many", None)
            if remove_many is not None:
                remove_many(done, self.disk)
            else:
                for qid in done:
                    self.spool.remove(qid)
            forget = getattr(self.store, "remove_many", None)
            if forget is not None:
                forget(done)
            else:
                for qid in done:
                    self.store.remove(qid)
        return [None] * len(items)

    async def _deliver(self, qid: str, record: Record, env: Envelope, message: bytes, now: float,
                       attempts: list[tuple[list[str], Outcome]]) -> dict[int, Outcome]:
        """Each pending recipient's outcome: the transport's, or the same one for all when the message may not be
        tried (expired, looping). Every attempt is logged and kept in ``attempts`` for the delivery log."""

        def on_attempt(rcpts: list[str], o: Outcome) -> None:
            attempts.append((rcpts, o))
            log.event(f"delivery.{result_of(o)}", level="info" if o.ok else "warn", qid=qid, to=",".join(rcpts),
                      host=o.host, addr=o.address, tls=o.tls, tls_policy=o.tls_policy, reply=str(o))

        stop = before_delivery(record, count_received(message), now, self.schedule)
        if stop is not None:
            on_attempt([t.address for t in record.pending], stop)
            return {t.idx: stop for t in record.pending}
        return await self.transport.deliver(env, message, [(t.idx, env.rcpts[t.idx]) for t in record.pending],
                                            on_attempt)

    async def _execute(self, qid: str, p: Plan, attempts: list[tuple[list[str], Outcome]], now: float) -> None:
        log_rows = [(rcpts, o, result_of(o)) for rcpts, o in attempts]
        # one transaction: the attempts' log rows, each recipient's status, the schedule (batched with other passes);
        # a finished message's file and row go right after, in the same batch
        await self._completer.submit((qid, {"results": dict(p.outcomes), "next_attempt": p.next_attempt,
                                            "last_error": p.last_error, "log_rows": log_rows,
                                            "delay_notified": p.delay_notified}, p.finished))
        if p.finished:
            log.event("queue.done", qid=qid, sent=len(p.sent), failed=len(p.failed), notices=len(p.notices))
        else:
            nxt = p.next_attempt
            log.event("queue.deferred", qid=qid, pending=len(p.deferred),
                      next_in=f"{nxt - now:.0f}s" if nxt else None, error=p.last_error)

    async def _finish(self, qid: str) -> None:
        """Forgets a message whose recipients are all recorded as done: the file goes first (unlink + shared
        directory fsync), then the row. A crash in between leaves a row without a file, which reconciliation
        drops; never a file without a row, which it would deliver again."""
        await self._completer.submit((qid, None, True))

    async def send_dsn(self, env: Envelope, message: bytes, entries: list[bounce.DSNEntry]) -> None:
        """Builds the DSN for ``entries`` about ``env``'s message and queues it from ``<>`` to the sender (never for
        a message from ``<>``: that is how bounce loops are avoided, RFC 3461 §6.2)."""
        if not bounce.should_report(env) or not entries:
            return
        body = await asyncio.get_running_loop().run_in_executor(
            self.disk, lambda: bounce.build_dsn(hostname=self.hostname, env=env, message=message, entries=entries,
                                                lifetime=self.schedule.max_lifetime))
        qid = new_queue_id()
        body = await asyncio.get_running_loop().run_in_executor(self.disk, self.sign, body, qid)
        dsn = Envelope(queue_id=qid, mail_from=NULL, rcpts=[Recipient(env.mail_from)],
                       received_at=time.time(), body="8BITMIME" if not body.isascii() else None,
                       smtputf8=not str(env.mail_from).isascii(), origin=f"dsn {entries[0].action} for {env.queue_id}")
        await self.enqueue(dsn, [body])
        log.event("queue.dsn", qid=env.queue_id, dsn_qid=dsn.queue_id, action=entries[0].action,
                  to=f"<{env.mail_from}>", rcpts=",".join(str(e.rcpt.address) for e in entries))



def _record(row: QueueRow, env: Envelope) -> Record:
    """The plan's view of a queued message: the row's schedule and its pending recipients with their NOTIFY."""
    pending = tuple(Target(i, str(env.rcpts[i].address), tuple(env.rcpts[i].notify))
                    for i, _addr, st in row.rcpts if st == "pending" and i < len(env.rcpts))
    return Record(created=row.created, pending=pending, attempts=row.attempts, last_error=row.last_error,
                  delay_notified=row.delay_notified, reports=bounce.should_report(env))
