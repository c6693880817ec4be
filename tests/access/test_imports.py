"""The IMAP command modules import what they share with the session (states, ``TaggedResult``, ``Selected``) from
the leaf ``access/imap/state.py`` at top level: none imports the session module back from inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import courrier.access.imap

IMAP = Path(courrier.access.imap.__file__).resolve().parent
SESSION = "courrier.access.imap.session"
STATE = "courrier.access.imap.state"


def local_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of the imports inside a function body."""
    out: list[tuple[int, str]] = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.module:
                    out.append((node.lineno, node.module))
                elif isinstance(node, ast.Import):
                    out += [(node.lineno, a.name) for a in node.names]
    return out


def command_modules() -> list[Path]:
    mods = sorted(IMAP.glob("cmd_*.py"))
    assert len(mods) >= 4
    return mods


def test_no_command_module_imports_the_session_inside_a_function():
    offenders = [f"{p.name}:{line}" for p in command_modules()
                 for line, mod in local_imports(ast.parse(p.read_text(encoding="utf-8")))
                 if mod in (SESSION, "courrier.access.imap") or mod.startswith(SESSION + ".")]
    assert offenders == []


def test_state_is_a_leaf_of_the_imap_package():
    tree = ast.parse((IMAP / "state.py").read_text(encoding="utf-8"))
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.startswith("courrier.access") for m in mods)


def test_shared_names_come_from_state():
    from courrier.access.imap import session, state

    for name in ("NOT_AUTH", "AUTH", "SELECTED", "LOGOUT", "TaggedResult", "Selected", "LineTooLong"):
        assert getattr(session, name) is getattr(state, name)
