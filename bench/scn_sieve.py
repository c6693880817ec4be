"""sieve: CPU that Sieve adds to local delivery — a 20-rule script against no script (issue 16: ≤ 10%).

One courrier (MX → Maildir, fsync before 250, ``[auth] checks = false``) with three accounts: one without a
script, one whose active script has 20 rules of header/address/envelope/exists/size tests (none matching, so all
20 run and the message is kept in INBOX: the same store work as without a script), and one whose 20 rules also use
``body`` and ``:regex`` (run in a worker thread). Postfix's smtp-source sends the same 2 KB messages to each in
interleaved rounds; the figure is the server's CPU time (its process and the disk-writer child: utime + stime
from /proc) per message, and the ratio with/without.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import smtp_source, wait_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import Server  # noqa: E402

PLAIN, RULES, HEAVY = "plain@bench.test", "rules@bench.test", "heavy@bench.test"

RULES_20 = """require ["fileinto", "envelope", "imap4flags", "variables", "mailbox"];
if header :contains "subject" ["[announce]", "newsletter"] { fileinto :create "News"; stop; }
if address :domain :is "from" ["lists.example.org", "groups.example.com"] { fileinto :create "Lists"; stop; }
if header :matches "list-id" "*<*.lists.example.org>*" { fileinto :create "Lists.${2}"; stop; }
if exists "x-spam-flag" { fileinto :create "Junk"; stop; }
if header :contains "x-spam-status" "Yes" { fileinto :create "Junk"; stop; }
if envelope :domain :is "from" "billing.example.net" { fileinto :create "Bills"; stop; }
if address :localpart :is "from" ["noreply", "no-reply"] { addflag "$auto"; }
if header :is "precedence" ["bulk", "list"] { fileinto :create "Bulk"; stop; }
if size :over 5M { fileinto :create "Large"; stop; }
if header :contains "subject" "invoice" { fileinto :create "Bills"; stop; }
if address :is "to" "boss@example.org" { addflag "\\\\Flagged"; }
if header :contains "x-mailer" "Mass Mailer" { discard; stop; }
if anyof (header :contains "subject" "meeting", header :contains "subject" "calendar") { fileinto :create "Cal"; stop; }
if allof (exists "list-unsubscribe", not exists "x-keep") { fileinto :create "Promotions"; stop; }
if header :matches "subject" "Re: *urgent*" { addflag "\\\\Flagged"; }
if address :domain :contains "cc" "partners.example" { fileinto :create "Partners"; stop; }
if envelope :localpart :matches "to" "*+archive" { fileinto :create "Archive"; stop; }
if header :contains "received" "untrusted.example" { fileinto :create "Quarantine"; stop; }
if header :is "x-priority" "1" { addflag "\\\\Flagged"; }
if header :contains "from" "alerts@monitoring.example" { fileinto :create "Alerts"; stop; }
"""

HEAVY_20 = RULES_20.replace('require ["fileinto",', 'require ["body", "regex", "fileinto",').replace(
    'if header :contains "received" "untrusted.example"', 'if body :text :contains "unsubscribe here"').replace(
    'if header :matches "subject" "Re: *urgent*"', 'if header :regex "subject" "^re: .*(urgent|asap)"')


def tree_cpu(pid: int) -> float:
    """utime + stime (seconds) of ``pid`` and its live children (the disk-writer process)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run(args) -> list[str]:
    n = 300 if args.quick else 2000
    rounds = 1 if args.quick else max(args.rounds, 3)
    d = Path(tempfile.mkdtemp(prefix="courrier-bench-sieve-"))
    srv = Server(d, domains=("bench.test",), hostname="courrier.bench.test",
                 sections={"limits": {"max_connections_per_ip": 1000}})
    for who in (PLAIN, RULES, HEAVY):
        srv.add_user(who)
    for who, text in ((RULES, RULES_20), (HEAVY, HEAVY_20)):
        (d / f"{who}.sieve").write_text(text)
        srv.cli("sieve", "put", who, "main", str(d / f"{who}.sieve"), "--activate")
    srv.start()
    per: dict[str, list[float]] = {PLAIN: [], RULES: [], HEAVY: []}
    try:
        wait_port(srv.ports["smtp"])
        assert srv.proc is not None
        smtp_source(srv.ports["smtp"], sessions=10, messages=200, size=2048, rcpt=RULES)  # warm up
        for _ in range(rounds):
            for who in per:
                before = tree_cpu(srv.proc.pid)
                smtp_source(srv.ports["smtp"], sessions=10, messages=n, size=2048, rcpt=who)
                per[who].append((tree_cpu(srv.proc.pid) - before) / n * 1e6)
    finally:
        srv.stop()
    kept = sum(1 for _ in (d / "data").rglob("new/*"))
    plain = statistics.median(per[PLAIN])
    lines = [f"{'account':<34}{'CPU µs/msg':>12}{'vs none':>10}"]
    for who, label in ((PLAIN, "no script"), (RULES, "20 rules (header/address/envelope)"),
                       (HEAVY, "20 rules incl. body + :regex")):
        m = statistics.median(per[who])
        lines.append(f"{label:<34}{m:>12.0f}{m / plain - 1:>+10.1%}")
    lines.append(f"(server CPU per message, medians of {rounds} interleaved rounds of {n} messages × 2 KB, "
                 f"10 sessions; {kept} messages stored)")
    return lines
