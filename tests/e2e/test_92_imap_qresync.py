"""Scenario 92: imapflow (node, ``qresync: true``) keeps a mailbox in sync with QRESYNC (RFC 7162).

A first imapflow session syncs INBOX and remembers UIDVALIDITY and HIGHESTMODSEQ; another session (imaplib) then
flags a message, expunges one and a new message arrives; imapflow resyncs with ``SELECT … (QRESYNC (…))`` and
``UID FETCH … (CHANGEDSINCE n VANISHED)`` and sees the expunged UID (VANISHED (EARLIER)) and the changed flags;
while it has INBOX open, an expunge from another session reaches it as VANISHED.
"""

from __future__ import annotations

import json

from tests.access.clients import PASSWORD, USER, deliver, imap
from tests.npm import npm_package, run_node

IMAPFLOW = ("imapflow", "2.10.2")

COMMON = """
const { ImapFlow } = require(PKG);
const [port, user, pass, stateJson] = process.argv.slice(1);
const client = () => new ImapFlow({host: '127.0.0.1', port: +port, secure: false, auth: {user, pass}, tls: {rejectUnauthorized: false},
                                   qresync: true, logger: false});
"""

FIRST_SYNC = COMMON + """
(async () => {
  const c = client();
  await c.connect();
  const box = await c.mailboxOpen('INBOX');
  const msgs = {};
  for await (const m of c.fetch('1:*', {uid: true, flags: true})) msgs[m.uid] = [...m.flags].sort();
  console.log(JSON.stringify({enabled: [...c.enabled], uidValidity: String(box.uidValidity),
                              modseq: String(box.highestModseq), msgs}));
  await c.logout();
})().catch(e => { console.error(e); process.exit(1); });
"""

RESYNC = COMMON + """
(async () => {
  const state = JSON.parse(stateJson);
  const c = client();
  const expunged = [], flagged = [];
  c.on('expunge', e => expunged.push({uid: e.uid ? Number(e.uid) : null, seq: e.seq || null,
                                       vanished: e.vanished, earlier: !!e.earlier}));
  c.on('flags', f => flagged.push({uid: Number(f.uid), flags: [...f.flags].sort(),
                                   modseq: f.modseq ? String(f.modseq) : null}));
  await c.connect();
  const box = await c.mailboxOpen('INBOX', {uidValidity: BigInt(state.uidValidity),
                                            changedSince: BigInt(state.modseq)});
  const changed = {};
  for await (const m of c.fetch('1:*', {uid: true, flags: true},
                                {uid: true, changedSince: BigInt(state.modseq)})) {
    changed[m.uid] = [...m.flags].sort();
  }
  const atOpen = expunged.length;
  // another client expunges while this one has INBOX open: told with a plain VANISHED
  const other = new ImapFlow({host: '127.0.0.1', port: +port, secure: false, auth: {user, pass},
                             tls: {rejectUnauthorized: false}, logger: false});
  await other.connect();
  await other.mailboxOpen('INBOX');
  await other.messageDelete(String(state.dropLive), {uid: true});
  await other.logout();
  await c.noop();
  console.log(JSON.stringify({qresync: !!box.qresync, modseq: String(box.highestModseq), expunged, atOpen,
                              flagged, changed, exists: c.mailbox.exists}));
  await c.logout();
})().catch(e => { console.error(e); process.exit(1); });
"""


def test_imapflow_resyncs_with_qresync(server_factory):
    s = server_factory(listeners=("smtp", "imap"))
    s.add_user(USER, PASSWORD)
    s.start()
    for i in range(6):
        deliver(s, f"From: a@else.test\r\nSubject: m{i}\r\nMessage-ID: <m{i}@else.test>\r\n\r\nbody {i}\r\n".encode())
    pkg = npm_package(*IMAPFLOW)
    port = str(s.ports["imap"])

    def node(script: str, state: dict | None = None) -> dict:
        return json.loads(run_node(script.replace("process.argv.slice(1)",
                                                  json.dumps([port, USER, PASSWORD, json.dumps(state or {})])), pkg))

    first = node(FIRST_SYNC)
    assert "QRESYNC" in first["enabled"] and "CONDSTORE" in first["enabled"]
    assert sorted(map(int, first["msgs"])) == [1, 2, 3, 4, 5, 6]

    # another session changes the mailbox behind imapflow's back
    c = imap(s)
    c.select("INBOX")
    c.uid("STORE", "2", "+FLAGS", "(\\Flagged $Later)")
    c.uid("STORE", "4", "+FLAGS", "(\\Deleted)")
    c.expunge()
    c.logout()
    deliver(s, b"From: a@else.test\r\nSubject: new\r\nMessage-ID: <new@else.test>\r\n\r\nnew\r\n")

    out = node(RESYNC, {**first, "dropLive": 5})
    assert out["qresync"] is True  # the server took the QRESYNC parameters and kept UIDVALIDITY
    assert int(out["modseq"]) > int(first["modseq"])
    # VANISHED (EARLIER) 4 at SELECT (§3.2.5) and again for UID FETCH … VANISHED (§3.2.6)
    early = out["expunged"][:out["atOpen"]]
    assert early == [{"uid": 4, "seq": None, "vanished": True, "earlier": True}] * 2, out
    flags_at_open = {f["uid"]: f for f in out["flagged"]}
    assert flags_at_open[2]["flags"] == ["$Later", "\\Flagged"] and flags_at_open[2]["modseq"]
    # CHANGEDSINCE: the flagged message and the new one, nothing else
    changed = {int(u): [x for x in f if x != "\\Recent"] for u, f in out["changed"].items()}  # IMAP4rev1 \Recent
    assert changed == {2: ["$Later", "\\Flagged"], 7: []}
    live = out["expunged"][out["atOpen"]:]
    assert live == [{"uid": 5, "seq": None, "vanished": True, "earlier": False}], live
    assert out["exists"] == 5
