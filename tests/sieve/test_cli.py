"""``courrier sieve list|put|get|activate|del``: one-line errors, syntax errors refused with line and reason."""

from __future__ import annotations

from tests.support import run_cli

GOOD = 'require "fileinto";\nif header :contains "subject" "x" { fileinto "X"; }\n'


def test_sieve_cli(tmp_path):
    data = str(tmp_path / "data")
    run_cli("user", "add", "me@example.test", "--password-stdin", "--data", data, input="secret\n")
    (tmp_path / "good.sieve").write_text(GOOD)
    (tmp_path / "bad.sieve").write_text('require "fileinto";\n\nfrobnicate;\n')
    out = run_cli("sieve", "put", "me@example.test", "main", str(tmp_path / "good.sieve"), "--activate", "--data", data)
    assert out.stdout.strip() == "stored main for me@example.test (active)"
    bad = run_cli("sieve", "put", "me@example.test", "bad", str(tmp_path / "bad.sieve"), "--data", data, check=False)
    assert bad.returncode == 1 and bad.stderr == f"courrier: {tmp_path / 'bad.sieve'}: line 3: unknown command " \
        "'frobnicate'\n"
    assert run_cli("sieve", "list", "me@example.test", "--data", data).stdout == "main\t72\tactive\n"
    assert run_cli("sieve", "get", "me@example.test", "main", "--data", data).stdout == GOOD
    nobody = run_cli("sieve", "list", "nobody@example.test", "--data", data, check=False)
    assert nobody.returncode == 1 and nobody.stderr == "courrier: no account nobody@example.test\n"
    missing = run_cli("sieve", "activate", "me@example.test", "nope", "--data", data, check=False)
    assert missing.returncode == 1 and missing.stderr == "courrier: no script named 'nope'\n"
    assert run_cli("sieve", "activate", "me@example.test", "--data", data).stdout.strip().endswith("(none)")
    assert run_cli("sieve", "del", "me@example.test", "main", "--data", data).returncode == 0
    assert run_cli("sieve", "list", "me@example.test", "--data", data).stdout == ""
    assert "activate" in run_cli("sieve", "--help").stdout
