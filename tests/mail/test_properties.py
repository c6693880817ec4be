"""Property tests (hypothesis) of the header reader and the address-list reader.

- Random header blocks never crash the reader, and what it returns is consistent (ordered, non-overlapping fields
  that are slices of the input).
- Every field the stdlib parser finds, the reader finds too, with the same name and value: no field can be hidden
  from the program's checks and shown by a stdlib-based reader downstream.
- Random values never crash the address reader; on well-formed address lists it finds the same addresses as
  ``email.headerregistry``.
"""

import email
import email.policy
from email.headerregistry import HeaderRegistry

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from courrier.access.imap import fetch as FE
from courrier.accounts import Account
from courrier.capture import parse as P
from courrier.mail import addresses as A
from courrier.mail.headers import read_header
from courrier.mailauth import message as mailauth_message
from courrier.roles.submission import HeaderProblem, check_originators, parse_headers

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FTEXT = "".join(chr(c) for c in range(0x21, 0x7F) if c != 0x3A)
names = st.one_of(st.sampled_from(["From", "from", "Sender", "To", "Subject", "Reply-To", "X-A"]),
                  st.text(alphabet=FTEXT, min_size=1, max_size=8))
values = st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
field_lines = st.builds(lambda n, ws, v: n.encode() + ws + b":" + v, names,
                        st.sampled_from([b"", b"", b"", b" ", b"\t", b" \t "]), values)
fold_lines = st.builds(lambda ws, v: ws + v, st.sampled_from([b" ", b"\t", b"  "]), values)
junk_lines = st.one_of(values, st.builds(lambda a, b: a + b":" + b, values, values))
lines = st.lists(st.one_of(field_lines, field_lines, fold_lines, junk_lines), max_size=12)
eols = st.sampled_from([b"\r\n", b"\n", b"\r"])


@st.composite
def blocks(draw) -> bytes:
    """A header block: fields, obsolete fields, folds, junk lines, mixed line ends, maybe a body."""
    out = b""
    for line in draw(lines):
        out += line + draw(eols)
    if draw(st.booleans()):
        out += draw(eols) + draw(st.binary(max_size=20))
    return out


@FAST
@given(st.one_of(blocks(), st.binary(max_size=300)))
def test_reader_never_crashes_and_is_consistent(data):
    h = read_header(data)
    assert 0 <= h.end <= len(data)
    last = 0
    for f in h.fields:
        assert last <= f.start < f.end <= len(data)
        assert data[f.start:f.end].startswith(f.name.encode())
        assert f.value in data[f.start:f.end]
        last = f.end
    for p in h.problems:
        assert p.line >= 1 and p.describe().isprintable()


@FAST
@given(blocks())
@example(b"From :\r\nFrom:\x00\r\n")
@example(b"From :\r\n \r\nFrom:\r\n")
def test_every_field_the_stdlib_finds_the_reader_finds(data):
    ours = read_header(data)
    # The stdlib never sees an obsolete ``name WSP ":"`` field (RFC 5322 §4.5), so those are left out of the
    # comparison: an obsolete ``From :`` before a real ``From:`` must not be paired with it.
    found = [(f.name, f.raw_text().encode("utf-8", "surrogateescape")) for f in ours.fields if not f.obsolete]
    theirs = email.message_from_bytes(data).raw_items()  # compat32: the values as the stdlib stored them
    i = 0
    for name, value in theirs:
        if not name:  # ":x" — the stdlib accepts an empty name; the reader reports the line as no field
            assert ours.problems
            continue
        raw = str(value).encode("ascii", "surrogateescape")
        while i < len(found) and found[i][0] != name:
            i += 1  # fields the stdlib does not see (obsolete forms, fields after a junk line)
        assert i < len(found), (name, value)
        if not ours.problems:  # the stdlib folds a junk line's continuations into the field before it
            assert found[i][1] == raw
        i += 1


atom = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=6)
dot_atom = st.lists(atom, min_size=1, max_size=3).map(".".join)
quoted = st.text(alphabet="abc xyz,;:@<>()[].", max_size=8).map(lambda s: '"' + s + '"')
comment = st.text(alphabet="abc xyz,;:@<>.", max_size=8).map(lambda s: "(" + s + ")")
cfws = st.sampled_from(["", "", " "]) | comment.map(lambda c: f" {c} ")
local = st.one_of(dot_atom, dot_atom, quoted.filter(lambda q: len(q) > 2))
domain = st.one_of(dot_atom, st.just("[192.0.2.1]"))
phrase = st.lists(st.one_of(atom, quoted), min_size=1, max_size=3).map(" ".join)


