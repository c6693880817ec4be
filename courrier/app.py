"""The composition root: builds every component once from the Config and runs all listeners in one event loop.

No component reaches for globals: each gets what it needs here. Lifecycle: ``start()`` binds every enabled listener
(failing with one line when a port is taken), ``run()`` waits for SIGINT/SIGTERM, ``stop()`` lets in-flight SMTP
transactions finish (bounded), then closes the rest.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from courrier import config, log, observe, privileges, tlsutil
from courrier.access.pop3.commands import MAX_AUTH_LINE as POP3_MAX_LINE
from courrier.accounts import Accounts
from courrier.auth import AuthGate
from courrier.capture.api import CaptureBackend
from courrier.capture.store import CaptureStore
from courrier.cluster import Cluster
from courrier.cluster.accounts import PgAccounts
from courrier.cluster.capture_store import open_capture_store
from courrier.cluster.pg import Unavailable
from courrier.config import Config, ConfigError, HostPort
from courrier.delivery.sieve import SieveFilter
from courrier.filter import chain as filter_chain
from courrier.lifecycle import Service, StartupError
from courrier.mail.envelope import Envelope, Hop, Recipient, new_queue_id
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import NULL, parse_address
from courrier.mail.reply import Reply
from courrier.mailauth import dkim as dkim_keys
from courrier.mailauth._dns import Resolver as AuthResolver
from courrier.mailauth.report import Authenticator
from courrier.mailbox.api import MailStore
from courrier.mailbox.store import MaildirStore
from courrier.net.bind import BindFailure, bind_listening
from courrier.net.limits import ConnectionLimits
from courrier.privileges import Prebound
from courrier.queue import outbound
from courrier.quota import Quotas
from courrier.roles.capture import CapturePolicy
from courrier.roles.mx import InboundCheck, InboundVerdict, MXPolicy
from courrier.roles.submission import SubmissionPolicy
from courrier.sieve.store import SieveStore
from courrier.smtp import replies as R
from courrier.smtp.policy import Policy
from courrier.smtp.protocol import SMTPServer
from courrier.smtp.session import Session

if TYPE_CHECKING:
    from courrier.web.context import WebContext


@dataclass
class Listener:
    name: str
    address: HostPort
    server: asyncio.AbstractServer
    description: str


class App:
    def __init__(self, cfg: Config, prebound: Prebound | None = None) -> None:
        self.cfg = cfg
        self.prebound = prebound  # sockets bound as root before the privilege drop (courrier/privileges.py)
        self.data_dir = cfg.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.data_dir / "spool-tmp").mkdir(exist_ok=True)
        self.cluster: Cluster | None = None  # [store] backend = "postgresql": accounts, mail, queue shared by nodes
        self.accounts: Accounts
        self.store: MailStore
        self.capture: CaptureBackend | None = None  # capture mode: the captured mail (web UI/API, POP3, IMAP)
        self._capture_policy: CapturePolicy | None = None
        if cfg.store.backend == "postgresql" and not cfg.capture_mode:
            self.cluster = Cluster(cfg)
            self.accounts, self.store = self.cluster.accounts, self.cluster.store
        elif cfg.store.backend == "postgresql":  # capture mode shared by nodes (cluster/capture_store.py)
            try:
                self.capture = open_capture_store(cfg)  # the schema first: the accounts' tables are in it
            except Unavailable as e:
                raise StartupError(f"[store] dsn: {e.strerror}") from None
            # the accounts `courrier user` keeps for this config (AUTH when accept_any_auth is off, admins)
            self.accounts = PgAccounts(cfg.store.dsn, cfg.store.timeout)
            self.store = MaildirStore(cfg.data_dir)
        else:
            self.accounts = Accounts(cfg.db_path)
            self.store = MaildirStore(cfg.data_dir)
        self.quotas = Quotas(self.accounts, self.store, cfg.accounts.default_quota)  # issue 15 item 5
        if cfg.capture_mode and self.capture is None:
            self.capture = CaptureStore(cfg.data_dir, cfg.capture, db_path=cfg.db_path, hostname=cfg.hostname)
        self.connection_limits = ConnectionLimits(cfg.limits)  # one budget per protocol (issue 11, item 6)
        # one failed-login limiter for SMTP, IMAP, POP3 and HTTP: failures anywhere count everywhere
        self.auth_gate = AuthGate.from_limits(cfg.limits)
        if self.cluster is not None:  # and failures on any node count against the one budget of the cluster
            self.auth_gate.shared = self.cluster.auth_counters(self.auth_gate.limiter)
        # every TLS listener keeps this one front context; SIGHUP swaps the certificates behind it (courrier/tlsutil.py)
        self.tls = tlsutil.SNIServer(self._cert_set(cfg))
        self.tls_context = self.tls.context
        self.access_servers: dict[str, Any] = {}  # "pop3"/"imap" → its server, whose limits SIGHUP updates
        self._mx_policy: MXPolicy | None = None
        self._reloading = asyncio.Lock()
        self.listeners: list[Listener] = []
        self.smtp_servers: list[SMTPServer] = []
        self.services: list[Service] = []
        self.paused = False  # the inspector's "pause incoming" switch
        # The outbound queue (courrier/queue): spool, scheduler, local + remote delivery, DSNs.
        self.queue = outbound.build_queue(cfg, accounts=self.accounts, store=self.store,
                                          signer=lambda: self.outbound_signer)
        if self.cluster is not None:
            self.cluster.adopt_queue(self.queue)
        # DKIM hook for the mail-authentication part: full message (CRLF) → header bytes to prepend, applied
        # before the spool record is written. None: outbound mail is not signed.
        self.outbound_signer: Callable[[bytes], bytes] | None = None
        self.load_dkim_keys()  # and again on SIGHUP
        # /metrics and the status file of `courrier status`, counted from the log events (courrier/observe.py)
        # Sieve (courrier/sieve): the accounts' scripts, run at local delivery by the MX and submission roles and the
        # queue's local transport; their redirects, vacation replies and rejections go out through the queue
        self.sieve_scripts: SieveStore | None = None
        self.sieve: SieveFilter | None = None
        if not cfg.capture_mode:
            # a cluster's scripts and vacation memory are shared by the nodes (courrier/cluster/sieve_store.py)
            self.sieve_scripts = self.cluster.sieve_scripts if self.cluster is not None else SieveStore(cfg.db_path)
            self.sieve = SieveFilter(self.sieve_scripts, self.store, cfg.hostname, send=self.sieve_send)
            self.queue.transport.local.sieve = self.sieve  # type: ignore[attr-defined]
        self.observer = observe.Observer(
            cfg.data_dir, queue_size=lambda: len(self.queue.store.qids()),
            connections=lambda: {p: lim.total for p, lim in self.connection_limits.by_protocol.items()})

    # ------------------------------------------------------------------ building blocks

    def _cert_set(self, cfg: Config) -> tlsutil.CertSet:
        """``[tls]``'s pair (or the self-signed one) and every ``[tls.domains."…"]`` pair, all loaded or none."""
        cert, key = cfg.tls.cert, cfg.tls.key
        if cert is None or key is None:
            # the running hostname: a new one waits for a restart, and so does the certificate naming it
            cert, key = tlsutil.ensure_self_signed(self.data_dir / "tls", self.cfg.hostname)
        try:
            return tlsutil.CertSet((cert, key), {n: (p.cert, p.key) for n, p in cfg.tls.domains.items()})
        except tlsutil.CertError as e:
            raise StartupError(str(e)) from None

    def load_dkim_keys(self) -> None:
        """Installs the outbound DKIM signer from ``data_dir/dkim/<domain>.<selector>.key`` and ``[dkim] keys``
        (local domains only); blocking file reads, so SIGHUP runs it in a thread."""
        keys, problems = dkim_keys.load_keys(self.data_dir / "dkim", self.cfg.dkim.keys, self.cfg.dkim.selector)
        for p in problems:
            log.event("dkim.key_unusable", level="warn", problem=p)
        keys = {d: k for d, k in keys.items() if self.cfg.is_local_domain(d)}
        self.outbound_signer = dkim_keys.Signer(keys).header if keys else None
        if keys:
            log.event("dkim.keys_loaded", keys=",".join(f"{d}:{k.selector}" for d, ks in sorted(keys.items())
                                                        for k in ks))

    @functools.cached_property
    def authenticator(self) -> Authenticator:
        """SPF, DKIM and DMARC checks (courrier/mailauth), asking ``[delivery] nameservers``, within
        ``[auth] check_timeout`` per message."""
        servers = [(ns.host, ns.port) for ns in self.cfg.delivery.nameservers]
        return Authenticator(AuthResolver(servers), self.cfg.hostname, timeout=self.cfg.auth.check_timeout)

    @functools.cached_property
    def filters(self) -> filter_chain.FilterChain | None:
        """``[filter]``: DNSBL zones and spamd for the MX role (one chain, one DNSBL cache, for every listener)."""
        return filter_chain.from_config(self.cfg)

    def inbound_check(self) -> InboundCheck | None:
        """The mail-authentication step of the MX role, or None when ``[auth] checks = false``.

        One Authentication-Results header (authserv-id = hostname, LF: copies go to Maildir), forged ones claiming
        our authserv-id dropped, 550 5.7.1 for DMARC p=reject failures when ``dmarc_reject``, Junk for quarantine.
        """
        if not self.cfg.auth.checks:
            return None
        auth, hostname, dmarc_reject = self.authenticator, self.cfg.hostname, self.cfg.auth.dmarc_reject

        async def check(session: Session, env: Envelope, msg: ReceivedMessage) -> InboundVerdict:
            data = await asyncio.to_thread(msg.read_all)
            report = await auth.check_async(data, client_ip=session.peer_ip, helo=session.helo,
                                            mail_from=str(env.mail_from))
            action = report.action(dmarc_reject)
            if report.over_budget:  # one line naming the lookup that hung (none: the checks themselves overran)
                hung = f"{report.hung.rdtype} {report.hung.name}" if report.hung else "none"
                log.event("auth.timeout", level="warn", qid=env.queue_id, lookup=hung,
                          budget=f"{auth.timeout:g}s")
            log.event("auth.checked", qid=env.queue_id, ip=session.peer_ip,
                      spf=report.spf.result if report.spf else "none",
                      dkim=",".join(f"{r.result}:{r.domain}" for r in report.dkim) or "none",
                      dmarc=report.dmarc.result, header_from=report.dmarc.from_domain, action=action)
            if action == "reject":
                return InboundVerdict(reject=R.POLICY_REJECT.with_text(
                    f"DMARC policy of {report.dmarc.from_domain} rejects this message: {report.dmarc.reason}"))
            return InboundVerdict(headers=report.header(hostname, "\n").encode("utf-8"),
                                  folder="Junk" if action == "junk" else None,
                                  drop_fields=tuple(report.foreign_authres))

        return check

    def smtp_policy(self, listener: str) -> Policy:
        """The role each SMTP listener plays: capture mode, the MX role, or the submission role (MSA)."""
        if self.capture is not None and listener in ("smtp", "submission", "submissions"):
            if self._capture_policy is None:
                self._capture_policy = CapturePolicy(store=self.capture, cfg=self.cfg.capture, accounts=self.accounts)
            return self._capture_policy
        policy: Policy
        if listener == "smtp":
            policy = self._mx_policy = MXPolicy(
                domains=self.cfg.domains, accounts=self.accounts, store=self.store, inbound_check=self.inbound_check(),
                on_delivered=self.report_delivered, filters=self.filters, quotas=self.quotas,
                on_refused=self.report_refused)
            policy.sieve = self.sieve
        elif listener in ("submission", "submissions"):
            policy = self.submission_policy
        else:
            raise LookupError(listener)
        policy.pause_switch = lambda: self.paused
        return policy

    @functools.cached_property
    def submission_policy(self) -> SubmissionPolicy:
        """The MSA role, one instance for both submission listeners."""
        policy = SubmissionPolicy(
            hostname=self.cfg.hostname, domains=self.cfg.domains, accounts=self.accounts, store=self.store,
            relay=self.relay_outbound,  # remote recipients go to the outbound queue
            sent_copy=self.cfg.submission.sent_copy, spool_dir=str(self.data_dir / "spool-tmp"),
            on_delivered=self.report_delivered, quotas=self.quotas, on_refused=self.report_refused,
        )
        policy.sieve = self.sieve
        return policy

    async def sieve_send(self, sender: str, rcpts: list[str], message: bytes, why: str) -> None:
        """A Sieve redirect, vacation reply or rejection MDN into the outbound queue (DKIM-signed when a key
        applies); the queue delivers it locally or remotely like any message."""
        qid = new_queue_id()
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(self.queue.disk, self.queue.sign, message, qid)
        env = Envelope(queue_id=qid, mail_from=parse_address(sender) if sender else NULL,
                       rcpts=[Recipient(parse_address(a)) for a in rcpts],
                       body=None if body.isascii() else "8BITMIME",
                       smtputf8=not all(a.isascii() for a in [sender, *rcpts]), origin=f"sieve {why}")
        await self.queue.enqueue(env, [body])

    async def report_delivered(self, env: Envelope, hop: Hop | None, msg: ReceivedMessage,
                               delivered: list[Recipient]) -> None:
        """Success DSNs (NOTIFY=SUCCESS, RFC 3461 §5.2.3) for mail the MX and submission roles stored locally."""
        await outbound.report_delivered(self.queue, env, hop, msg, delivered)

    async def report_refused(self, env: Envelope, hop: Hop | None, msg: ReceivedMessage,
                             refused: list[Recipient], reply: Reply) -> None:
        """Failure DSNs for local recipients over quota after the 250 (roles/quota.py)."""
        await outbound.report_refused(self.queue, env, hop, msg, refused, reply)

    async def relay_outbound(self, session: Session, env: Envelope, msg: ReceivedMessage,
                             rcpts: list[Recipient]) -> Reply:
        """Hands a message for non-local recipients to the outbound queue; a 250 only once it is durable."""
        return await self.queue_outbound(env, session.hop(), msg, rcpts)

    async def queue_outbound(self, env: Envelope, hop: Hop, msg: ReceivedMessage, rcpts: list[Recipient]) -> Reply:
        """The outbound queue's intake for any receipt — an SMTP session's, or the inspector's release (a hop
        without a client): ``hop`` is what its Received: line says."""
        return await outbound.relay(self.queue, self.outbound_signer, env, hop, msg, rcpts)

    # ------------------------------------------------------------------ lifecycle

    async def _bind(self, name: str, addr: HostPort, factory: Callable[[], asyncio.Protocol],
                    ssl_ctx: ssl.SSLContext | None, description: str) -> None:
        loop = asyncio.get_running_loop()
        common = dict(ssl=ssl_ctx, backlog=1024, ssl_handshake_timeout=30 if ssl_ctx else None,
                      start_serving=False)  # serving starts once everything is bound
        socks = self.prebound.take(name, addr) if self.prebound else None
        if not socks:
            try:  # IPv6 sockets with IPV6_V6ONLY, so "0.0.0.0:25" and "[::]:25" can both be listed
                socks = bind_listening(name, addr)
            except BindFailure as e:
                raise StartupError(str(e)) from None
        for sock in socks:
            server = await loop.create_server(factory, sock=sock, **common)  # type: ignore[arg-type]
            host, port = sock.getsockname()[:2]  # "localhost" is two sockets: the banner shows each address
            self.listeners.append(Listener(name, HostPort(host, port), server, description))

    async def start_smtp(self) -> None:
        roles = {"smtp": ("MX", False), "submission": ("submission, STARTTLS", False),
                 "submissions": ("submission, implicit TLS", True)}
        for name, (desc, implicit) in roles.items():
            addrs = getattr(self.cfg.listen, name)
            if not addrs:
                continue
            try:
                policy = self.smtp_policy(name)
            except LookupError:
                continue
            if self.cfg.capture_mode:
                desc = "capture"
            smtp = SMTPServer(
                listener=name, hostname=self.cfg.hostname, policy=policy, limits=self.cfg.limits,
                limiter=self.connection_limits.for_listener(name), tls_context=self.tls_context, implicit_tls=implicit,
                trust_loopback=self.cfg.trust_loopback, spool_dir=str(self.data_dir / "spool-tmp"),
                postmaster_domain=self.cfg.domains[0],
                auth_gate=self.auth_gate,
            )
            self.smtp_servers.append(smtp)
            for addr in addrs:
                await self._bind(name, addr, smtp, self.tls_context if implicit else None, desc)

    def web_context(self) -> WebContext:
        """What the inspector may use, handed over by name (``courrier/web/context.py``); on the running loop."""
        from courrier.web.context import build_context

        capture = self.capture

        def get_paused() -> bool:
            return bool(capture.paused) if capture is not None else self.paused

        def set_paused(value: bool) -> None:
            # capture mode: the capture policy reads the store's switch; server mode: App.paused
            self.paused = value
            if capture is not None:
                capture.set_paused(value)

        return build_context(self.cfg, self.accounts, self.auth_gate, capture=capture, mail_store=self.store,
                             get_paused=get_paused, set_paused=set_paused, outbound=self.queue_outbound,
                             observer=self.observer,
                             queue_store=self.cluster.history if self.cluster is not None else None)

    async def start_http(self) -> None:
        """The inspector (web UI + Mailpit-compatible API, courrier/web) in this same event loop."""
        if self.cfg.listen.http:
            from courrier.web.server import start_http
            self.services.append(await start_http(self.cfg, self.web_context, self.prebound))

    async def start_access(self) -> None:
        """POP3 and IMAP (courrier/access) over the Maildir store: plain + STLS/STARTTLS, and implicit TLS."""
        from courrier.access.auth import Authenticator as AccessAuth
        from courrier.access.imap.session import IMAPServer
        from courrier.access.pop3.protocol import POP3Server
        from courrier.net.listener import StreamListener

        lst = self.cfg.listen
        if not (lst.pop3 or lst.pop3s or lst.imap or lst.imaps):
            return
        auth = AccessAuth(self.cfg, self.accounts, self.store, self.auth_gate)
        pop3 = POP3Server(store=self.store, auth=auth, tls_context=self.tls_context,
                          idle_timeout=self.cfg.limits.idle_timeout)
        imap = IMAPServer(store=self.store, auth=auth, tls_context=self.tls_context, limits=self.cfg.limits,
                          hostname=self.cfg.hostname, quotas=None if self.cfg.capture_mode else self.quotas)
        self.access_servers.update(pop3=pop3, imap=imap)
        roles = (("pop3", pop3, False, "POP3, STLS"), ("pop3s", pop3, True, "POP3, implicit TLS"),
                 ("imap", imap, False, "IMAP4rev1, STARTTLS"), ("imaps", imap, True, "IMAP4rev1, implicit TLS"))
        for name, server, implicit, desc in roles:
            addrs = getattr(lst, name)
            if not addrs:
                continue
            # A POP3 client never sends more than an 8 KiB line (AUTH, RFC 5034 §4), so its read buffer stays that
            # small; IMAP needs room for literals after login and bounds itself before it (access/imap/session.py).
            line_limit = 2 * POP3_MAX_LINE if server is pop3 else 1 << 20
            listener = StreamListener(name, server.handler(implicit), self.connection_limits.for_listener(name),
                                      line_limit=line_limit)
            self.services.append(Service(name, listener.shutdown))
            for addr in addrs:
                await self._bind(name, addr, listener.factory, self.tls_context if implicit else None, desc)

    async def start_managesieve(self) -> None:
        """ManageSieve (RFC 5804, courrier/access/managesieve): the accounts' Sieve scripts; STARTTLS, AUTH through
        the shared gate. Not in capture mode (no accounts' delivery to filter)."""
        if not self.cfg.listen.managesieve or self.sieve_scripts is None:
            return
        from courrier.access.auth import Authenticator as AccessAuth
        from courrier.access.managesieve.commands import MAX_LINE
        from courrier.access.managesieve.protocol import ManageSieveServer
        from courrier.net.listener import StreamListener

        auth = AccessAuth(self.cfg, self.accounts, self.store, self.auth_gate)
        server = ManageSieveServer(scripts=self.sieve_scripts, auth=auth, tls_context=self.tls_context,
                                   idle_timeout=self.cfg.limits.idle_timeout, hostname=self.cfg.hostname)
        self.access_servers["managesieve"] = server
        listener = StreamListener("managesieve", server.handler(False),
                                  self.connection_limits.for_listener("managesieve"), line_limit=2 * MAX_LINE)
        self.services.append(Service("managesieve", listener.shutdown))
        for addr in self.cfg.listen.managesieve:
            await self._bind("managesieve", addr, listener.factory, None, "ManageSieve, STARTTLS")

    async def start(self) -> None:
        """Binds every listener first (a taken port fails before anything else starts), then starts the stores and
        the queue, then serves."""
        try:
            recover = getattr(self.store, "recover", None)  # the delivery journal, before anything listens
            if recover is not None:
                await asyncio.to_thread(recover)
            await self.start_smtp()
            await self.start_access()
            await self.start_managesieve()
            if self.cluster is not None:  # the node's name, before serving: a second live node with it is refused
                await self.cluster.start()
                self.services.append(Service("cluster", self.cluster.stop, self.cluster.banner))
            if self.capture is not None:
                await self.capture.start()
                self.services.append(Service("capture", self.capture.aclose))
            await self.queue.start()
            self.services.append(Service("queue", self.queue.stop))
            await self.start_http()
            if self.prebound:
                self.prebound.close_unused()
            for lst in self.listeners:
                await lst.server.start_serving()
        except BaseException:
            await self.stop()
            raise

    def banner(self) -> str:
        lines = [f"courrier {self._version()} — {'capture mode' if self.cfg.capture_mode else 'mail server'}"
                 f" for {', '.join(self.cfg.domains)} (hostname {self.cfg.hostname})"]
        for lst in self.listeners:
            lines.append(f"  {lst.name:<12} {str(lst.address):<22} {lst.description}")
        for svc in self.services:
            lines += [f"  {b}" for b in svc.banner]
        lines.append(f"  data dir     {self.data_dir}")
        if not self.cfg.capture_mode and self.accounts.count() == 0:
            cfg_flag = f" --config {self.cfg.source}" if self.cfg.source else f" --data {self.data_dir}"
            lines.append(f"  no accounts yet: add one with `courrier user add you@{self.cfg.domains[0]}{cfg_flag}`")
        return "\n".join(lines)

    @staticmethod
    def _version() -> str:
        from courrier import __version__
        return __version__

    async def run(self) -> None:
        """Starts everything, waits for SIGINT/SIGTERM, shuts down gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        await self.start()
        print(self.banner(), flush=True)
        self.observer.start({"version": self._version(), "mode": self.cfg.mode, "hostname": self.cfg.hostname,
                             "listeners": [[lst.name, str(lst.address), lst.description] for lst in self.listeners]
                             + [["http", str(a), "web UI + API"] for a in self.cfg.listen.http]})
        log.event("server.started", listeners=len(self.listeners), data_dir=str(self.data_dir))
        status = asyncio.ensure_future(self._status_loop())
        await stop.wait()
        status.cancel()
        log.event("server.stopping")
        await self.stop()
        log.event("server.stopped")
        self.observer.stop()

    # ------------------------------------------------------------------ SIGHUP

    async def reload(self) -> None:
        """SIGHUP: reads the configuration and every certificate again and applies what is safe to change while
        running (the settings marked ``reload`` in courrier/config.py: certificates, DKIM keys, limits, filters),
        drops the accounts cache, and says in one line what changed and which changed keys wait for a restart.
        Everything is read before anything is applied: a bad file or certificate keeps the running configuration
        whole and is one error line."""
        async with self._reloading:  # two quick SIGHUPs: the second reads after the first has applied
            try:
                await self._reload()
            except Exception as e:  # a signal handler's task: nothing else would ever report it
                log.event("server.reload_failed", level="error", error=repr(e))

    async def _reload(self) -> None:
        try:
            new = await asyncio.to_thread(config.load_again, self.cfg)
            certs = await asyncio.to_thread(self._cert_set, new)
        except (ConfigError, StartupError) as e:
            log.event("server.reload_failed", level="error", error=str(e), kept="running configuration")
            return
        live, restart = config.changed_keys(self.cfg, new)
        self.cfg = config.with_values_of(new, self.cfg, live)
        self.tls.install(certs)  # new handshakes only; established sessions keep what they negotiated
        self._apply_limits()
        if any(k.startswith("filter.") for k in live):
            self.__dict__["filters"] = filter_chain.from_config(self.cfg)  # replaces the cached_property
            if self._mx_policy is not None:
                self._mx_policy.filters = self.filters
        self.accounts.drop_cache()
        await asyncio.to_thread(self.load_dkim_keys)
        log.event("server.reloaded", applied=",".join(live) or "none", restart_needed=",".join(restart) or "none",
                  certificates=1 + len(certs.by_name))

    def _apply_limits(self) -> None:
        """``[limits]``: new sessions read the new values; sessions already open keep theirs."""
        limits = self.cfg.limits
        for smtp in self.smtp_servers:
            smtp.limits = limits
        for lim in self.connection_limits.by_protocol.values():
            lim.max_total, lim.max_per_client = limits.max_connections, limits.max_connections_per_ip
        if "imap" in self.access_servers:
            self.access_servers["imap"].limits = limits
            self.access_servers["pop3"].idle_timeout = max(limits.idle_timeout, 600.0)  # RFC 1939 §3, as POP3Server
        if "managesieve" in self.access_servers:
            self.access_servers["managesieve"].idle_timeout = limits.idle_timeout

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(observe.STATUS_EVERY)
            self.observer.write_status()

    async def stop(self) -> None:
        for lst in self.listeners:
            lst.server.close()
        await asyncio.gather(*(s.shutdown() for s in self.smtp_servers))
        for svc in reversed(self.services):
            try:
                await svc.stop()
            except Exception as e:  # one failing service must not keep the others open
                log.event("server.stop_failed", level="error", service=svc.name, error=repr(e))
        self.listeners.clear()
        self.store.close()
        if self.capture is not None:
            self.capture.close()


def install_uvloop() -> bool:
    """Uses uvloop's event loop when it is installed (faster protocol handling)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def serve(cfg: Config) -> None:
    install_uvloop()
    try:  # root with `user` set: bind everything, then become that user before anything else is built
        prebound = privileges.prepare_serve(cfg)
    except privileges.PrivilegeError as e:
        raise StartupError(str(e)) from None
    except OSError as e:
        raise StartupError(f"cannot switch to user {cfg.user}: {e.strerror or e}") from None

    async def main() -> None:
        app = App(cfg, prebound)
        await app.run()

    asyncio.run(main())

