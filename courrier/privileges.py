"""Ports and privileges: started as root, bind every listener, take over ``data_dir``, then become ``user`` for good.

A mail server needs root for one thing only: ports below 1024 (25, 465, 587, 110, 995, 143, 993, 443). Everything
after that — parsing hostile mail, TLS, SQLite, the web UI — runs as an ordinary user, so a bug in any of it cannot
write outside ``data_dir``. The order matters, as in Postfix's ``master``/``smtpd`` split and Dovecot's
``login_user``:

1. ``check_start``: with ``user`` set, the process must be root (then it drops) or already that user (systemd
   ``User=`` with ``AmbientCapabilities=CAP_NET_BIND_SERVICE``). Any other user, ``user = "root"`` or a user that
   does not exist is refused in one line naming it.
2. ``bind_all``: every configured listener address is bound while still root (``Prebound``); the application later
   serves on these sockets instead of binding its own.
3. ``take_over``: ``data_dir`` and everything in it are given to the user (files a root CLI or an older version
   made). Symbolic links are never followed and a file with several hard links that the user does not own already is
   left alone: a user who could plant a hard link to ``/etc/shadow`` in its data dir must not get it chowned.
4. ``drop``: ``initgroups`` (the user's supplementary groups, e.g. ``ssl-cert`` for a key in /etc/ssl/private),
   ``setresgid``, ``setresuid`` — real, effective and saved ids alike, so the change cannot be undone; children
   (the disk-writer process) inherit it. Then it checks that root is really gone.
5. ``unreachable``: as the user, what the server still needs to read — the interpreter, the standard library, the
   installed packages, ``data_dir``, the certificate — is checked, so "a venv under a 0700 home" is one line at
   start instead of an ImportError at the first IMAP login.

A root CLI (``courrier user add`` …) drops to the same user before it touches ``data_dir`` (``as_configured_user``),
so no file there is ever owned by root.
"""

from __future__ import annotations

import errno
import os
import pwd
import socket
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from courrier import log
from courrier.config import LISTENER_NAMES, Config, HostPort
from courrier.net.bind import BindFailure, bind_listening


class PrivilegeError(Exception):
    """A one-line reason the process cannot run as configured (unknown user, wrong starting user…)."""


@dataclass(frozen=True)
class Identity:
    name: str
    uid: int
    gid: int


def lookup(name: str, source: str | None = None) -> Identity:
    """The account ``user`` names; PrivilegeError naming it (and the config file) when it does not exist."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        where = f" (user in {source})" if source else ""
        raise PrivilegeError(f"user {name!r}{where} does not exist: create it (useradd --system {name}) "
                             f"or change `user`") from None
    return Identity(pw.pw_name, pw.pw_uid, pw.pw_gid)


def current_user() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_start(cfg: Config) -> Identity | None:
    """The identity to drop to, or None when the process already runs as it should (no ``user``, or started as
    ``user`` itself). Raises PrivilegeError for every other case."""
    if not cfg.user:
        return None
    ident = lookup(cfg.user, cfg.source)
    if ident.uid == 0:
        raise PrivilegeError(f"user = {cfg.user!r} is root: name an unprivileged user (courrier refuses to keep "
                             "running as root)")
    euid = os.geteuid()
    if euid == 0:
        return ident
    if euid == ident.uid:
        return None
    raise PrivilegeError(f"started as {current_user()!r} but user = {cfg.user!r}: start courrier as root (it binds "
                         f"the ports, then becomes {cfg.user}) or as {cfg.user}")


# --------------------------------------------------------------------------- binding while root


def _bind_one(name: str, addr: HostPort) -> list[socket.socket]:
    """Every address ``addr.host`` stands for, bound and listening (courrier/net/bind.py)."""
    try:
        return bind_listening(name, addr)
    except BindFailure as e:
        raise PrivilegeError(str(e)) from None


@dataclass
class Prebound:
    """Listening sockets bound before the privilege drop, handed out once each by address."""

    sockets: dict[tuple[str, HostPort], list[socket.socket]] = field(default_factory=dict)

    def take(self, name: str, addr: HostPort) -> list[socket.socket] | None:
        return self.sockets.pop((name, addr), None)

    def close_unused(self) -> None:
        """Closes what no listener took (a listener the mode does not run), so no port stays open unserved."""
        for socks in self.sockets.values():
            for s in socks:
                s.close()
        self.sockets.clear()


def bind_all(cfg: Config) -> Prebound:
    pre = Prebound()
    try:
        for name in LISTENER_NAMES:
            for addr in getattr(cfg.listen, name, ()):
                pre.sockets[(name, addr)] = _bind_one(name, addr)
    except BaseException:
        pre.close_unused()
        raise
    return pre


# --------------------------------------------------------------------------- data_dir and the drop


def take_over(data_dir: Path, ident: Identity, *, skip: tuple[str, ...] = ()) -> int:
    """Creates ``data_dir`` when missing and gives it and everything below (but the top-level entries named in
    ``skip``) to ``ident``; returns how many entries changed owner. Never follows a symbolic link; skips a
    multiply-linked file it would have to take from someone else (see the module docstring)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = 0

    def give(path: str, directory: bool) -> None:
        nonlocal changed
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_DIRECTORY if directory else 0)
        try:
            fd = os.open(path, flags)
        except OSError as e:  # a symlink (ELOOP), a socket or fifo we cannot open, or gone meanwhile
            if e.errno not in (errno.ELOOP, errno.ENOENT, errno.ENXIO, errno.ENOTDIR):
                log.event("privileges.takeover_skipped", level="warn", path=path, error=e.strerror)
            return
        try:
            st = os.fstat(fd)
            if (st.st_uid, st.st_gid) == (ident.uid, ident.gid):
                return
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and st.st_uid != ident.uid:
                log.event("privileges.takeover_skipped", level="warn", path=path, reason="hard-linked file")
                return
            os.fchown(fd, ident.uid, ident.gid)
            changed += 1
        finally:
            os.close(fd)

    give(str(data_dir), True)
    for top, dirs, files in os.walk(data_dir):  # os.walk does not descend into symlinked directories
        if top == str(data_dir):
            dirs[:] = [d for d in dirs if d not in skip]
        for d in dirs:
            give(os.path.join(top, d), True)
        for f in files:
            give(os.path.join(top, f), False)
    return changed


