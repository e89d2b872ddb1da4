"""Baselines: record today's findings, then fail only on new ones; matching survives line shifts."""

from __future__ import annotations

import json
from pathlib import Path

from eqxlint.suppress import baseline
from eqxlint.core.diagnostics import Diagnostic

MOD = '''import jax


@jax.jit
def step(x):
    print(x)
    print(x)
    return x


@jax.jit
def other(y):
    print("y", y)
    return y
'''


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(MOD)
    return tmp_path


def _codes(stdout: str) -> list:
    return [l.split(": ")[1].split()[0] for l in stdout.splitlines() if l.startswith("pkg/")]


def test_write_then_check_reports_nothing_then_only_new(run_cli, tmp_path):
    _repo(tmp_path)
    (tmp_path / "ci").mkdir()
    r = run_cli("check", "--no-cache", "--write-baseline", "ci/baseline.json", "pkg")
    assert r.returncode == 0, r.stderr
    assert "wrote 3 finding(s)" in r.stderr
    doc = json.loads((tmp_path / "ci" / "baseline.json").read_text())
    assert doc["findings"] == [
        {"code": "EQX209", "context": "other", "count": 1, "file": "../pkg/mod.py", "line": 'print("y", y)'},
        {"code": "EQX209", "context": "step", "count": 2, "file": "../pkg/mod.py", "line": "print(x)"},
    ]
    r = run_cli("check", "--no-cache", "--baseline", "ci/baseline.json", "pkg")
    assert r.returncode == 0, r.stdout
    assert "All checks passed!" in r.stdout

    # Unrelated edits shift every line: still nothing new.
    mod = tmp_path / "pkg" / "mod.py"
    mod.write_text('"""Docstring."""\n# a comment\n\n' + MOD.replace("def step(x):", "def step(x):\n    x = x + 1"))
    r = run_cli("check", "--no-cache", "--baseline", "ci/baseline.json", "pkg")
    assert r.returncode == 0, r.stdout

    # A third identical print in `step` is new (counts), and so is one in a new function.
    mod.write_text(MOD.replace("    return x\n", "    print(x)\n    return x\n", 1)
                   + "\n\n@jax.jit\ndef third(z):\n    print(z)\n    return z\n")
    r = run_cli("check", "--no-cache", "--baseline", "ci/baseline.json", "pkg")
    assert r.returncode == 1
    assert _codes(r.stdout) == ["EQX209", "EQX209"]
    assert "pkg/mod.py:8:5:" in r.stdout and "pkg/mod.py:20:5:" in r.stdout

    # The baseline is path-stable: the same answer from another working directory.
    r2 = run_cli("check", "--no-cache", "--baseline", str(tmp_path / "ci" / "baseline.json"), str(tmp_path / "pkg"),
                 cwd=tmp_path / "ci")
    assert r2.returncode == 1 and len([l for l in r2.stdout.splitlines() if "EQX209" in l]) == 2


def test_rewrite_is_stable_and_fixed_findings_drop_out(run_cli, tmp_path):
    _repo(tmp_path)
    run_cli("check", "--no-cache", "--write-baseline", "b.json", "pkg")
    first = (tmp_path / "b.json").read_bytes()
    run_cli("check", "--no-cache", "--write-baseline", "b.json", "pkg")
    assert (tmp_path / "b.json").read_bytes() == first
    assert first.endswith(b"\n")
    mod = tmp_path / "pkg" / "mod.py"
    mod.write_text(MOD.replace('    print("y", y)\n', ""))
    r = run_cli("check", "--no-cache", "--write-baseline", "b.json", "pkg")
    assert "wrote 2 finding(s)" in r.stderr
    doc = json.loads((tmp_path / "b.json").read_text())
    assert [e["context"] for e in doc["findings"]] == ["step"]


def test_missing_or_broken_baseline_is_a_usage_error(run_cli, tmp_path):
    _repo(tmp_path)
    r = run_cli("check", "--no-cache", "--baseline", "nope.json", "pkg")
    assert r.returncode == 2 and "does not exist" in r.stderr
    (tmp_path / "bad.json").write_text("{")
    r = run_cli("check", "--no-cache", "--baseline", "bad.json", "pkg")
    assert r.returncode == 2 and "cannot read baseline" in r.stderr


def test_filter_new_api(tmp_path):
    def diag(row, line, ctx="f"):
        return Diagnostic("EQX209", "m", str(tmp_path / "a.py"), row, 1, row, 2, context=ctx, line_text=line)

    b = tmp_path / "b.json"
    assert baseline.write(b, [diag(3, "print(x)"), diag(9, "print(x)", ctx="g")]) == 2
    new = baseline.filter_new(b, [diag(30, "print(x)"), diag(40, "print( x )"), diag(50, "print(x)", ctx="g"),
                                  diag(60, "print(y)")])
    # Line text is compared after collapsing runs of whitespace (not removing it): 40 and 60 are new.
    assert [d.row for d in new] == [40, 60]
