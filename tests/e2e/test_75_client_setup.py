"""Scenario 75: client set-up — Thunderbird autoconfig, Outlook autodiscover (and hostile XML sent to it), the
MTA-STS policy, the SRV and ``_mta-sts`` records of ``courrier dns``, and ``courrier dns --check`` against a DNS
server that publishes nothing, then everything, then a wrong PTR.

Everything here is served without credentials, in server mode (where the API needs an admin) and capture mode, and
for the names clients use (``autoconfig.<domain>``, ``mta-sts.<domain>``); each names ``hostname`` and the configured
ports, implicit TLS first.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.dnsfake import FakeDNS

HOST, DOMAIN = "mx.example.test", "example.test"
LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3s", "http")
TB = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
OUTLOOK_REQUEST = (b'<?xml version="1.0" encoding="utf-8"?>\n'
                   b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
                   b"<Request><EMailAddress>bob@example.test</EMailAddress><AcceptableResponseSchema>"
                   b"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
                   b"</AcceptableResponseSchema></Request></Autodiscover>")
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b']><Autodiscover><Request><EMailAddress>&lol9;</EMailAddress></Request></Autodiscover>')
XXE = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b"<Autodiscover><Request><EMailAddress>&x;@example.test</EMailAddress></Request></Autodiscover>")


@pytest.fixture
def srv(server_factory):
    s = server_factory(listeners=LISTENERS, hostname=HOST, domains=(DOMAIN,))
    s.add_user("bob@example.test", "secret")
    return s.start()


def test_autoconfig_autodiscover_and_mta_sts_are_open(srv):
    base = f"http://127.0.0.1:{srv.ports['http']}"
    assert httpx.get(base + "/api/v1/messages").status_code == 401  # the API needs an admin; these do not
    for path, host in (("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40example.test", None),
                       ("/mail/config-v1.1.xml?emailaddress=bob%40example.test", f"autoconfig.{DOMAIN}")):
        r = httpx.get(base + path, headers={"Host": host} if host else {})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml"), r.text
        provider = ET.fromstring(r.content).find("emailProvider")
        assert provider.get("id") == DOMAIN and provider.findtext("domain") == DOMAIN
        incoming = provider.findall("incomingServer")
        assert [(i.get("type"), i.findtext("port"), i.findtext("socketType")) for i in incoming] == [
            ("imap", str(srv.ports["imaps"]), "SSL"), ("imap", str(srv.ports["imap"]), "STARTTLS"),
            ("pop3", str(srv.ports["pop3s"]), "SSL")]
        assert all(i.findtext("hostname") == HOST and i.findtext("username") == "%EMAILADDRESS%" for i in incoming)
        out = provider.find("outgoingServer")
        assert (out.findtext("hostname"), out.findtext("port"), out.findtext("socketType")) == (
            HOST, str(srv.ports["submissions"]), "SSL")

    r = httpx.post(base + "/autodiscover/autodiscover.xml", content=OUTLOOK_REQUEST,
                   headers={"Content-Type": "text/xml"})
    assert r.status_code == 200, r.text
    account = ET.fromstring(r.content).find(f"{TB}Response/{TB}Account")
    protos = {p.findtext(f"{TB}Type"): p for p in account.findall(f"{TB}Protocol")}
    assert set(protos) == {"IMAP", "POP3", "SMTP"}
    assert protos["IMAP"].findtext(f"{TB}Server") == HOST
    assert protos["IMAP"].findtext(f"{TB}Port") == str(srv.ports["imaps"])
    assert protos["SMTP"].findtext(f"{TB}Port") == str(srv.ports["submissions"])
    assert protos["SMTP"].findtext(f"{TB}LoginName") == "bob@example.test"

    for policy_host in (None, f"mta-sts.{DOMAIN}"):
        r = httpx.get(base + "/.well-known/mta-sts.txt", headers={"Host": policy_host} if policy_host else {})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert r.text == f"version: STSv1\r\nmode: testing\r\nmx: {HOST}\r\nmax_age: 604800\r\n"
    assert httpx.get(base + "/livez", headers={"Host": "mta-sts.elsewhere.test"}).status_code == 421


def test_autodiscover_refuses_hostile_xml(srv):
    url = f"http://127.0.0.1:{srv.ports['http']}/autodiscover/autodiscover.xml"
    for body in (BILLION_LAUGHS, XXE, b"not xml at all", b"<Autodiscover><Request/></Autodiscover>"):
        t = time.monotonic()
        r = httpx.post(url, content=body)
        assert r.status_code == 400 and time.monotonic() - t < 2, (body[:40], r.status_code, r.text)
        assert "root:" not in r.text
    r = httpx.post(url, content=b"<a>" + b"x" * 200_000 + b"</a>")
    assert r.status_code == 413
    r = httpx.post(url, content=OUTLOOK_REQUEST)  # still answering afterwards
    assert r.status_code == 200


def test_capture_mode_serves_them_too(server_factory):
    c = server_factory("cap", listeners=("submission", "http"), capture=True, hostname=HOST, domains=(DOMAIN,))
    c.start()
    base = f"http://127.0.0.1:{c.ports['http']}"
    doc = ET.fromstring(httpx.get(base + "/mail/config-v1.1.xml").content)
    out = doc.find("emailProvider/outgoingServer")
    assert out.findtext("port") == str(c.ports["submission"]) and out.findtext("socketType") == "STARTTLS"
    assert doc.find("emailProvider/incomingServer") is None
    assert httpx.get(base + "/.well-known/mta-sts.txt").status_code == 200


def zone(text: str) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^(\S+)\.\s+3600\s+IN\s+(\S+)\s+(.*)$", line)
        if m:
            out.setdefault((m.group(1), m.group(2)), []).append(m.group(3))
    return out


def test_dns_records_and_check(server_factory):
    with FakeDNS() as dns:
        s = server_factory("dns", listeners=("smtp", "submission", "submissions", "imaps"), hostname=HOST,
                           domains=(DOMAIN,), sections={"delivery": {"nameservers": [dns.address]}})
        s.cli("dkim", "keygen", DOMAIN, "--selector", "s1")
        z = zone(s.cli("dns", DOMAIN, "--ip", "192.0.2.25", "--zone").stdout)
        assert z[(f"_submissions._tcp.{DOMAIN}", "SRV")] == [f"0 1 {s.ports['submissions']} {HOST}."]
        assert z[(f"_submission._tcp.{DOMAIN}", "SRV")] == [f"10 1 {s.ports['submission']} {HOST}."]
        assert z[(f"_imap._tcp.{DOMAIN}", "SRV")] == ["0 0 0 ."]  # not offered (RFC 6186 §4)
        assert (f"_imaps._tcp.{DOMAIN}", "SRV") in z and (f"_pop3s._tcp.{DOMAIN}", "SRV") in z
        [sts] = z[(f"_mta-sts.{DOMAIN}", "TXT")]
        sts_id = re.fullmatch(r'"v=STSv1; id=([A-Za-z0-9]{1,32})"', sts).group(1)

        p = s.cli("dns", DOMAIN, "--ip", "192.0.2.25", "--check", check=False)
        assert p.returncode == 3, p.stdout + p.stderr
        lines = p.stdout.splitlines()
        assert {ln.split()[0] for ln in lines} == {"missing"}, lines
        assert {ln.split()[1] for ln in lines} >= {"MX", "A/AAAA", "SPF", "DKIM", "DMARC", "PTR", "MTA-STS"}

        dkim_txt = "".join(re.findall(r'"([^"]*)"', z[(f"s1._domainkey.{DOMAIN}", "TXT")][0]))
        dns.set(DOMAIN, {"MX": [(10, HOST)], "TXT": ["v=spf1 mx -all"]})
        dns.set(HOST, {"A": ["192.0.2.25"]})
        dns.set(f"s1._domainkey.{DOMAIN}", {"TXT": [dkim_txt]})
        dns.set(f"_dmarc.{DOMAIN}", {"TXT": ["v=DMARC1; p=reject"]})
        dns.set("25.2.0.192.in-addr.arpa", {"PTR": [HOST]})
        dns.set(f"_mta-sts.{DOMAIN}", {"TXT": [f"v=STSv1; id={sts_id}"]})
        dns.set(f"mta-sts.{DOMAIN}", {"CNAME": HOST})
        p = s.cli("dns", DOMAIN, "--ip", "192.0.2.25", "--check", check=False)
        assert p.returncode == 0, p.stdout
        assert all(ln.startswith("ok ") for ln in p.stdout.splitlines()), p.stdout

        dns.set("25.2.0.192.in-addr.arpa", {"PTR": ["host.provider.test"]})
        dns.set(f"_mta-sts.{DOMAIN}", {"TXT": ["v=STSv1; id=old"]})
        p = s.cli("dns", DOMAIN, "--ip", "192.0.2.25", "--check", check=False)
        assert p.returncode == 3
        bad = [ln for ln in p.stdout.splitlines() if not ln.startswith("ok ")]
        assert len(bad) == 2 and bad[0].split()[:2] == ["differs", "PTR"] and "host.provider.test" in bad[0]
        assert bad[1].split()[:2] == ["differs", "MTA-STS"]

    gone = s.cli("dns", DOMAIN, "--check", check=False)  # the nameserver is gone: one line, exit 1
    assert gone.returncode == 1 and len(gone.stderr.strip().splitlines()) == 1 and "Traceback" not in gone.stderr
