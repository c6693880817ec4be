"""What the disk-writer process runs for the capture store (``mailbox/writer_child.py`` imports it there): one
message's file and index row (``capture_job``), the round's journal append and index transaction (``_index_round``),
and the pieces the store shares with them (``build_row``, ``envelope_of``, ``trace_fields``).

A module of its own so that the child loads only this and what it needs — no asyncio, no event hub, no web-facing
store: each module the child imports is resident memory for the server's whole life (issue 17's memory budget
counts the process tree).
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any

from courrier import log
from courrier.capture import journal
from courrier.capture import parse as P
from courrier.capture.arrival import NO_RULES, Rules, ensure_message_id
from courrier.capture.envelope import CapturedEnvelope
from courrier.capture.index import CaptureIndex, IndexRow
from courrier.mail import trace
from courrier.mail.envelope import Envelope, Hop
from courrier.mailbox import durable as maildir


def crlf_size(lf_data: bytes) -> int:
    """Size of the message as sent over SMTP (CRLF line endings) from its LF form on disk."""
    return len(lf_data) + lf_data.count(b"\n")


def _base(name: str) -> str:
    return name.split(":2,")[0]


def _flags(name: str) -> str:
    return name.split(":2,", 1)[1] if ":2," in name else ""



def envelope_of(env: Envelope, hop: Hop) -> tuple[CapturedEnvelope, str]:
    """The envelope record and the Received: field of a message the capture role accepted."""
    cenv = CapturedEnvelope.of(env, hop)
    return cenv, trace.received(hop, env, cenv.rcpts[0] if len(cenv.rcpts) == 1 else None)


def trace_fields(cenv: CapturedEnvelope, received: str) -> bytes:
    return (f"Return-Path: <{cenv.mail_from}>\n" + cenv.header() + received).encode("utf-8", "replace")


def capture_job(rnd: maildir.Round, capture_dir: str, db_path: str, max_messages: int, env: Envelope, hop: Hop,
                data: bytes, rules: Rules = NO_RULES) -> tuple[str, str, IndexRow | str, dict[str, Any]]:
    """Disk-writer job: writes one captured message to its Maildir file (no fsync: the round's journal append makes
    it durable, ``journal.py``), parses it into its index row, and leaves the rest to the round (``_index_round``:
    journal, then index, before the answer).
    Returns (ID, path, row — or the parse error as text: the file is kept, the next scan retries —, outcome),
    where the outcome is filled in by ``_index_round`` before the answer: ``failed`` (not durable: no 250),
    ``added``, ``pruned`` IDs or ``error``."""
    cenv, received = envelope_of(env, hop)
    body = ensure_message_id(data.replace(b"\r\n", b"\n"), cenv.id)
    content = trace_fields(cenv, received) + body
    cdir = Path(capture_dir)
    path = maildir.write_new(cdir, [content], sync=False)
    outcome: dict[str, Any] = {}
    try:
        row: IndexRow | str = build_row(path, body, cenv, read=False, rules=rules)
    except Exception as e:
        row = repr(e)
    rec = journal.record(journal.MESSAGE, cenv.id, f"{path.parent.name}/{path.name}", content)
    rnd.gather(_index_round, (capture_dir, db_path, max_messages, row, outcome, rec, str(path)))
    return cenv.id, str(path), row, outcome


_round_indexes: dict[str, CaptureIndex] = {}  # the disk-writer process's own connections, one per database
_journals: dict[str, journal.Journal] = {}  # and its journals, one per capture Maildir


def _index_round(items: list[tuple[str, str, int, IndexRow | str, dict[str, Any], bytes, str]]) -> None:
    """In the disk-writer process, once per round: appends the round's messages to the journal with ONE fdatasync
    (their 250 promise), then inserts their rows and applies max_messages in one transaction (readers never see
    more than max_messages), and records the outcome in each item."""
    by_db: dict[tuple[str, str, int], list[tuple[IndexRow | str, dict[str, Any], bytes, str]]] = {}
    for capture_dir, db_path, max_messages, row, outcome, rec, path in items:
        by_db.setdefault((capture_dir, db_path, max_messages), []).append((row, outcome, rec, path))
    for (capture_dir, db_path, max_messages), entries in by_db.items():
        try:
            jr = _journals.get(capture_dir)
            if jr is None:
                jr = _journals[capture_dir] = journal.Journal(Path(capture_dir))
            jr.append(b"".join(rec for _, _, rec, _ in entries))
        except Exception as e:  # not durable: no 250 for any of them, and no file left to be listed
            for _, outcome, _, path in entries:
                outcome["failed"] = repr(e)
                try:
                    os.unlink(path)
                except OSError:
                    pass
            continue
        rows = [(r, o) for r, o, _, _ in entries if isinstance(r, IndexRow)]
        if not rows:
            continue
        try:
            index = _round_indexes.get(db_path)
            if index is None:
                index = _round_indexes[db_path] = CaptureIndex(Path(db_path))
            files: list[str] = []
            added, doomed = index.insert_and_trim([r for r, _ in rows], max_messages,
                                                  lambda d, files=files: files.append(d["file"]))
            if doomed:  # recovery must not bring them back (written with the next round's fdatasync)
                jr.append(b"".join(journal.record(journal.DELETED, d["id"]) for d in doomed), sync=False)
            if files:  # after the commit, and not before the answers: see _unlink_later
                _unlink_later(Path(capture_dir), files)
        except Exception as e:  # the files are kept: the server's index thread tries again
            for _, outcome in rows:
                outcome["error"] = repr(e)
            continue
        for (_, outcome), ok in zip(rows, added, strict=True):
            outcome["added"] = ok
        rows[-1][1]["pruned"] = [d["id"] for d in doomed]


_unlinks: queue.SimpleQueue[tuple[Path, list[str]]] | None = None


def _unlink_later(capture_dir: Path, files: list[str]) -> None:
    """Removes pruned messages' files in a thread of the disk-writer process, after the round's answers.

    Freeing a file's blocks waits for the device (≈0.1 ms a file on the benchmark VM); with retention on, every
    arrival prunes one message, so doing it inside the round made each 250 wait for another message's delete. The
    rows are gone already (no reader sees these messages); a crash before the unlink leaves files without rows, which
    the start-up scan indexes again and the next arrival prunes again (they are the oldest)."""
    global _unlinks
    if _unlinks is None:
        _unlinks = queue.SimpleQueue()
        q = _unlinks

        def work() -> None:
            while True:
                where, names = q.get()
                for name in names:
                    try:
                        _unlink(where, name)
                    except OSError:
                        pass

        threading.Thread(target=work, name="courrier-capture-unlink", daemon=True).start()
    _unlinks.put((capture_dir, files))


def _unlink(capture_dir: Path, file: str) -> None:
    """Removes a pruned message's file, found by its base name if IMAP/POP3 moved it or changed its flags."""
    try:
        os.unlink(capture_dir / file)
        return
    except FileNotFoundError:
        pass
    base = _base(Path(file).name)
    for sub in ("cur", "new"):
        try:
            for name in os.listdir(capture_dir / sub):
                if _base(name) == base:
                    os.unlink(capture_dir / sub / name)
                    return
        except FileNotFoundError:
            pass


