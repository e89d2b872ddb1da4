"""The linter never imports, executes or evaluates checked code, opens no network connection,
loads no plugin the user did not name, and writes only fixed files and its cache (issue 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PAYLOAD = (
    "import jax, pathlib\n"
    "pathlib.Path({marker!r}).write_text('executed')\n"
    "@jax.jit\ndef f(x):\n    print(x)\n    return x\n"
)

AUDIT = r"""
import sys
def hook(event, args):
    if event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "urllib.Request",
                 "subprocess.Popen", "os.system", "os.exec", "exec", "compile") and event != "compile":
        if event == "exec" and args and getattr(args[0], "co_filename", "").startswith(ROOT):
            raise SystemExit("executed checked code: " + args[0].co_filename)
        if event.startswith("socket") or event.startswith("urllib"):
            raise SystemExit("network: " + event)
    if event == "import" and args[1] and str(args[1]).startswith(ROOT):
        raise SystemExit("imported checked code: " + str(args[1]))
    if event == "open" and isinstance(args[0], str) and args[0].startswith(ROOT) and args[1] not in (None, "r", "rb") and ".eqxlint_cache" not in args[0]:
        WRITES.append(args[0])
ROOT = sys.argv.pop(1)
sys.path[:] = [p for p in sys.path if p not in ("", ".", ROOT)]  # as the `eqxlint` script runs
WRITES = []
sys.addaudithook(hook)
import runpy, atexit
def _at_exit():
    if WRITES:
        print("WRITES", WRITES, file=sys.stderr)
    for m in list(sys.modules.values()):
        if str(getattr(m, "__file__", "") or "").startswith(ROOT):
            print("imported checked code:", m.__file__, file=sys.stderr)
atexit.register(_at_exit)
sys.argv = ["eqxlint"] + sys.argv[1:]
runpy.run_module("eqxlint", run_name="__main__")
"""


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    tree = tmp_path / "tree"
    pkg = tree / "pkg"
    pkg.mkdir(parents=True)
    marker = tmp_path / "MARKER"
    for name in ("conftest.py", "setup.py", "pkg/__init__.py", "pkg/mod.py", "pkg/__main__.py"):
        (tree / name).write_text(PAYLOAD.format(marker=str(marker)))
    (tree / "pyproject.toml").write_text("[tool.eqxlint]\n[build-system]\nrequires = ['evil']\n")
    return tree, marker


def _snapshot(root: Path) -> dict:
    out = {}
    for p in root.rglob("*"):
        if ".eqxlint_cache" in p.parts or not p.is_file():
            continue
        out[str(p)] = (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
    return out


def _run(tree: Path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("EQXLINT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-c", AUDIT, str(tree), "check", ".", "-j", "1", *args],
        cwd=tree, capture_output=True, text=True, env=env, timeout=600,
    )


def test_never_imports_or_runs_checked_code_nor_uses_network(tmp_path):
    tree, marker = _tree(tmp_path)
    before = _snapshot(tree)
    r = _run(tree)
    assert r.returncode == 1, r.stderr  # findings (EQX209), no audit violation
    assert "EQX209" in r.stdout
    assert not marker.exists()
    assert "WRITES" not in r.stderr
    assert _snapshot(tree) == before
    # Only its own cache folder was added.
    assert {p.name for p in tree.iterdir()} == {"conftest.py", "setup.py", "pkg", "pyproject.toml", ".eqxlint_cache"}


def test_fix_writes_only_the_fixed_files(tmp_path):
    tree, marker = _tree(tmp_path)
    (tree / "clean.py").write_text("x = 1\n")
    before = _snapshot(tree)
    r = _run(tree, "--fix", "--unsafe-fixes", "--no-cache")
    assert "Traceback" not in r.stderr and not marker.exists()
    after = _snapshot(tree)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {str(tree / n) for n in ("conftest.py", "setup.py", "pkg/__init__.py", "pkg/mod.py", "pkg/__main__.py")}
    assert set(after) == set(before)
    assert not (tree / ".eqxlint_cache").exists()  # --no-cache writes no cache


def test_no_plugins_loaded_from_the_checked_tree(tmp_path):
    """Rules come only from eqxlint.checks; a `checks`/`eqxlint` package in the linted tree is
    never imported (the audit hook fails the run on any import from the tree)."""
    tree, marker = _tree(tmp_path)
    fake = tree / "eqxlint" / "checks"
    fake.mkdir(parents=True)
    (tree / "eqxlint" / "__init__.py").write_text(PAYLOAD.format(marker=str(marker)))
    (fake / "__init__.py").write_text(PAYLOAD.format(marker=str(marker)))
    r = _run(tree, "--no-cache")
    assert r.returncode == 1 and "EQX209" in r.stdout and "imported checked code" not in r.stderr, r.stderr
    assert not marker.exists()


def test_no_socket_in_process(tmp_path, monkeypatch):
    import socket

    from eqxlint.app import api
    from eqxlint.app.config import Settings

    def boom(*a, **k):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    monkeypatch.setattr(socket, "getaddrinfo", boom)
    tree, marker = _tree(tmp_path)
    rep = api.check_paths([tree], settings=Settings(root=tree), cache=False, jobs=1)
    assert rep.diagnostics and not rep.errors and not marker.exists()
