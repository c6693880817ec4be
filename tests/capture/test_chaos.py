"""Chaos triggers (``courrier/capture/chaos.py``; Mailpit's ``internal/smtpd/chaos/chaos.go``)."""

import pytest

from courrier.capture.chaos import Chaos, ChaosError


def test_probability_draws():
    c = Chaos(enabled=True)
    assert all(c.roll("Sender") is None for _ in range(200))  # 0 %: never
    c.set_from({"Sender": {"ErrorCode": 452, "Probability": 100}})
    assert {(r.code, r.text) for r in (c.roll("Sender") for _ in range(50))} == {(452, "Chaos sender error")}
    c.set_from({"Recipient": {"Probability": 50}})
    hits = sum(c.roll("Recipient") is not None for _ in range(2000))
    assert 800 < hits < 1200  # about half
    assert c.roll("Sender") is None  # omitted in the last PUT: reset
    assert Chaos(enabled=False).roll("Sender") is None


def test_bad_values_change_nothing():
    c = Chaos(enabled=True)
    c.set_from({"Authentication": {"Probability": 7}})
    for body in ({"Sender": {"ErrorCode": 600}}, {"Sender": {"Probability": -1}}, {"Sender": {"ErrorCode": "451"}},
                 {"Sender": {"Probability": 1.5}}, {"Sender": []}):
        with pytest.raises(ChaosError):
            c.set_from(body)
    assert c.as_json()["Authentication"] == {"ErrorCode": 535, "Probability": 7}


def test_field_names_without_case():
    c = Chaos(enabled=True)
    c.set_from({"sender": {"errorcode": 421, "PROBABILITY": 3}})
    assert c.as_json()["Sender"] == {"ErrorCode": 421, "Probability": 3}
