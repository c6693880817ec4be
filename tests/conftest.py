import os

import pytest

os.environ.setdefault("COURRIER_ARGON2_PROFILE", "cheapest")


@pytest.fixture
def server_factory(tmp_path):
    """Builds ``support.Server`` instances in their own folders; stops them all at the end of the test."""
    from tests.support import Server

    made: list[Server] = []

    def make(name: str = "srv", **kw):
        d = tmp_path / name
        d.mkdir()
        s = Server(d, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
