"""The web layer (layer 9) never imports the composition root (layer 10): the App hands it a ``WebContext``.

Walks every import statement of ``courrier/web`` — at top level, under ``TYPE_CHECKING`` and inside functions — so
a lazy import cannot hide the web↔app cycle again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import courrier.web

WEB = Path(courrier.web.__file__).resolve().parent


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file; ``from courrier import app`` counts as ``courrier.app``."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def test_no_web_module_imports_the_app():
    offenders = [f"{p.relative_to(WEB.parent)}:{line} imports {mod}"
                 for p in sorted(WEB.rglob("*.py")) for line, mod in imported_modules(p)
                 if mod == "courrier.app" or mod.startswith("courrier.app.")]
    assert offenders == []


def test_the_walk_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from courrier import app\n    import courrier.app.x\n")
    assert {m for _, m in imported_modules(f)} >= {"courrier.app", "courrier.app.x"}
