"""Remote delivery: the SMTP client side of the outbound MTA, on :mod:`courrier.client.pipeline`.

For one destination domain and a group of its recipients (one transaction, RFC 5321 §3.3):

- **Where** (RFC 5321 §5.1, RFC 7505): the MX plan from :mod:`courrier.dns` — hosts by preference, random among
  equals, each host's addresses in turn; implicit MX; null MX → 5.1.10 at once; NXDOMAIN → 5.1.2; DNS trouble →
  4.4.3 and a retry. A ``smarthost`` replaces all of it (with AUTH when ``smarthost_user`` is set).
- **Next host** on a connection failure, a greeting or EHLO failure, a session-level 4xx (MAIL, DATA, 421) or a
  dropped connection; a per-recipient 4xx is kept for that recipient only (the next host would say the same).
- **TLS** (RFC 3207): STARTTLS whenever offered, without certificate checks (opportunistic, as on the public MX
  network); when the handshake fails the same host is tried again in plain text — unless the host's TLS policy
  (:mod:`courrier.delivery.tlspolicy`: DANE, RFC 7672; MTA-STS, RFC 8461) requires TLS and says which certificate
  is acceptable; each attempt's outcome carries the policy's label for the delivery log.
- **Per-recipient outcomes**: each RCPT reply is that recipient's outcome, unless the DATA reply overrides it.
- **Parameters**: SIZE (RFC 1870); BODY=8BITMIME (RFC 6152); SMTPUTF8 (RFC 6531); RET, ENVID, NOTIFY, ORCPT passed
  on when the peer offers DSN (RFC 3461 §5.2) — then the success report becomes the peer's job.
- **Peers lacking 8BITMIME/SMTPUTF8** (documented choice): 8-bit content goes to a peer without 8BITMIME only after
  conversion (:func:`downgrade_8bit`, quoted-printable for 8-bit text parts, RFC 6152 §3); a message that cannot be
  converted, or whose *addresses* need SMTPUTF8 at a peer without it, bounces with 5.6.3 / 5.6.7 (RFC 6531 §3.2).
- **Connection reuse and limits**: at most ``concurrency_per_destination`` transactions per destination at once;
  after a transaction the connection is parked (``reuse_idle`` seconds, ``reuse_max`` transactions) for the next
  message to the same host (whatever its domain: one MX often serves many).
- **Pipelining** (RFC 2920): MAIL, the RCPTs and DATA go in one write when the peer offers it, the message and its
  "." in the next — two round trips per message on a reused connection.
- **Loops**: a peer that greets with our own hostname is us (RFC 5321 §5.1): 5.4.6, no delivery.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from courrier.client.pipeline import Connection, ConnectionLost, NoMechanism, PipelineError, ReplyTimeout
from courrier.client.pipeline import Reply as PeerReply
from courrier.delivery import replies as R
from courrier.delivery.outcome import Outcome
from courrier.delivery.tlspolicy import OPPORTUNISTIC_HOST, HostPolicy, TLSPolicy
from courrier.dns import Resolver
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.path import xtext_encode
from courrier.mail.reply import Reply

AttemptHook = Callable[[list[str], Outcome], None]

_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\s+")


def split_reply(code: int, message: str, host: str | None = None, address: str | None = None,
                tls: str | None = None, tls_policy: str | None = None, remote_dsn: bool = False) -> Outcome:
    """An SMTP reply → Outcome, the RFC 3463 code separated from the text (first line kept whole)."""
    text = " ".join(message.split("\n")).strip()
    m = _ENHANCED.match(text)
    enhanced = m.group(1) if m else None
    if m:
        text = text[m.end():]
    return Outcome(Reply(code, enhanced, text), host=host, address=address, tls=tls, tls_policy=tls_policy,
                   remote_dsn=remote_dsn)


@dataclass
class _Conn:
    smtp: Connection
    host: str
    key: tuple[str, int, str]  # address, port, TLS policy grade (courrier.delivery.tlspolicy.HostPolicy.grade)
    tls: str | None
    uses: int = 0
    parked_at: float = 0.0
    handle: asyncio.TimerHandle | None = None


class _Gate:
    """At most ``n`` holders, the others served first come, first served. asyncio.Semaphore would do, but on
    Python 3.11 its ``acquire`` walks the whole waiter list: with hundreds of queued messages waiting for the same
    destination that is quadratic."""

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed the place just as it was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the place goes straight to the next waiter
                return
        self.free += 1


class _SessionFailure(Exception):
    """The whole session failed (before or instead of per-recipient answers): try the next host."""

    def __init__(self, outcome: Outcome, next_host: bool = True, stale: bool = False,
                 final: dict[int, Outcome] | None = None) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome
        self.next_host = next_host
        self.stale = stale  # a cached connection the peer had closed: not an attempt, reconnect
        self.final = final or {}  # recipients already refused for good in this transaction (RCPT 5xx)


@dataclass
class Smarthost:
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)


class RemoteDelivery:
    def __init__(self, *, resolver: Resolver, hostname: str, mx_port: int = 25, smarthost: Smarthost | None = None,
                 concurrency_per_destination: int = 4, connect_timeout: float = 30.0,
                 command_timeout: float = 300.0, reuse_idle: float = 5.0, reuse_max: int = 100,
                 tls_policy: TLSPolicy | None = None) -> None:
        self.resolver = resolver
        self.tls_policy = tls_policy
        self.hostname = hostname
        self.mx_port = mx_port
        self.smarthost = smarthost
        self.per_destination = concurrency_per_destination
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.reuse_idle = reuse_idle
        self.reuse_max = reuse_max
        # one MX host often serves many destination domains, each allowed ``per_destination`` connections: room for
        # 64 domains' worth per host, so connections are not closed and reopened between two messages
        self.max_idle_per_host = max(64, 64 * concurrency_per_destination)
        self.max_idle = max(256, 2 * self.max_idle_per_host)
        self._gates: dict[str, _Gate] = {}
        self._idle: dict[tuple[str, int, str], list[_Conn]] = {}
        self._no_tls: dict[tuple[str, int], float] = {}  # hosts whose TLS handshake failed recently
        self.tls_context = ssl.create_default_context()
        self.tls_context.check_hostname = False
        self.tls_context.verify_mode = ssl.CERT_NONE  # opportunistic TLS: encrypt, do not authenticate
        self.connections_opened = 0  # for tests and the benchmark

    # ------------------------------------------------------------------ entry point

    async def deliver(self, domain: str, env: Envelope, message: bytes,
                      rcpts: list[tuple[int, Recipient]], on_attempt: AttemptHook) -> dict[int, Outcome]:
        dest = "smarthost" if self.smarthost else domain
        gate = self._gates.get(dest)
        if gate is None:
            gate = self._gates[dest] = _Gate(self.per_destination)
        await gate.acquire()
        try:
            return await self._deliver(domain, env, message, rcpts, on_attempt)
        finally:
            gate.release()

    async def _targets(self, domain: str) -> list[tuple[str, list[str], int]] | Outcome:
        if self.smarthost:
            return [(self.smarthost.host, [self.smarthost.host], self.smarthost.port)]
        plan = await self.resolver.mx_plan(domain)
        if plan.kind == "null":
            return Outcome(R.NULL_MX.filled(domain=domain), host=domain)
        if plan.kind == "nxdomain":
            return Outcome(R.NO_SUCH_DOMAIN.filled(domain=domain), host=domain)
        if plan.kind == "none":
            return Outcome(R.NO_MX_ADDRESS.filled(domain=domain), host=domain)
        if plan.kind == "tempfail":
            return Outcome(R.DNS_TEMPFAIL.filled(domain=domain, notes="; ".join(plan.notes)), host=domain)
        return [(h.host, list(h.addresses), self.mx_port) for h in plan.hosts if h.addresses]

    async def _deliver(self, domain: str, env: Envelope, message: bytes,
                       rcpts: list[tuple[int, Recipient]], on_attempt: AttemptHook) -> dict[int, Outcome]:
        everyone = [str(r.address) for _, r in rcpts]
        policy = self.tls_policy if not self.smarthost and not domain.startswith("[") else None
        sts_lookup = None
        if policy is not None and not self.smarthost and not self.resolver.plan_kept(domain):
            sts_lookup = asyncio.ensure_future(policy.domain_policy(domain))  # beside the MX lookups, not after
            sts_lookup.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved, even when dropped
        try:
            targets = await self._targets(domain)
        except BaseException:
            if sts_lookup is not None:
                sts_lookup.cancel()
            raise
        if isinstance(targets, Outcome):
            if sts_lookup is not None:
                sts_lookup.cancel()
            on_attempt(everyone, targets)
            return {i: targets for i, _ in rcpts}
        last: Outcome | None = None
        all_permanent = True
        final: dict[int, Outcome] = {}
        if sts_lookup is not None:
            sts = await sts_lookup
        else:
            sts = await policy.domain_policy(domain) if policy else None
        for host, addresses, port in targets:
            hp = await policy.host_policy(env.queue_id, domain, host, port, sts) if policy else OPPORTUNISTIC_HOST
            for ip in addresses if hp.refused is None else [""]:
                try:
                    if hp.refused is not None:  # the policy keeps mail from this host: an attempt that failed
                        raise _SessionFailure(Outcome(hp.refused, host=host))
                    return {**final, **await self._via(host, ip, port, hp, env, message, rcpts, on_attempt)}
                except _SessionFailure as f:
                    if f.outcome.tls_policy is None:
                        f.outcome = replace(f.outcome, tls_policy=hp.label)
                    final.update(f.final)  # RCPT 5xx answers stand; the others go to the next host
                    rcpts = [(i, r) for i, r in rcpts if i not in final]
                    everyone = [str(r.address) for _, r in rcpts]
                    if everyone:
                        on_attempt(everyone, f.outcome)
                    last = f.outcome
                    all_permanent = all_permanent and f.outcome.permanent
                    if not f.next_host or not rcpts:
                        return {**final, **{i: f.outcome for i, _ in rcpts}}
        if last is None:
            last = Outcome(R.NO_MX_TO_TRY.filled(domain=domain), host=domain)
            on_attempt(everyone, last)
        elif last.permanent and not all_permanent:
            last = Outcome(R.ALL_MX_FAILED.filled(last=last), host=last.host, address=last.address)
        return {**final, **{i: last for i, _ in rcpts}}

    # ------------------------------------------------------------------ one host

    async def _via(self, host: str, ip: str, port: int, hp: HostPolicy, env: Envelope, message: bytes,
                   rcpts: list[tuple[int, Recipient]], on_attempt: AttemptHook) -> dict[int, Outcome]:
        def labelled(rcpts: list[str], o: Outcome) -> None:
            on_attempt(rcpts, o if o.tls_policy else replace(o, tls_policy=hp.label))

        def done(results: dict[int, Outcome]) -> dict[int, Outcome]:
            return {i: o if o.tls_policy else replace(o, tls_policy=hp.label) for i, o in results.items()}

        conn = self._take_idle((ip, port, hp.grade(host)))
        if conn is not None:
            try:
                return done(await self._transaction(conn, env, message, rcpts, labelled, hp.label))
            except _SessionFailure as f:
                if not f.stale:
                    raise
                conn.smtp.close()  # a parked connection the peer closed meanwhile: a fresh connection decides
        conn = await self._connect(host, ip, port, hp)
        return done(await self._transaction(conn, env, message, rcpts, labelled, hp.label))

    async def _connect(self, host: str, ip: str, port: int, hp: HostPolicy = OPPORTUNISTIC_HOST) -> _Conn:
        key = (ip, port)
        where = f"{host}[{ip}]:{port}"
        addr = f"{ip}:{port}"
        use_tls = hp.require_tls or self._no_tls.get(key, 0) < time.time()
        verify = hp.verify

        def refused(r: PeerReply) -> _SessionFailure:
            smtp.close()
            return _SessionFailure(split_reply(r.code, r.text, host, addr))

        for _ in range(3):
            try:
                smtp = await Connection.open(ip, port, connect_timeout=self.connect_timeout,
                                             timeout=self.command_timeout)
            except (TimeoutError, ReplyTimeout):
                raise _SessionFailure(Outcome(R.TIMEOUT.filled(where=where), host=host, address=addr)) from None
            except (PipelineError, OSError) as e:
                reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
                raise _SessionFailure(Outcome(R.CONNECT_FAILED.filled(where=where, reason=reason), host=host,
                                              address=addr)) from None
            self.connections_opened += 1
            try:
                assert smtp.greeting is not None
                if smtp.greeting.code != 220:  # RFC 5321 §3.1: 554 instead of 220 means "go away"
                    raise refused(smtp.greeting)
                ehlo = await self._ehlo(smtp)
                if ehlo.code != 250:
                    raise refused(ehlo)
                peer_name = (ehlo.text.split() or [""])[0].lower()
                if peer_name and peer_name == self.hostname.lower():
                    smtp.close()
                    raise _SessionFailure(Outcome(R.LOOPS_BACK.filled(host=host), host=host, address=addr),
                                          next_host=True)
                tls = None
                offered = smtp.supports("starttls")
                if use_tls and offered:
                    context = self.tls_policy.verify_context if self.tls_policy and verify == "pkix" else None
                    try:
                        r = await smtp.starttls(context or self.tls_context, server_hostname=host)
                        if r.code != 220:
                            raise ssl.SSLError(f"STARTTLS refused: {r}")
                        obj = smtp.ssl_object
                        tls = obj.version() if obj else "TLS"
                        problem = TLSPolicy.check(replace(hp, verify=verify), obj, host)
                        if problem is not None:  # DANE: no TLSA record matches (RFC 7672 §3)
                            smtp.close()
                            raise _SessionFailure(Outcome(R.DANE_MISMATCH.filled(reason=problem, host=host),
                                                          host=host, address=addr, tls=tls))
                        ehlo = await smtp.ehlo(self.hostname)
                        if ehlo.code != 250:
                            raise refused(ehlo)
                    except ssl.SSLCertVerificationError as e:
                        smtp.close()
                        reason = e.verify_message or e.reason or str(e)
                        if hp.require_tls:  # MTA-STS enforce (RFC 8461 §4.2)
                            raise _SessionFailure(Outcome(R.STS_CERT_INVALID.filled(host=host, domain=hp.domain,
                                                                                    reason=reason),
                                                          host=host, address=addr)) from None
                        TLSPolicy.report(hp, host, f"certificate not valid: {reason}")  # testing: go on unchecked
                        verify = "none"
                        continue
                    except (PipelineError, ssl.SSLError, OSError) as e:
                        smtp.close()
                        if hp.require_tls:  # DANE or MTA-STS enforce: never in clear
                            raise _SessionFailure(Outcome(R.TLS_REQUIRED_FAILED.filled(
                                where=where, policy=hp.label, reason=str(e) or type(e).__name__),
                                host=host, address=addr)) from None
                        # RFC 3207 §4.1 allows going on in clear; Postfix's "may" level does the same
                        self._no_tls[key] = time.time() + 3600
                        use_tls = False
                        continue
                elif hp.require_tls:  # RFC 7672 §2.2, RFC 8461 §4.2: STARTTLS is mandatory here
                    smtp.close()
                    raise _SessionFailure(Outcome(R.TLS_NOT_OFFERED.filled(host=host, policy=hp.label),
                                                  host=host, address=addr))
                elif hp.label != OPPORTUNISTIC_HOST.label:
                    TLSPolicy.report(hp, host, "no TLS: " + ("STARTTLS not offered" if not offered
                                                             else "the TLS handshake failed"))
                if self.smarthost and self.smarthost.user:
                    try:
                        r = await smtp.auth(self.smarthost.user, self.smarthost.password or "")
                    except NoMechanism as e:
                        smtp.close()
                        raise _SessionFailure(Outcome(R.SMARTHOST_AUTH_IMPOSSIBLE.filled(error=e), host=host,
                                                      address=addr, tls=tls)) from None
                    if not 200 <= r.code < 300:  # 235 per RFC 4954 §6; some sinks answer 250
                        smtp.close()
                        o = split_reply(r.code, r.text, host, addr, tls)
                        raise _SessionFailure(Outcome(R.SMARTHOST_AUTH_FAILED.filled(reply=o), host=host,
                                                      address=addr, tls=tls))
                return _Conn(smtp, host, (ip, port, hp.grade(host)), tls)
            except _SessionFailure:
                raise
            except (TimeoutError, ReplyTimeout):
                smtp.close()
                raise _SessionFailure(Outcome(R.TIMEOUT.filled(where=where), host=host, address=addr)) from None
            except (PipelineError, OSError) as e:
                smtp.close()
                reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
                raise _SessionFailure(Outcome(R.CONNECT_FAILED.filled(where=where, reason=reason), host=host,
                                              address=addr)) from None
        raise _SessionFailure(Outcome(R.CONNECT_FAILED.filled(where=where, reason="TLS failed"), host=host,
                                      address=addr))

    async def _ehlo(self, smtp: Connection) -> PeerReply:
        r = await smtp.ehlo(self.hostname)
        if r.code >= 500 and r.code != 554:  # RFC 5321 §4.1.4: fall back to HELO for an old server
            r = await smtp.helo(self.hostname)
        return r

    async def _transaction(self, conn: _Conn, env: Envelope, message: bytes, rcpts: list[tuple[int, Recipient]],
                           on_attempt: AttemptHook, label: str | None = None) -> dict[int, Outcome]:
        smtp, where = conn.smtp, f"{conn.key[0]}:{conn.key[1]}"

        def out(r: PeerReply, remote_dsn: bool = False) -> Outcome:
            return split_reply(r.code, r.text, conn.host, where, conn.tls, label, remote_dsn)

        results: dict[int, Outcome] = {}

        def fail(o: Outcome, next_host: bool = True) -> _SessionFailure:
            smtp.close()
            return _SessionFailure(o, next_host, final={i: r for i, r in results.items() if r.permanent})

        eightbit = not message.isascii()
        needs_utf8 = not str(env.mail_from).isascii() or any(not str(r.address).isascii() for _, r in rcpts)
        utf8 = env.smtputf8 and smtp.supports("smtputf8")
        if needs_utf8 and not utf8:
            o = Outcome(R.NEEDS_SMTPUTF8, host=conn.host, address=where, tls=conn.tls)
            self._park(conn)
            on_attempt([str(r.address) for _, r in rcpts], o)
            return {i: o for i, _ in rcpts}
        if eightbit and not smtp.supports("8bitmime") and not utf8:
            converted = downgrade_8bit(message)
            if converted is None:
                o = Outcome(R.NEEDS_8BITMIME, host=conn.host, address=where, tls=conn.tls)
                self._park(conn)
                on_attempt([str(r.address) for _, r in rcpts], o)
                return {i: o for i, _ in rcpts}
            message, eightbit = converted, False
        if not message.endswith(b"\r\n"):
            message += b"\r\n"
        dsn = smtp.supports("dsn")
        mail = f"<{env.mail_from}>"
        if smtp.supports("size"):
            mail += f" SIZE={len(message)}"
        if eightbit:
            mail += " BODY=8BITMIME"
        if utf8:
            mail += " SMTPUTF8"
        if dsn:
            if env.ret:
                mail += f" RET={env.ret}"
            if env.envid:
                mail += f" ENVID={xtext_encode(env.envid)}"
        lines = []
        for _, r in rcpts:
            line = f"<{r.address}>"
            if dsn:
                if r.notify:
                    line += " NOTIFY=" + ",".join(r.notify)
                if r.orcpt:
                    kind, _, addr = r.orcpt.partition(";")
                    line += f" ORCPT={kind or 'rfc822'};{xtext_encode(addr or r.orcpt)}"
            lines.append(line)
        try:
            try:
                ex = await smtp.send(mail, lines, message, "utf-8" if utf8 else "ascii")
            except ConnectionLost as e:
                if conn.uses and e.before_reply:  # a parked connection the peer had closed: not an attempt
                    smtp.close()
                    raise _SessionFailure(Outcome(R.STALE_CONNECTION.filled(error=e)), stale=True) from None
                raise
            assert ex.mail is not None
            if not ex.mail.ok:
                o = out(ex.mail)
                if o.permanent:
                    self._park_after_rset(conn)
                    raise _SessionFailure(o, next_host=False)
                raise fail(o)
            accepted: list[tuple[int, Recipient]] = []
            for (i, r), reply in zip(rcpts, ex.rcpts or [], strict=False):
                if reply.code == 421:
                    raise fail(out(reply))
                results[i] = out(reply)
                if reply.ok:
                    accepted.append((i, r))
            refused = [(i, r) for i, r in rcpts if i not in dict(accepted)]
            if refused:
                by: dict[Outcome, list[str]] = {}
                for i, r in refused:
                    by.setdefault(results[i], []).append(str(r.address))
                for o, addrs in by.items():
                    on_attempt(addrs, o)
            if not accepted:
                self._park_after_rset(conn)
                return results
            assert ex.data is not None
            o = out(ex.data, remote_dsn=dsn)
            if not (ex.sent and 200 <= ex.data.code < 300):
                o = replace(o, remote_dsn=False)
                if o.permanent:
                    for i, _ in accepted:
                        results[i] = o
                    on_attempt([str(r.address) for _, r in accepted], o)
                    self._park_after_rset(conn)
                    return results
                raise fail(o if ex.data.code >= 400 else Outcome(R.UNEXPECTED_REPLY.filled(code=ex.data.code),
                                                                 host=conn.host, address=where))
            for i, _ in accepted:
                results[i] = o
            on_attempt([str(r.address) for _, r in accepted], o)
            conn.uses += 1
            self._park(conn)
            return results
        except _SessionFailure:
            raise
        except (TimeoutError, ReplyTimeout):
            raise fail(Outcome(R.TIMEOUT.filled(where=f"{conn.host}[{where}]"), host=conn.host,
                               address=where, tls=conn.tls)) from None
        except (PipelineError, OSError) as e:
            raise fail(Outcome(R.CONNECTION_LOST.filled(where=f"{conn.host}[{where}]", error=e or type(e).__name__),
                               host=conn.host, address=where, tls=conn.tls)) from None

    # ------------------------------------------------------------------ connection cache

    def _take_idle(self, key: tuple[str, int, str]) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.handle:
                conn.handle.cancel()
            if conn.smtp.reusable and time.monotonic() - conn.parked_at < self.reuse_idle:
                return conn
            conn.smtp.close()
        return None

    def _park_after_rset(self, conn: _Conn) -> None:
        async def rset() -> None:
            try:
                r = await conn.smtp.rset()
                if r.code == 250:
                    self._park(conn)
                else:
                    conn.smtp.close()
            except (PipelineError, OSError):
                conn.smtp.close()

        asyncio.get_running_loop().create_task(rset())

    def _park(self, conn: _Conn) -> None:
        # one host often serves many destination domains (shared MX): the cache is per host, sized for that
        if (conn.uses >= self.reuse_max or not conn.smtp.is_connected or self.reuse_idle <= 0
                or len(self._idle.get(conn.key, [])) >= self.max_idle_per_host
                or sum(len(v) for v in self._idle.values()) >= self.max_idle):
            self._quit(conn)
            return
        conn.parked_at = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        conn.handle = asyncio.get_running_loop().call_later(self.reuse_idle, self._expire, conn)

    def _expire(self, conn: _Conn) -> None:
        idle = self._idle.get(conn.key, [])
        if conn in idle:
            idle.remove(conn)
            self._quit(conn)

    def _quit(self, conn: _Conn) -> None:
        async def quit_() -> None:
            try:
                async with asyncio.timeout(5):
                    await conn.smtp.quit()
            except (PipelineError, OSError, TimeoutError):
                pass
            finally:
                conn.smtp.close()

        asyncio.get_running_loop().create_task(quit_())

    async def close(self) -> None:
        conns = [c for lst in self._idle.values() for c in lst]
        self._idle.clear()
        for c in conns:
            if c.handle:
                c.handle.cancel()
        async def q(c: _Conn) -> None:
            try:
                async with asyncio.timeout(2):
                    await c.smtp.quit()
            except (PipelineError, OSError, TimeoutError):
                pass
            finally:
                c.smtp.close()
        await asyncio.gather(*(q(c) for c in conns))


def downgrade_8bit(message: bytes) -> bytes | None:
    """RFC 6152 §3 conversion for a peer without 8BITMIME: 8-bit text parts re-encoded as quoted-printable.

    Returns None when the message cannot be converted (8-bit bytes in the header, or a non-text 8-bit part).
    """
    import email
    import email.policy
    from email.message import Message

    end = message.find(b"\r\n\r\n")
    if end >= 0 and not message[:end].isascii():
        return None  # 8-bit header fields need SMTPUTF8 (RFC 6532), not a body conversion
    msg = email.message_from_bytes(message, policy=email.policy.compat32)

    def convert(part: Message) -> bool:
        if part.is_multipart():
            return all(convert(p) for p in part.get_payload())  # type: ignore[union-attr]
        raw = part.get_payload(decode=False)
        raw_b = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
        if raw_b.isascii():
            return True
        if part.get_content_maintype() not in ("text", "message"):
            return False
        data = part.get_payload(decode=True) or b""
        import quopri
        qp = quopri.encodestring(data).decode("ascii")
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(qp)
        return True

    if not convert(msg):
        return None
    out = msg.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))
    return out if out.isascii() else None
