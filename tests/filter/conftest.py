from tests.dnsfake import fake_dns  # noqa: F401
from tests.spamd import spamd  # noqa: F401
