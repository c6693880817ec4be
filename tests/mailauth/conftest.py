"""Fixtures for the mail-authentication tests: the shared fake DNS server and a resolver pointed at it."""

import pytest

from courrier.mailauth._dns import Resolver
from tests.dnsfake import fake_dns  # noqa: F401  (the fixture)


@pytest.fixture
def resolver(fake_dns):  # noqa: F811
    return Resolver([("127.0.0.1", fake_dns.port)], timeout=1.0)
