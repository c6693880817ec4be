"""Link check: the HTTP status of every link and image of a message, as Mailpit's ``internal/linkcheck`` reports it.

What is checked (``main.go``): ``a[href]``, ``link[rel=stylesheet][href]`` and ``img[src]`` of the HTML body whose
value holds an ``http(s)://`` URL, then the ``http(s)://`` URLs of the text body; each URL once. Each gets one
``HEAD`` request (``status.go``); with ``follow`` redirects are followed (at most ``MAX_REDIRECTS``), else a 3xx is
the answer. ``Status`` is the reason phrase of the code ("OK", "Not Found"), or for a failed request a short reason
("connection refused") with ``StatusCode`` 0. ``Errors`` counts codes ≥ 400 and failures. Results are cached for
``CACHE_SECONDS``.

The checker fetches URLs chosen by whoever sent the mail, from inside the network courrier runs in — a server-side
request forgery vector. So, unless ``[capture] link_check_internal``:

- every address a host name resolves to is checked, and a name with any private, loopback, link-local, shared,
  multicast or reserved address is refused (451 "Blocked private/reserved address", Mailpit's answer);
- the connection goes to the address that was checked (no second lookup a rebinding DNS server could answer
  differently);
- each redirect hop is a new URL, checked the same way before it is fetched.

Bounded: ``MAX_LINKS`` per message, ``CONCURRENCY`` requests at a time per check and ``TOTAL_CONCURRENCY`` per
checker, ``TIMEOUT`` per URL (all hops together), ``MAX_HEAD`` octets of response head, ``BUDGET`` per check.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from http import HTTPStatus
from urllib.parse import quote, urljoin, urlsplit

from courrier import __version__

LINK_RE = re.compile(r"\b(http|https)://([\-\w@:%_\+'!.~#?,&/=;]+)", re.I | re.M)  # Mailpit's linkRe
CONCURRENCY = 5  # Mailpit: 5 threads
TOTAL_CONCURRENCY = 16
TIMEOUT = 10.0  # Mailpit's http.Client timeout
BUDGET = 120.0  # one whole check; links still open then are reported as timed out
MAX_REDIRECTS = 10  # Go's http.Client default
MAX_LINKS = 500
MAX_HEAD = 64 * 1024
CACHE_SECONDS = 60.0
MAX_CACHE = 10_000
BLOCKED = (451, "Blocked private/reserved address")
REDIRECTS = (301, 302, 303, 307, 308)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Link:
    url: str
    status_code: int
    status: str


class _Links(HTMLParser):
    """The link attributes Mailpit's goquery selectors pick, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a":
            v = a.get("href")
        elif tag == "link" and a.get("rel") == "stylesheet":
            v = a.get("href")
        elif tag == "img":
            v = a.get("src")
        else:
            return
        if v is not None and LINK_RE.search(v):
            self.found.append(v.strip())


def extract_links(html: str, text: str) -> list[str]:
    """HTML links, then text links, each once, at most ``MAX_LINKS``."""
    p = _Links()
    with contextlib.suppress(Exception):  # html.parser is lenient; a failure leaves what was found so far
        p.feed(html)
        p.close()
    out: list[str] = []
    for u in [*p.found, *(m.group(0) for m in LINK_RE.finditer(text))]:
        if u not in out:
            out.append(u)
            if len(out) == MAX_LINKS:
                break
    return out


