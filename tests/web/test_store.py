"""The web layer's adapter over the capture store: Mailpit's ``tz`` parameter for date-only searches."""

import pytest

from courrier.web.store import SearchError, apply_tz


def test_date_terms_read_in_the_given_zone():
    q = "from:a before:2026-01-02 -after:2025-12-01 subject:2026-01-02"
    assert apply_tz(q, "Pacific/Auckland") == (
        "from:a before:2026-01-02T00:00:00+13:00 -after:2025-12-01T00:00:00+13:00 subject:2026-01-02")
    assert apply_tz(q, None) == q
    assert apply_tz("after:2026-06-01", "Europe/Paris") == "after:2026-06-01T00:00:00+02:00"
    with pytest.raises(SearchError, match="time zone"):
        apply_tz("after:2026-06-01", "Mars/Olympus")