def build_row(path: Path, body: bytes, cenv: CapturedEnvelope, read: bool, rules: Rules = NO_RULES) -> IndexRow:
    """Parses ``body`` (the message as sent, LF) into its index row. Never raises for the message's content: what
    could not be read is left out, and the reason is kept in the row (``envelope["error"]``, see ``parse_error``)
    and logged with the message's id — the message is listed all the same (CONTRACT: capture never refuses a
    message for its content)."""
    try:
        _, p = P.parse(body)
    except Exception as e:  # noqa: BLE001 — P.parse already never raises; this is the last line of defence
        p = P.Parsed(error=f"not parsed: {type(e).__name__}: {e}"[:300])
    if p.error:
        log.event("capture.parse_error", level="warn", id=cenv.id, file=path.name, error=p.error)
    listed = {a["Address"].lower() for a in p.to + p.cc}
    bcc = [{"Name": "", "Address": r} for r in cenv.rcpts if r.lower() not in listed]
    tags = list(cenv.tags)
    for t in [*p.x_tags, *([cenv.user] if rules.tag_username and cenv.user else [])]:
        if t not in tags:
            tags.append(t)
    addr_text = " ".join(f"{a['Name']} {a['Address']}" for a in [p.from_, *p.to, *p.cc, *bcc, *p.reply_to])
    body_text = "\n".join(x for x in (p.text, p.html_text, " ".join(a.filename for a in p.attachments)) if x)
    row = IndexRow(
        id=cenv.id, file=f"{path.parent.name}/{path.name}", created=cenv.received, date=p.date,
        message_id=p.message_id, return_path=cenv.mail_from, from_=p.from_, to=p.to, cc=p.cc, bcc=bcc,
        reply_to=p.reply_to, subject=p.subject, size=crlf_size(body), attachments=len(p.attachments),
        inline=len(p.inline), read=read, username=cenv.user or "", snippet=p.snippet(),
        envelope={"client": cenv.client, "helo": cenv.helo, "tls": cenv.tls, "listener": cenv.listener,
                  "qid": cenv.qid, "rcpts": cenv.rcpts, **({"error": p.error} if p.error else {})},
        tags=tags, headers=p.headers, search_addresses=f"{addr_text} {cenv.mail_from}", search_body=body_text, rules=rules.compiled)
    return row
