"""batch: how a JSON document becomes messages — checked whole before anything is sent."""

import json

import pytest

from courrier.client import batch, compose
from courrier.client.batch import BatchError


def doc(**kw):
    base = {"from": "News <news@example.test>",
            "people": [{"email": "ann@example.test", "first_name": "Ann", "last_name": "Lee", "groups": ["staff"]},
                       {"email": "bob@example.test", "first_name": "Bob", "groups": ["board"]},
                       {"email": "cid@example.test", "first_name": "Cid", "age": 42}],
            "templates": [{"subject": "Hello {first_name} #{n}", "body": "Dear {name}, {{not a field}}"}]}
    base.update(kw)
    return base


def test_templates_times_people_with_fields(tmp_path):
    plans = batch.plans(doc(), tmp_path)
    assert [p.recipients for p in plans] == [("ann@example.test",), ("bob@example.test",), ("cid@example.test",)]
    assert [p.draft.subject for p in plans] == ["Hello Ann #1", "Hello Bob #2", "Hello Cid #3"]
    assert plans[0].draft.body == "Dear Ann Lee, {not a field}"
    assert plans[0].draft.to == ['Ann Lee <ann@example.test>']
    assert all(p.sender == "news@example.test" for p in plans)


def test_groups_and_bcc_witnesses(tmp_path):
    d = doc(bcc=["archive@example.test"],
            templates=[{"groups": ["staff", "board"], "subject": "s", "body": "b", "bcc": "audit@example.test"}])
    plans = batch.plans(d, tmp_path)
    assert [p.recipients for p in plans] == [
        ("ann@example.test", "audit@example.test", "archive@example.test"),
        ("bob@example.test", "audit@example.test", "archive@example.test")]
    m = compose.build(plans[0].draft)
    assert "Bcc" not in m and "archive" not in m.as_string()


def test_plain_message_list_and_files(tmp_path):
    (tmp_path / "body.txt").write_text("from a file\n")
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    (tmp_path / "page.html").write_text("<style>p { color: red }</style><p>{first_name}</p>")
    d = {"from": "a@x.test", "envelope_from": "bounces@x.test",
         "messages": [{"to": ["b@y.test"], "cc": "c@y.test", "subject": "one", "body_file": "body.txt",
                       "attach": ["a.pdf"], "headers": {"X-Id": "1"}},
                      {"from": "other@x.test", "to": "d@y.test", "html_file": "page.html"}]}
    plans = batch.plans(d, tmp_path)
    assert plans[0].recipients == ("b@y.test", "c@y.test") and plans[0].sender == "bounces@x.test"
    assert plans[0].draft.body == "from a file\n" and plans[0].draft.attachments == [tmp_path / "a.pdf"]
    assert plans[1].draft.html == "<style>p { color: red }</style><p>{first_name}</p>"  # no fields in messages
    assert plans[1].draft.sender == "other@x.test"


@pytest.mark.parametrize("bad, says", [
    (doc(templates=[{"subject": "Hi {nickname}"}]), "unknown field {nickname}"),
    (doc(people=[{"first_name": "X"}]), "needs an \"email\""),
    (doc(people=[{"email": "not an address"}]), "bad address"),
    (doc(surprise=1), "unknown key 'surprise'"),
    (doc(templates=[{"subjet": "typo"}]), "unknown key 'subjet'"),
    ({"from": "a@x.test"}, "nothing to send"),
    ({"messages": [{"to": "b@y.test"}]}, "no \"from\""),
    ({"from": "a@x.test", "messages": [{"subject": "s"}]}, "no recipient"),
    ({"from": "a@x.test", "messages": [{"to": "b@y.test", "attach": "nope.pdf"}]}, "no such file"),
    ({"from": "a@x.test", "templates": [{"subject": "s"}]}, "need a list of \"people\""),
])
def test_mistakes_are_reported_before_sending(tmp_path, bad, says):
    with pytest.raises(BatchError, match=None) as e:
        batch.plans(bad, tmp_path)
    assert says in str(e.value)


def test_load_reports_bad_json(tmp_path):
    f = tmp_path / "b.json"
    f.write_text("{nope")
    with pytest.raises(BatchError, match="not valid JSON"):
        batch.load(f)
    f.write_text(json.dumps(doc()))
    assert len(batch.load(f)) == 3