def drop(ident: Identity) -> None:
    """Becomes ``ident`` for good (groups first: after setuid they could no longer be changed)."""
    os.initgroups(ident.name, ident.gid)
    os.setresgid(ident.gid, ident.gid, ident.gid)
    os.setresuid(ident.uid, ident.uid, ident.uid)
    if 0 in (*os.getresuid(), *os.getresgid()):
        raise PrivilegeError(f"still running as root after switching to {ident.name}: refusing to continue")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise PrivilegeError(f"could switch back to root after becoming {ident.name}: refusing to continue")
    os.environ["HOME"] = pwd.getpwuid(ident.uid).pw_dir or "/"
    os.environ["USER"] = os.environ["LOGNAME"] = ident.name


def _reach(path: Path | str, mode: int) -> bool:
    return os.access(path, mode)


def _data_dir_problem(data_dir: Path, who: str) -> str | None:
    """Whether ``who`` (the current identity) can use ``data_dir``, or — when it does not exist yet — reach the
    place it will be made in. ``os.access`` throughout: it never raises, and a directory above that cannot be
    searched makes everything below look absent, which is what this must find."""
    if os.access(data_dir, os.F_OK):
        if os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
            return None
    else:
        p = data_dir
        while not os.access(p, os.F_OK) and p.parent != p:
            p = p.parent
        if p == data_dir.parent and os.access(p, os.X_OK):
            return None  # serve (root) makes it and gives it to the user
        if p != data_dir.parent and os.access(p, os.X_OK):
            return f"the directories above data_dir {data_dir} do not exist: create them (mode 0755)"
    return (f"user {who} cannot read and write data_dir {data_dir} (check the permissions of it and of every "
            "directory above it)")


def unreachable(cfg: Config) -> list[str]:
    """What the *current* identity cannot reach of what the server needs, one line each (empty: all fine)."""
    import courrier

    who = current_user()
    problems = []
    if not _reach(sys.executable, os.X_OK):
        problems.append(f"user {who} cannot run the interpreter {sys.executable} (a virtualenv or pyenv under a "
                        "0700 home directory is the usual cause: install courrier where every user can read it)")
    libs = {"the standard library": Path(os.__file__).parent, "the courrier package": Path(courrier.__file__).parent}
    for mod in ("click", "dns", "cryptography", "uvicorn"):
        m = sys.modules.get(mod)
        if m is not None and getattr(m, "__file__", None):
            libs[f"the {mod} package"] = Path(m.__file__).parent  # type: ignore[arg-type]
    for what, p in libs.items():
        if not _reach(p, os.R_OK | os.X_OK):
            problems.append(f"user {who} cannot read {what} in {p}")
    problem = _data_dir_problem(cfg.data_dir, who)
    if problem:
        problems.append(problem)
    pairs = [("certificate", cfg.tls.cert), ("key", cfg.tls.key)]
    for name, pair in cfg.tls.domains.items():
        pairs += [(f"certificate of {name}", pair.cert), (f"key of {name}", pair.key)]
    for what, p in pairs:
        if p is not None and not _reach(p, os.R_OK):
            problems.append(f"user {who} cannot read the TLS {what} {p} (make it readable by {who}, e.g. group "
                            "ssl-cert, or copy it with a renewal hook)")
    return problems


def prepare_serve(cfg: Config) -> Prebound | None:
    """``serve``'s start as root: bind, take over ``data_dir``, drop, check reachability. None: nothing to do."""
    ident = check_start(cfg)
    if ident is None:
        if cfg.user:
            problems = unreachable(cfg)
            if problems:
                raise PrivilegeError(problems[0])
        return None
    pre = bind_all(cfg)
    try:
        changed = take_over(cfg.data_dir, ident)
        drop(ident)
        problems = unreachable(cfg)
        if problems:
            raise PrivilegeError(problems[0])
    except BaseException:
        pre.close_unused()
        raise
    log.event("server.privileges", user=ident.name, uid=ident.uid, gid=ident.gid,
              groups=",".join(str(g) for g in os.getgroups()), taken_over=changed)
    return pre


def as_configured_user(cfg: Config) -> None:
    """A CLI command started as root with ``user`` set does its work as that user (files it makes in ``data_dir``
    belong to the server). The mail itself (``mail/``, ``capture/``: maybe millions of files) is left to ``serve``,
    which takes over everything at start; the database, queue and keys are taken over here."""
    if not cfg.user or os.geteuid() != 0:
        return
    ident = check_start(cfg)
    if ident is None:
        return
    take_over(cfg.data_dir, ident, skip=("mail", "capture"))
    drop(ident)
    problems = unreachable(cfg)
    if problems:
        raise PrivilegeError(problems[0])

