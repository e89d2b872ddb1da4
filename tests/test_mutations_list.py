"""The mutation list of `benchmarks/mutations.py` stays usable (issue 16): every mutation still
applies to today's code (its anchors match exactly once), yields code that still compiles (so a
catch means a test noticed the bug, not an import error), and names tests that exist; a stale
anchor is reported, never skipped. Running the mutations themselves takes minutes: by hand."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("eqxlint_mutations", ROOT / "benchmarks" / "mutations.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


M = _load()

# The bugs issue 16 lists: 13 the suite missed, and the fix-application ones.
REQUIRED = {
    "runtime-imports-linter", "rule-imports-jax-lazily", "eqx401-column-off-by-one", "rule-reports-twice",
    "api-skips-file-changed-check", "reparses-libcst-always-accepts", "notebook-reparse-check-removed",
    "lsp-ignores-utf16", "lsp-ignores-project-config", "baseline-ignores-enclosing-function",
    "cache-key-drops-rule-options", "rule-crashes-on-global", "rule-crashes-on-star-args",
    "fix-ignores-content-hash", "fix-skips-fresh-verification", "fix-reapplies-old-edits",
    "fix-follows-no-symlinks", "fix-takes-no-lock",
}


def _files(m) -> set:
    out = set()
    for files, _, _ in m.edits:
        out.update([files] if isinstance(files, str) else files)
    return out


def test_the_list_covers_the_issue():
    names = [m.name for m in M.MUTATIONS]
    assert len(names) == len(set(names))
    assert REQUIRED <= set(names), REQUIRED - set(names)


@pytest.mark.parametrize("mutation", M.MUTATIONS, ids=lambda m: m.name)
def test_mutation_applies_once_and_compiles(mutation, tmp_path):
    for rel in _files(mutation):
        if (ROOT / rel).is_file():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / rel, tmp_path / rel)
    originals, problem = M.apply(tmp_path, mutation)
    assert problem is None, f"STALE mutation {mutation.name}: {problem} (update its anchor)"
    assert originals
    for path, before in originals.items():
        after = path.read_text(encoding="utf-8")
        assert after != before
        ast.parse(after, str(path))
    M.restore(originals)
    assert all(p.read_text(encoding="utf-8") == t for p, t in originals.items())


@pytest.mark.parametrize("mutation", M.MUTATIONS, ids=lambda m: m.name)
def test_mutation_names_existing_tests(mutation):
    args = list(mutation.tests)
    paths = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "-k")]
    assert paths
    for p in paths:
        assert (ROOT / p.split("::")[0]).is_file(), p


def test_a_stale_anchor_is_reported_not_skipped(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\nx = 1\n")
    gone = M.Mutation("gone", "", [("m.py", r"y = 2", "")], ["tests"])
    twice = M.Mutation("twice", "", [("m.py", r"x = 1", "x = 2")], ["tests"])
    missing = M.Mutation("missing", "", [("nowhere.py", r"x", "")], ["tests"])
    moved = M.Mutation("moved", "", [(("nowhere.py", "m.py"), r"x = 1\nx", "x = 3\nx")], ["tests"])
    assert "matches 0 times" in M.apply(tmp_path, gone)[1]
    assert "matches 2 times" in M.apply(tmp_path, twice)[1]
    assert "matches 0 times" in M.apply(tmp_path, missing)[1]
    assert (tmp_path / "m.py").read_text() == "x = 1\nx = 1\n"
    originals, problem = M.apply(tmp_path, moved)
    assert problem is None and (tmp_path / "m.py").read_text() == "x = 3\nx = 1\n"
    M.restore(originals)
    assert (tmp_path / "m.py").read_text() == "x = 1\nx = 1\n"
