"""The OpenSPF RFC 7208 test suite (release 2014.04, as shipped in pyspf 2.0.14's source) through courrier's SPF module.

Each case's zone is served by a real dnslib server on 127.0.0.1 (tests/mailauth/zoneserver.py) and asked by our
resolver, so the whole path — pyspf, our DNS adapter, dnspython, the wire — is exercised. The YAML file and its licence
are in tests/mailauth/data/. Every case must give one of its listed results and, where the suite names one, the same
explanation (with "DEFAULT" as the receiver's default explanation, as the suite's own driver sets it). All 203 pass:
none is excused. (``ptr-cname-loop`` needed courrier's RFC 7208 §5.5 fix in ``_Query.validated_ptrs``: with a real
resolver a CNAME loop is a DNS error, and the RFC skips that PTR name.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from courrier.mailauth._dns import Resolver
from courrier.mailauth.spf import check_spf
from tests.mailauth.zoneserver import ZoneServer, load_zone

DATA = Path(__file__).parent / "data" / "rfc7208-tests.yml"


def _cases() -> list[tuple[str, dict, dict]]:
    out = []
    with open(DATA, "rb") as f:
        for scenario in yaml.safe_load_all(f):
            zone = load_zone(scenario.get("zonedata") or {})
            for name, case in scenario["tests"].items():
                out.append((name, case, zone))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def zone_server():
    s = ZoneServer().start()
    yield s
    s.stop()


def test_suite_is_complete():
    assert len(CASES) == 203  # the suite's 2014.04 release: nothing silently dropped


@pytest.mark.parametrize("name,case,zone", CASES, ids=[c[0] for c in CASES])
def test_rfc7208_case(zone_server, name, case, zone):
    zone_server.zone = zone
    resolver = Resolver([("127.0.0.1", zone_server.port)], timeout=0.4)
    res = check_spf(resolver, case["host"], case["mailfrom"], case["helo"], default_explanation="DEFAULT")
    expected = case["result"] if isinstance(case["result"], list) else [case["result"]]
    assert res.result in expected, f"{name} ({case['spec']}): {case.get('description', '')} → {res}"
    if "explanation" in case and res.result == "fail":
        assert res.explanation == case["explanation"], name