def is_internal(ip: IPAddress) -> bool:
    """Not a public unicast address: private, loopback, link-local, shared (RFC 6598), multicast, reserved,
    unspecified — IPv4-mapped IPv6 judged by its IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


class Refused(Exception):
    """A target the checker will not contact (an internal address)."""


class LinkChecker:
    """One per web application: the cache and the connection bound are shared by every check."""

    def __init__(self, allow_internal: bool = False, blocked: Callable[[IPAddress], bool] = is_internal,
                 user_agent: str = f"courrier/{__version__}") -> None:
        self.blocked = (lambda ip: False) if allow_internal else blocked
        self.user_agent = user_agent
        self._cache: dict[tuple[str, bool], tuple[float, Link]] = {}
        self._slots = asyncio.Semaphore(TOTAL_CONCURRENCY)
        self._tls = ssl.create_default_context()

    async def check(self, html: str, text: str, follow: bool) -> tuple[int, list[Link]]:
        """(Errors, Links) for one message."""
        urls = extract_links(html, text)
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(u: str) -> Link:
            async with sem:
                return await self.status(u, follow)

        tasks = [asyncio.ensure_future(one(u)) for u in urls]
        if tasks:
            await asyncio.wait(tasks, timeout=BUDGET)
        links = []
        for u, t in zip(urls, tasks, strict=True):
            if t.done() and not t.cancelled() and t.exception() is None:
                links.append(t.result())
            else:
                t.cancel()
                links.append(Link(u, 0, "timeout"))
        return sum(1 for x in links if x.status_code >= 400 or x.status_code == 0), links

    async def status(self, url: str, follow: bool) -> Link:
        key = (url, follow)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        link = await self._status(url, follow)
        if len(self._cache) >= MAX_CACHE:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, link)
        return link

    async def _status(self, url: str, follow: bool) -> Link:
        try:
            async with asyncio.timeout(TIMEOUT), self._slots:
                target = url
                for _ in range(MAX_REDIRECTS + 1):
                    code, location = await self._head(target)
                    if not (follow and code in REDIRECTS and location):
                        return Link(url, code, _phrase(code))
                    target = urljoin(target, location)
                return Link(url, 0, f"stopped after {MAX_REDIRECTS} redirects")
        except Refused:
            return Link(url, *BLOCKED)
        except TimeoutError:
            return Link(url, 0, "timeout")
        except (OSError, ValueError, UnicodeError, ssl.SSLError) as e:
            return Link(url, 0, _summary(e))

    async def _address(self, host: str, port: int) -> str:
        """The address to connect to, after every address of ``host`` passed the internal-address check."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise OSError("no such host") from None
        addrs = [ipaddress.ip_address(i[4][0].split("%", 1)[0]) for i in infos]
        if not addrs:
            raise OSError("no such host")
        if any(self.blocked(a) for a in addrs):
            raise Refused(host)
        return str(addrs[0])

    async def _head(self, url: str) -> tuple[int, str | None]:
        """One HEAD request (HTTP/1.1, RFC 9110 §9.3.2): the status code and the Location header, if any."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported protocol scheme \"{parts.scheme}\"")
        host = parts.hostname
        if not host:
            raise ValueError("no host in request URL")
        port = parts.port or (443 if scheme == "https" else 80)
        host_ascii = host.encode("idna").decode("ascii") if not host.isascii() else host
        addr = await self._address(host_ascii, port)
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
        host_header = f"[{host_ascii}]" if ":" in host_ascii else host_ascii
        if parts.port:
            host_header += f":{parts.port}"
        reader, writer = await asyncio.open_connection(
            addr, port, ssl=self._tls if scheme == "https" else None,
            server_hostname=host_ascii if scheme == "https" else None)
        try:
            writer.write((f"HEAD {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {self.user_agent}\r\n"
                          "Accept: */*\r\nConnection: close\r\n\r\n").encode("ascii"))
            await writer.drain()
            head = await _read_head(reader)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/\d(?:\.\d)? (\d{3})", lines[0])
        if not m:
            raise ValueError("malformed HTTP response")
        location = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "location":
                location = value.strip()
        return int(m.group(1)), location


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(4096)
        if not chunk:
            if head:
                break
            raise OSError("EOF")
        head += chunk
        if len(head) > MAX_HEAD:
            raise ValueError("response head too large")
    return head.split(b"\r\n\r\n", 1)[0]


def _phrase(code: int) -> str:
    """Go's ``http.StatusText``: the reason phrase, "" for a code it does not know."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _summary(e: BaseException) -> str:
    """A short reason, as Mailpit's ``httpErrorSummary`` keeps the last part of Go's error text."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"tls: {e.verify_message or 'certificate verify failed'}"
    text = str(e.args[-1] if isinstance(e, OSError) and e.args else e) or type(e).__name__
    return text.rsplit(": ", 1)[-1]
