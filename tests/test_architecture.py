"""The import structure follows the layer order written in docs/architecture.md.

Every import between courrier's packages and top-level modules (function-local imports included, since those are
how cycles hide) must point to the same layer or a lower one, and the graph must have no cycle. The order is read
from the table in docs/architecture.md, so the document and the code cannot drift apart: a new package fails this
test until the document places it.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "courrier"
DOC = ROOT / "docs" / "architecture.md"


def layer_order() -> dict[str, int]:
    """Unit → layer, from the rows `| N | `unit`, `unit` | … |` of the document's layer table."""
    layers: dict[str, int] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if match:
            for unit in re.findall(r"`([\w.]+)`", match.group(2)):
                layers[unit] = int(match.group(1))
    return layers


def unit_of(module: str) -> str:
    """`courrier.smtp.protocol` → `smtp`; `courrier.config` → `config`; `courrier` → `courrier`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """Absolute names of the courrier modules a file imports, with line numbers (relative imports resolved)."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # `from . import x`: x may be a sub-package
                    found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
                    continue
            else:
                target = node.module or ""
            found.append((target, node.lineno))
    return [(name, line) for name, line in found if name == "courrier" or name.startswith("courrier.")]


def edges() -> dict[tuple[str, str], list[str]]:
    """(from unit, to unit) → where: every import that crosses a unit boundary."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        source = unit_of(module_name(path))
        for target, line in imported_modules(path):
            dest = unit_of(target)
            if dest != source and dest != "courrier":
                found[(source, dest)].append(f"{path.relative_to(ROOT)}:{line}")
    return found


def units() -> set[str]:
    return {unit_of(module_name(path)) for path in PACKAGE.rglob("*.py")} - {"courrier"}


def test_the_document_places_every_package_and_module():
    missing = sorted(units() - set(layer_order()))
    assert not missing, f"add these to the layer table of docs/architecture.md: {missing}"


def test_the_document_names_nothing_that_is_gone():
    gone = sorted(set(layer_order()) - units())
    assert not gone, f"docs/architecture.md names units that no longer exist: {gone}"


def test_no_import_goes_up_the_layers():
    layers = layer_order()
    upward = [
        f"{a} (layer {layers[a]}) imports {b} (layer {layers[b]}) at {', '.join(where)}"
        for (a, b), where in sorted(edges().items())
        if a in layers and b in layers and layers[b] > layers[a]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_units():
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges():
        graph[a].add(b)
    cycles = []
    # Tarjan-free check: a cycle exists between a and b when each reaches the other.
    def reach(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in graph.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen
    reachable = {unit: reach(unit) for unit in list(graph)}
    for (a, b), where in sorted(edges().items()):
        if a in reachable.get(b, set()):
            cycles.append(f"{a} -> {b} ({where[0]}) closes a cycle")
    assert not cycles, "\n".join(cycles)


def test_the_walker_sees_function_local_and_relative_imports(tmp_path):
    """The check itself: imports inside functions, relative ones and `from . import x` are all found."""
    package = tmp_path / "courrier" / "smtp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    sample = package / "protocol.py"
    sample.write_text(
        "import courrier.config\n"
        "from .replies import Reply\n"
        "def late():\n"
        "    from ..queue import runner\n"
        "    from .. import delivery\n"
    )
    found = {name for name, _ in imported_modules(sample, tmp_path)}
    assert found == {"courrier.config", "courrier.smtp.replies", "courrier.queue", "courrier.delivery"}
    assert {unit_of(name) for name in found} == {"config", "smtp", "queue", "delivery"}
