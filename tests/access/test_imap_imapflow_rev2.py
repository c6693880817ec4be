"""A real client speaks IMAP4rev2 and UTF8=ACCEPT with courrier: imapflow (node) enables both by itself when they
are advertised (with CONDSTORE when offered), then creates and lists a UTF-8 folder, appends to it, searches
(ESEARCH answers under rev2), fetches flags (no \\Recent), reads STATUS SIZE."""

from __future__ import annotations

import json

from tests.access.clients import PASSWORD, USER
from tests.access.imapsrv import listener
from tests.npm import npm_package, run_node

IMAPFLOW = ("imapflow", "2.10.2")

SCRIPT = """
const { ImapFlow } = require(PKG);
const [port, user, pass] = ARGS;
(async () => {
  const c = new ImapFlow({host: '127.0.0.1', port: +port, secure: false, auth: {user, pass}, logger: false});
  await c.connect();
  const out = {enabled: [...c.enabled]};
  await c.mailboxCreate('Réunions & Café');
  out.listed = (await c.list()).map(b => b.path).filter(p => p.startsWith('R'));
  await c.append('Réunions & Café', 'From: a@x.test\\r\\nSubject: ordre du jour\\r\\n\\r\\ncorps\\r\\n', ['\\\\Flagged']);
  const st = await c.status('Réunions & Café', {messages: true, size: true});
  out.status = {messages: st.messages, size: st.size === undefined ? null : Number(st.size)};
  const lock = await c.getMailboxLock('INBOX');
  try {
    out.search = await c.search({subject: 'two'}, {uid: true});
    out.all = await c.search({all: true});
    out.flags = [];
    for await (const m of c.fetch('1:*', {uid: true, flags: true})) out.flags.push([...m.flags]);
  } finally { lock.release(); }
  await c.mailboxOpen('Réunions & Café');
  out.subjects = [];
  for await (const m of c.fetch('1:*', {envelope: true, flags: true})) out.subjects.push([m.envelope.subject, [...m.flags]]);
  console.log(JSON.stringify(out));
  await c.logout();
})().catch(e => { console.error(e); process.exit(1); });
"""


def test_imapflow_with_imap4rev2_and_utf8(tmp_path):
    msgs = [b"Subject: one\n\nfirst\n", b"Subject: two\n\nsecond\n", b"Subject: three\n\nthird\n"]
    with listener(tmp_path, msgs) as (port, _):
        pkg = npm_package(*IMAPFLOW)
        out = json.loads(run_node(SCRIPT.replace("ARGS", json.dumps([str(port), USER, PASSWORD])), pkg))
    assert {"IMAP4REV2", "UTF8=ACCEPT"} <= set(out["enabled"]), out
    assert out["listed"] == ["Réunions & Café"]
    assert out["status"]["messages"] == 1 and out["status"]["size"] and out["status"]["size"] > 40
    assert out["search"] == [2] and out["all"] == [1, 2, 3]
    assert out["flags"] == [[], [], []]  # no \\Recent under IMAP4rev2
    assert out["subjects"] == [["ordre du jour", ["\\Flagged"]]]
