"""The interpreter against Dovecot's Pigeonhole (Debian's dovecot-sieve, ``sieve-test``) as the reference: for a
table of scripts and messages, both must decide the same actions — the folders stored into with their flags, the
redirects, the reject reason, the vacation reply and its period (RFC 5228, 5229, 5230, 5232, 5173, 5429, 5490,
3894). The message's fate afterwards (the vacation rules of RFC 5230 §4.5-4.6, the stores themselves) is
tested in test_delivery.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from courrier.sieve.interp import Envelope, evaluate
from courrier.sieve.message import MessageView
from courrier.sieve.script import compile_script

SENDER, RCPT = "bob@example.org", "me@example.test"

PLAIN = (b"From: Bob <bob@example.org>\nTo: Me <me@example.test>\nCc: team@lists.example.org\n"
         b"Subject: [dev] build broken on main\nMessage-ID: <m1@example.org>\nX-Spam-Score: 7\n"
         b"List-Id: Dev list <dev.lists.example.org>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\n"
         b"The build is broken.\nPlease look at the vacation schedule.\n")
MIME = (b"From: =?utf-8?q?Ren=C3=A9e?= <renee@example.net>\nTo: me@example.test\n"
        b"Subject: =?utf-8?q?R=C3=A9union?= demain\nMessage-ID: <m2@example.net>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/plain; charset=utf-8\n'
        b"Content-Transfer-Encoding: quoted-printable\n\nLa r=C3=A9union est annul=C3=A9e.\n--b\n"
        b"Content-Type: text/html\n\n<p>La <b>reunion</b> est annulee.</p>\n--b--\n")

SCRIPTS = {
    "implicit keep": "if false { discard; }",
    "keep": "keep;",
    "discard": "discard;",
    "stop": "stop; discard;",
    "fileinto": 'require "fileinto"; if header :contains "subject" "[dev]" { fileinto "Dev"; }',
    "fileinto copy": 'require ["fileinto", "copy"]; fileinto :copy "Dev";',
    "fileinto create": 'require ["fileinto", "mailbox"]; fileinto :create "Dev.Builds";',
    "elsif": ('require "fileinto"; if header :is "subject" "x" { fileinto "A"; }\n'
              'elsif address :domain :is "from" "EXAMPLE.org" { fileinto "B"; } else { fileinto "C"; }'),
    "matches vars": ('require ["fileinto", "variables"]; if header :matches "subject" "[*] *" '
                     '{ fileinto "lists.${1}"; }'),
    "set modifiers": ('require ["fileinto", "variables"]; set :upperfirst :lower "x" "HELLO"; '
                      'set :length "n" "${x}"; fileinto "${x}-${n}";'),
    "regex": ('require ["fileinto", "regex", "variables"]; if header :regex "subject" "^\\\\[([a-z]+)\\\\]" '
              '{ fileinto "r-${1}"; }'),
    "octet comparator": ('require "fileinto"; if header :comparator "i;octet" :contains "subject" "BUILD" '
                         '{ fileinto "A"; } else { fileinto "B"; }'),
    "address parts": ('require "fileinto"; if address :localpart :is ["to", "cc"] "team" { fileinto "team"; }'),
    "envelope": ('require ["envelope", "fileinto"]; if envelope :domain :is "from" "example.org" '
                 '{ fileinto "E"; }'),
    "exists size": ('require "fileinto"; if allof (exists ["List-Id", "X-Spam-Score"], size :under 10K) '
                    '{ fileinto "L"; }'),
    "anyof not": ('require "fileinto"; if anyof (not exists "From", header :contains "x-spam-score" "9") '
                  '{ fileinto "S"; } else { keep; }'),
    "relational": ('require ["fileinto", "relational", "comparator-i;ascii-numeric"]; '
                   'if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "Junk"; }'),
    "count": ('require ["fileinto", "relational", "comparator-i;ascii-numeric"]; '
              'if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "2" { fileinto "many"; }'),
    "imap4flags": 'require "imap4flags"; setflag "\\\\Seen"; addflag ["$Work", "\\\\Flagged"]; removeflag "\\\\Seen";',
    "flags on fileinto": ('require ["fileinto", "imap4flags"]; fileinto :flags "\\\\Answered" "A"; '
                          'addflag "$x"; keep;'),
    "hasflag": ('require ["fileinto", "imap4flags"]; addflag "$a"; if hasflag :is "$A" { fileinto "has"; }'),
    "redirect": 'redirect "boss@example.com"; redirect "boss@example.com"; redirect "Boss@example.com";',
    "redirect copy": 'require "copy"; redirect :copy "archive@example.com";',
    "reject": 'require "reject"; if header :contains "subject" "broken" { reject "Not today."; }',
    "vacation": 'require "vacation"; vacation :days 3 :subject "Away" "I am away until Monday.";',
    "vacation default": 'require "vacation"; vacation "Back soon.";',
    "body text": 'require ["body", "fileinto"]; if body :text :contains "annulee" { fileinto "B"; }',
    "body raw": 'require ["body", "fileinto"]; if body :raw :contains "r=C3=A9union" { fileinto "raw"; }',
    "body content": ('require ["body", "fileinto"]; if body :content "text/html" :contains "<b>" '
                     '{ fileinto "html"; }'),
    "encoded header": 'require "fileinto"; if header :contains "subject" "Réunion" { fileinto "R"; }',
    "multiline": 'require "reject"; reject text:\nNo.\n..Really.\n.\n;',
    "question mark": 'require "fileinto"; if header :matches "subject" "[???] *" { fileinto "Q"; }',
    "display names": 'require "fileinto"; if address :all :is "from" "BOB@example.org" { fileinto "F"; }',
    "header count": ('require ["fileinto", "relational", "comparator-i;ascii-numeric"]; '
                     'if header :count "eq" :comparator "i;ascii-numeric" ["to", "cc"] "2" { fileinto "two"; }'),
    "size boundary": 'require "fileinto"; if size :over 100 { fileinto "over"; } if size :under 100 { keep; }',
    "envelope to": ('require ["envelope", "fileinto", "variables"]; if envelope :matches "to" "*@*" '
                    '{ fileinto "${2}"; }'),
    "match zero": ('require ["fileinto", "variables"]; if header :matches "from" "*" '
                   '{ set "x" "${0}"; } if string :contains "${x}" "bob" { fileinto "whole"; }'),
    "hasflag contains": ('require ["fileinto", "imap4flags"]; setflag "$Work \\\\Seen"; '
                         'if hasflag :contains "wor" { fileinto "w"; }'),
    "exists case": 'require "fileinto"; if exists "MESSAGE-id" { fileinto "m"; }',
    "domain contains": 'require "fileinto"; if address :domain :contains "cc" "LISTS" { fileinto "l"; }',
}


def pigeonhole(tmp: Path, script: str, message: bytes) -> set[tuple]:
    """What sieve-test says it would do: ("store", folder, flags), ("redirect", addr), ("reject", reason),
    ("vacation", seconds, subject)."""
    (tmp / "s.sieve").write_text(script)
    (tmp / "m.eml").write_bytes(message)
    conf = tmp / "dovecot.conf"
    conf.write_text(("mail_uid = nobody\nmail_gid = nogroup\nfirst_valid_uid = 1\n" if os.geteuid() == 0 else "")
                    + f"mail_location = maildir:{tmp}/md\n")
    os.chmod(tmp, 0o777)
    for f in tmp.iterdir():
        os.chmod(f, 0o777 if f.is_dir() else 0o644)
    p = subprocess.run(["sieve-test", "-c", str(conf), "-f", SENDER, "-r", RCPT, str(tmp / "s.sieve"),
                        str(tmp / "m.eml")], capture_output=True, text=True, timeout=30, cwd=tmp)
    assert p.returncode == 0, p.stdout + p.stderr
    out: set[tuple] = set()
    lines = p.stdout.splitlines()
    i = 0
    while i < len(lines):
        ln = lines[i]
        if m := re.match(r"\s*\* store message in folder: (.*)", ln):
            flags: frozenset[str] = frozenset()
            while i + 1 < len(lines) and lines[i + 1].startswith("        +"):
                i += 1
                if f := re.match(r"\s*\+ add IMAP flags: (.*)", lines[i]):
                    flags = frozenset(f.group(1).lower().split())
            out.add(("store", m.group(1).lower(), flags))
        elif m := re.match(r"\s*\* redirect message to: <(.*)>", ln):
            out.add(("redirect", m.group(1)))
        elif m := re.match(r"\s*\* reject message with reason: (.*)", ln):
            out.add(("reject", re.sub(r"\W", "", m.group(1))))  # its line breaks print as "??"
        elif ln.strip() == "* send vacation message:":
            seconds, subject = 0, None
            while i + 1 < len(lines) and lines[i + 1].startswith("    =>"):
                i += 1
                k, _, v = lines[i].strip()[3:].partition(":")
                if k.strip() == "seconds":
                    seconds = int(v)
                elif k.strip() == "subject":
                    subject = v.strip()
            out.add(("vacation", seconds, subject))
        i += 1
    return out


def ours(script: str, message: bytes) -> set[tuple]:
    r = evaluate(compile_script(script), MessageView(message), Envelope(SENDER, RCPT))
    out: set[tuple] = set()
    for box, (flags, _) in r.stored().items():
        out.add(("store", box.lower(), frozenset(f.lower() for f in flags)))
    out |= {("redirect", a) for a in r.redirects}
    if r.reject is not None:
        out.add(("reject", re.sub(r"\W", "", r.reject)))
    if r.vacation is not None:
        out.add(("vacation", r.vacation.days * 86400, r.vacation.subject))
    return out


@pytest.fixture(scope="module")
def workdir():
    """A directory sieve-test can read once it has dropped to ``nobody`` (pytest's tmp is 0700 root's)."""
    d = Path(tempfile.mkdtemp(prefix="courrier-pigeonhole-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_same_actions_as_pigeonhole(workdir, name):
    script = SCRIPTS[name]
    for i, message in enumerate((PLAIN, MIME)):
        d = workdir / f"{re.sub(r'[^a-z]', '_', name)}-{i}"
        d.mkdir()
        assert ours(script, message) == pigeonhole(d, script, message), (name, i)