@st.composite
def mailbox(draw) -> tuple[str, tuple[str, str]]:
    lp, dom = draw(local), draw(domain)
    spec = f"{lp}{draw(cfws)}@{draw(cfws)}{dom}"
    form = draw(st.sampled_from(["bare", "angle", "named"]))
    text = spec if form == "bare" else f"<{spec}>" if form == "angle" else f"{draw(phrase)} <{spec}>"
    unquoted = lp[1:-1] if lp.startswith('"') else lp
    return draw(cfws) + text + draw(cfws), (unquoted, dom)


@st.composite
def address_list(draw) -> tuple[str, list[tuple[str, str]]]:
    parts, expected = [], []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 3)) == 0:
            members = draw(st.lists(mailbox(), max_size=3))
            parts.append(f"{draw(phrase)}: " + ", ".join(m for m, _ in members) + ";")
            expected += [e for _, e in members]
        else:
            m, e = draw(mailbox())
            parts.append(m)
            expected.append(e)
    return ", ".join(parts), expected


REGISTRY = HeaderRegistry()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(address_list())
def test_addresses_agree_with_headerregistry(case):
    value, expected = case
    ours = [(m.local, m.domain) for m in A.mailboxes(A.parse(value))]
    stdlib = [(a.username, a.domain) for a in REGISTRY("To", value).addresses]
    assert ours == expected == stdlib, value


@FAST
@given(st.text(alphabet='abc@<>,:;()"\\[]. \t\r\n\u00e9', max_size=200))
def test_address_reader_never_crashes(value):
    items = A.parse(value)
    assert len(items) <= A.MAX_ADDRESSES
    A.display(items)


CAROL = Account("carol@example.test", False, False, ())
OTHER = st.sampled_from(["alice@example.test", "ceo@bank.test", "carol@example.test.evil", "carol@evil.test"])
MINE = st.sampled_from(["carol@example.test", "Carol@Example.TEST", "carol+x@example.test"])


@st.composite
def from_value(draw) -> str:
    """A From/Sender value mixing the account's address with others in every syntax the readers know."""
    parts = []
    for _ in range(draw(st.integers(1, 2))):
        addr = draw(st.one_of(MINE, MINE, MINE, OTHER))
        parts.append(draw(st.sampled_from(["{a}", "Name <{a}>",
            "{a}", "<{a}>", "Name <{a}>", '"x, y" <{a}>', "{a} (comment)", "<@route:{a}>", "g: {a};", "(c) <{a}> (d)",
            "=?utf-8?q?N?= <{a}>", '"{a}" <carol@example.test>', "<carol@example.test> {a}", "{a},"])).format(a=addr))
    return ", ".join(parts)


@st.composite
def originator_block(draw) -> bytes:
    """One From field, often an obsolete one; sometimes a Sender, a second From, or a line that is no field."""
    fields = []
    for name in ["From", *draw(st.lists(st.sampled_from(["From", "FROM", "Sender", "sender"]), max_size=2))]:
        sep = draw(st.sampled_from([":", ":", ":", " :", "\t:", "  :"]))
        fields.append(f"{name}{sep} {draw(from_value())}\r\n".encode())
    if draw(st.integers(0, 3)) == 0:
        fields.insert(draw(st.integers(0, len(fields))), draw(st.sampled_from(
            [b"junk line\r\n", b" folded\r\n", b"X-A: a\rFrom: alice@example.test\r\n", b"Subject: s\r\n"])))
    return b"".join(fields)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(originator_block())
def test_submission_accepts_only_what_every_reader_shows_as_the_account(head):
    """Whatever submission accepts, IMAP's ENVELOPE (from, sender), the capture/web index and DMARC's From show
    only the account's own address: no reader of the program sees an address the check did not."""
    try:
        fields = parse_headers(head)
        check_originators(CAROL, fields)
    except HeaderProblem:
        return
    message = head + b"\r\nbody\r\n"
    shown = [m.addr_spec for name in ("from", "sender")
             for m in A.mailboxes(FE._field_addresses(read_header(message), name))]
    shown.append(P.parse(message)[1].from_["Address"])
    shown += mailauth_message.addresses(message.split(b"\r\n\r\n")[0], "from")
    stdlib = email.message_from_bytes(message, policy=email.policy.default)  # a downstream reader
    for name in ("from", "sender"):
        try:
            shown += [a.addr_spec for v in stdlib.get_all(name) or [] for a in v.addresses]
        except Exception:  # the stdlib raises on a few inputs; it then shows nothing of that field
            pass
    for addr in shown:
        local, _, domain = addr.lower().rpartition("@")
        assert (local.split("+")[0], domain) == ("carol", "example.test"), (head, addr)
