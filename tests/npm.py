"""Real npm clients for the tests: a package installed once with npm into ``.venv/npm/NAME-VERSION`` (beside the
project's own virtualenv, removed with it by ``make clean``), then run with Node from a small CommonJS script.

    pkg = npm_package("mailpit-api", "2.1.0")      # → …/node_modules/mailpit-api
    out = run_node("const {MailpitClient} = require(PKG); …", pkg)   # stdout of the script (PKG: its path)
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(sys.prefix) / "npm"  # the venv running the tests


def npm_package(name: str, version: str, timeout: float = 300) -> Path:
    """The installed package directory; installs it (pinned version, no scripts) when it is not there yet."""
    where = ROOT / f"{name.replace('/', '_')}-{version}"
    pkg = where / "node_modules" / name
    if not (pkg / "package.json").exists():
        where.mkdir(parents=True, exist_ok=True)
        with open(where / ".lock", "w") as lock:  # parallel test workers (pytest-xdist) install it once
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (pkg / "package.json").exists():
                subprocess.run(["npm", "install", "--prefix", str(where), "--no-audit", "--no-fund",
                                "--ignore-scripts", "--silent", f"{name}@{version}"], check=True, timeout=timeout)
    return pkg


def run_node(script: str, pkg: Path, timeout: float = 120) -> str:
    """Runs ``script`` with ``PKG`` bound to the package path; a failing script fails the test with its stderr."""
    code = f"const PKG = {json.dumps(str(pkg))};\n{script}"
    p = subprocess.run(["node", "-e", code], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"node exited {p.returncode}:\n{p.stderr[-3000:]}"
    return p.stdout
