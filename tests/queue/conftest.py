from tests.dnsfake import fake_dns  # noqa: F401  (the fixture, for every test here)
