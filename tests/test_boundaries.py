"""The package's two halves stay apart at run time, whatever path the code takes (issue 16).

- The linter never loads `jax` (nor `jaxlib`, `equinox`) or `eqxlint.runtime`: a subprocess
  imports every module of the linter, runs every rule (default-off ones included) on every
  catalogue example and applies their fixes, and drives the application's commands (check with
  fixes, diff, add-noqa, baselines, the index and shards, primitives, rule docs, the LSP linter,
  `python -m eqxlint`), then looks at `sys.modules`. A lazy `import jax` inside one rule's
  handler is caught, which a static import scan of the modules is not guaranteed to see.
- `import eqxlint.runtime` (and using it) loads nothing of the linter and not LibCST.

Static import directions between the layers are checked by `tests/test_layers.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_LINTER = ("jax", "jaxlib", "equinox")

LINTER_SCRIPT = r'''
import contextlib, importlib, io, json, sys
from pathlib import Path

work = Path(sys.argv[1])
tree = work / "tree"
tree.mkdir()
import eqxlint

pkg = Path(eqxlint.__file__).resolve().parent
names = []
for p in sorted(pkg.rglob("*.py")):
    parts = list(p.relative_to(pkg.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    name = ".".join(parts)
    if name == "eqxlint.runtime" or name.startswith("eqxlint.runtime.") or name == "eqxlint.__main__":
        continue
    names.append(name)
names.append("eqxlint.rules")
for name in names:
    importlib.import_module(name)

from eqxlint.app import fixes
from eqxlint.app.config import Settings
from eqxlint.engine import catalogue, registry, run as engine

run = engine.RunConfig(Settings(root=work, select=["ALL"], extend_select=["EQX"]))
assert set(registry.all_rules()) <= set(run.enabled), "not every rule is enabled"
errors, examples = [], 0
for doc in catalogue.load_all().values():
    for i, ex in enumerate(doc.examples):
        for j, src in enumerate((ex.code, ex.fixed)):
            if src is None:
                continue
            examples += 1
            res = engine.lint_source(src, f"{doc.code}_{i}_{j}.py", run, "example")
            errors += res.errors
            diags = engine.finalize([res], run)
            for _ in range(3):  # fixes, as --fix applies them
                new, applied = fixes.apply_edits(src, diags, True)
                if not applied or new == src:
                    break
                src = new
                res = engine.lint_source(src, f"{doc.code}_{i}_{j}.py", run, "example")
                errors += res.errors
                diags = engine.finalize([res], run)
            (tree / f"{doc.code.lower()}_{i}_{j}.py").write_text(src, encoding="utf-8")
if len(sys.argv) > 2:
    import shutil
    shutil.copy(sys.argv[2], tree / "notebook.ipynb")

from eqxlint.app import cli, lsp

t = str(tree)
commands = [
    ["check", t, "--isolated", "--extend-select", "EQX", "--no-cache", "--exit-zero", "-j", "1", "--diff", "--unsafe-fixes"],
    ["check", t, "--isolated", "--extend-select", "EQX", "--exit-zero", "-j", "1", "--output-format", "sarif"],
    ["check", t, "--isolated", "--exit-zero", "-j", "1", "--statistics"],
    ["check", t, "--isolated", "--exit-zero", "-j", "1", "--write-baseline", str(work / "baseline.json")],
    ["check", t, "--isolated", "--exit-zero", "-j", "1", "--baseline", str(work / "baseline.json")],
    ["index", t, "--no-cache", "-o", str(work / "index.json")],
    ["check", t, "--isolated", "--exit-zero", "-j", "1", "--shard", "1/2", "--index-file", str(work / "index.json")],
    ["primitives", t, "--no-cache", "--output-format", "json"],
    ["rule", "--all"],
    ["rule", "EQX209"],
    ["check", t, "--isolated", "--extend-select", "EQX", "--no-cache", "--exit-zero", "-j", "1", "--fix", "--unsafe-fixes"],
    ["check", t, "--isolated", "--no-cache", "--exit-zero", "-j", "1", "--add-noqa"],
]
codes = []
for argv in commands:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        codes.append(cli.main(argv))
linter = lsp.Linter()
for p in sorted(tree.glob("*.py"))[:40]:
    linter.lint(p.read_text(encoding="utf-8"), p)
try:
    lsp.build_server()
except ImportError:
    pass
sys.argv = ["eqxlint", "version"]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        importlib.import_module("eqxlint.__main__")
    except SystemExit:
        pass

loaded = sorted(
    m for m in sys.modules
    if m.split(".")[0] in %(forbidden)r or m == "eqxlint.runtime" or m.startswith("eqxlint.runtime.")
)
print(json.dumps({"modules": len(names), "examples": examples, "errors": errors, "loaded": loaded,
                  "exit_codes": codes}))
''' % {"forbidden": FORBIDDEN_IN_LINTER}


def _run(code: str, *args, cwd: Path) -> dict:
    env = dict(os.environ)
    env.pop("EQXLINT_DEBUG", None)
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_linter_never_loads_jax_or_the_runtime(tmp_path):
    notebook = ROOT / "fixtures" / "notebooks" / "primitives_tutorial.ipynb"
    args = [tmp_path] + ([notebook] if notebook.is_file() else [])
    out = _run(LINTER_SCRIPT, *args, cwd=tmp_path)
    assert out["loaded"] == [], f"the linter loaded {out['loaded']}"
    assert out["errors"] == [], "rules crashed on catalogue examples: " + "; ".join(out["errors"])
    assert out["modules"] >= 50 and out["examples"] >= 150, out
    assert all(c in (0, 1) for c in out["exit_codes"]), out["exit_codes"]


RUNTIME_SCRIPT = r'''
import json, sys
import eqxlint.runtime as rt
import jax
import jax.numpy as jnp

keys = rt.split_by_tree(jax.random.key(0), {"a": jnp.zeros(2), "b": (jnp.ones(()), 1.0)})
schedule = rt.scan_schedule(16, checkpoints=4)
loaded = sorted(
    m for m in sys.modules
    if m.split(".")[0] == "libcst"
    or (m.split(".")[0] == "eqxlint" and m != "eqxlint" and not m.startswith("eqxlint.runtime"))
)
print(json.dumps({"loaded": loaded}))
'''


def test_runtime_loads_nothing_of_the_linter_nor_libcst(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("equinox")
    out = _run(RUNTIME_SCRIPT, cwd=tmp_path)
    assert out["loaded"] == [], f"eqxlint.runtime loaded {out['loaded']}"

