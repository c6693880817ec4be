import ast
import os
from functools import cache
from pathlib import Path

import pytest

os.environ.setdefault("COURRIER_ARGON2_PROFILE", "cheapest")

# Calls that make a non-capture `courrier serve` (tests/support.py's Server, directly or through a helper); a call
# with capture=True or serve_args naming --capture makes a capture server, which keeps the local store.
_SERVER_CALLS = {"Server", "server_factory", "msa", "server_with_corpus", "make_receiver", "make_sender"}


def _server_call(node: ast.AST) -> bool:
    """A call of a server maker that does not ask for capture mode (capture keeps the local store)."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    if name not in _SERVER_CALLS:
        return False
    kw = {k.arg: k.value for k in node.keywords}
    if isinstance(kw.get("capture"), ast.Constant) and kw["capture"].value is True:
        return False
    return not ("serve_args" in kw and "--capture" in ast.unparse(kw["serve_args"]))


@cache
def _store_makers(path: Path) -> frozenset[str]:
    """The module's functions (tests, fixtures, helpers) that make a non-capture server, directly or through another
    of them; empty for a module that starts its own PostgreSQL nodes (tests/cluster, test_94: one store by nature)."""
    tree = ast.parse(path.read_text())
    if any(isinstance(n, ast.Name) and n.id == "pg_cluster" for n in ast.walk(tree)):
        return frozenset()
    if any(isinstance(n, ast.ClassDef) and n.name == "Server" for n in ast.walk(tree)):
        return frozenset()  # its own in-process Server (tests/access/test_imap_condstore.py), on the local store
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    calls = {name: {c.func.id for c in ast.walk(f) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
             for name, f in funcs.items()}
    makers = {name for name, f in funcs.items() if any(_server_call(n) for n in ast.walk(f))}
    while True:  # helpers of helpers
        more = {name for name, called in calls.items() if called & makers} - makers
        if not more:
            return frozenset(makers)
        makers |= more


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that makes a non-capture server (itself or through a fixture or helper of its module) gets a
    ``server_store`` parameter, "local" and "postgresql" (ids ``[local]``/``[postgresql]``), unless it is marked
    ``local_store(reason)``. COURRIER_TEST_STORE=NAME keeps one of the two. The parameter is module-scoped: a module's
    fixture that makes a server takes ``server_store`` as an argument, so that it is made again for the second
    store. (Not named ``store``: tests/mailbox and tests/capture have fixtures of that name.)"""
    if "server_store" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("local_store"):
        return
    makers = _store_makers(Path(metafunc.module.__file__))
    if metafunc.function.__name__ not in makers and not makers & set(metafunc.fixturenames):
        return
    from tests.support import STORES

    only = os.environ.get("COURRIER_TEST_STORE")
    metafunc.parametrize("server_store", [only] if only in STORES else list(STORES), indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def server_store(request: pytest.FixtureRequest):
    """The store of the servers the module's tests make (tests/support.py reads it). A postgresql variant that made
    no PostgreSQL server fails: it was parametrised for nothing, or a module fixture making a server lacks the
    ``server_store`` argument and served the local variant's server again."""
    from tests.support import CURRENT

    name = getattr(request, "param", "local")
    CURRENT["store"], made = name, CURRENT["made"]
    yield name
    CURRENT["store"] = "local"
    if name == "postgresql" and CURRENT["made"] == made:
        pytest.fail(f"{request.node.nodeid}: its postgresql variant made no PostgreSQL server (mark it "
                    "local_store(reason), or give the module fixture that makes the server a `server_store` argument)",
                    pytrace=False)


@pytest.fixture
def server_factory(tmp_path):
    """Builds ``support.Server`` instances in their own folders; stops them all at the end of the test."""
    from tests.support import Server

    made: list[Server] = []

    def make(name: str = "srv", **kw):
        d = tmp_path / name
        d.mkdir()
        s = Server(d, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
