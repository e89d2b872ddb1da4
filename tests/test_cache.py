"""The result cache: keyed by file content, eqxlint version and effective configuration; cross-file
facts stay correct when only some files change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eqxlint.app import cache as cache_mod
from eqxlint.app.cli import main

ROOT = Path(__file__).resolve().parent.parent
TRANSPOSE = (
    "\n\ndef _matvec_transpose(ct, lower, diag, upper, x):\n"
    "    return None, None, None, matvec.bind(upper, diag, lower, ct)\n\n\n"
    "ad.primitive_transposes[matvec] = _matvec_transpose\n"
)


def _check(capsys, *argv) -> list:
    capsys.readouterr()
    rc = main(["check", "--output-format", "json", *argv])
    out = capsys.readouterr()
    assert rc in (0, 1), out.err
    return sorted(
        (Path(d["filename"]).resolve().relative_to(Path.cwd().resolve()).as_posix(), d["location"]["row"], d["code"])
        for d in json.loads(out.out)
    )


@pytest.fixture
def solver_lib(tmp_path, monkeypatch):
    dest = tmp_path / "solver_lib"
    shutil.copytree(ROOT / "fixtures" / "solver_lib", dest, ignore=shutil.ignore_patterns(".eqxlint_cache"))
    monkeypatch.chdir(dest)
    return dest


def test_editing_the_transpose_file_updates_the_primitive_file(solver_lib, capsys):
    rules = solver_lib / "solverlib" / "_rules.py"
    original = rules.read_text()
    first = _check(capsys, ".")
    assert ("solverlib/_ops.py", 7, "EQX302") in first
    assert (solver_lib / ".eqxlint_cache").is_dir()
    assert _check(capsys, ".") == first  # warm cache, nothing changed

    # Register the transpose in _rules.py: the finding in _ops.py (unchanged, cached) goes away.
    rules.write_text(original + TRANSPOSE)
    second = _check(capsys, ".")
    assert ("solverlib/_ops.py", 7, "EQX302") not in second
    assert second == _check(capsys, "--no-cache", ".")
    # The pre-commit case: only the primitive's file is checked, the rest comes from the cache.
    assert ("solverlib/_ops.py", 7, "EQX302") not in _check(capsys, "solverlib/_ops.py")

    # And back.
    rules.write_text(original)
    assert _check(capsys, ".") == first
    assert ("solverlib/_ops.py", 7, "EQX302") in _check(capsys, "solverlib/_ops.py")


def test_subset_run_sees_a_changed_other_file(solver_lib, capsys):
    """Only _ops.py is checked, _rules.py changed since the cache was filled: its new facts are
    used (the cache is keyed by content, never by mtime alone)."""
    rules = solver_lib / "solverlib" / "_rules.py"
    _check(capsys, ".")
    rules.write_text(rules.read_text() + TRANSPOSE)
    assert ("solverlib/_ops.py", 7, "EQX302") not in _check(capsys, "solverlib/_ops.py")


def test_cache_is_keyed_by_configuration(solver_lib, capsys):
    first = _check(capsys, ".")
    assert any(c == "EQX203" for _, _, c in first)
    py = solver_lib / "pyproject.toml"
    py.write_text(py.read_text() + 'ignore = ["EQX203"]\n')
    assert not any(c == "EQX203" for _, _, c in _check(capsys, "."))
    # `solvers` changes per-file results (EQX203 comes from a configured solver).
    py.write_text(py.read_text().replace('ignore = ["EQX203"]\n', "").replace(
        'solvers = ["solverlib._solve.dense_solve"]', "solvers = []"))
    assert _check(capsys, ".") == _check(capsys, "--no-cache", ".")


def test_cache_is_keyed_by_version(solver_lib, capsys, monkeypatch):
    first = _check(capsys, ".")
    monkeypatch.setattr(cache_mod, "__version__", "0.0.0-other")
    store = cache_mod.Cache(solver_lib / ".eqxlint_cache", "fp")
    assert "0.0.0-other" in store.dir.name
    assert _check(capsys, ".") == first


def test_corrupt_entries_are_rebuilt(solver_lib, capsys):
    first = _check(capsys, ".")
    for f in (solver_lib / ".eqxlint_cache").rglob("*"):
        if f.is_file() and f.name not in (".gitignore", "CACHEDIR.TAG"):
            f.write_bytes(b"{not json")
    assert _check(capsys, ".") == first
    assert _check(capsys, ".") == first


def test_one_file_in_a_project_reuses_a_whole_project_run(tmp_path, monkeypatch):
    """The pre-commit case: after `eqxlint check .` at the project root, checking one file
    lints only that file; the others' facts come from the cache entries of the full run."""
    from eqxlint.app import api
    from eqxlint.engine import run as engine

    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    for i in range(5):
        (pkg / f"m{i}.py").write_text(f"import jax\n\ndef f{i}(x):\n    return jax.numpy.sin(x)\n")
    monkeypatch.chdir(tmp_path)
    api.check_paths(["."], jobs=1)
    linted = []
    real = engine.lint_bytes

    def counting(data, path, *a, **k):
        linted.append(path)
        return real(data, path, *a, **k)

    monkeypatch.setattr(engine, "lint_bytes", counting)
    (pkg / "m0.py").write_text("import jax\n\ndef f0(x):\n    return jax.numpy.cos(x)\n")
    api.check_paths(["pkg/m0.py"], jobs=1)
    assert linted == ["pkg/m0.py"]


SCAN = '''import jax
import jax.numpy as jnp
from jax import lax


def loss(params, h0):
    def body(h, x):
        return jnp.tanh(params * h + x), None
    h, _ = lax.scan(body, h0, None, length=300)
    return h


grads = jax.grad(loss)
'''


def test_changing_a_rule_option_invalidates_the_cache(tmp_path, monkeypatch, capsys):
    """Issue 16: a stale EQX205 after changing `min-length` (the cache key dropped rule options)."""
    (tmp_path / "m.py").write_text(SCAN)
    py = tmp_path / "pyproject.toml"
    monkeypatch.chdir(tmp_path)
    py.write_text("[tool.eqxlint]\n[tool.eqxlint.EQX205]\nmin-length = 64\n")
    assert _check(capsys, ".") == [("m.py", 9, "EQX205")]
    py.write_text("[tool.eqxlint]\n[tool.eqxlint.EQX205]\nmin-length = 512\n")
    assert _check(capsys, ".") == [] == _check(capsys, "--no-cache", ".")
    py.write_text("[tool.eqxlint]\n[tool.eqxlint.EQX205]\nmin-length = 300\n")
    assert _check(capsys, ".") == [("m.py", 9, "EQX205")]


def test_changing_per_file_ignores_with_a_warm_cache(tmp_path, monkeypatch, capsys):
    """Per-file ignores are applied after the cache (to cached results too)."""
    (tmp_path / "m.py").write_text(SCAN)
    py = tmp_path / "pyproject.toml"
    monkeypatch.chdir(tmp_path)
    py.write_text("[tool.eqxlint]\n")
    assert _check(capsys, ".") == [("m.py", 9, "EQX205")]
    py.write_text('[tool.eqxlint]\nper-file-ignores = { "m.py" = ["EQX205"] }\n')
    assert _check(capsys, ".") == []


# Settings fields that decide what a file's (cached) result holds, and one change of each that
# changes the result for some file. Every other field must say why it is not in the key.
CHANGES_RESULTS = {
    "select": ["EQX2"],
    "extend_select": ["EQX306"],
    "ignore": ["EQX209"],
    "jit_decorators": ["mylib.jit"],
    "transforms": ["mylib.scan"],
    "solvers": ["mylib.solve"],
    "rule_options": {"EQX205": {"min-length": 128}},
}
NOT_IN_THE_KEY = {
    "root": "paths and module names are keyed per file",
    "config_path": "its settings are what counts",
    "per_file_ignores": "applied by finalize, after the cache",
    "exclude": "decides which files are linted, not their results",
    "extend_exclude": "decides which files are linted, not their results",
    "respect_gitignore": "decides which files are linted, not their results",
    "cache_dir": "where the cache is",
}


def test_cache_fingerprint_covers_every_setting_that_changes_results():
    import dataclasses

    from eqxlint.app.config import Settings
    from eqxlint.engine import registry

    fields = {f.name for f in dataclasses.fields(Settings)}
    assert fields == set(CHANGES_RESULTS) | set(NOT_IN_THE_KEY), "classify every Settings field"
    base = Settings(root=Path("/tmp"), select=["EQX1", "EQX2"])
    for name, value in CHANGES_RESULTS.items():
        changed = dataclasses.replace(base, **{name: value})
        assert changed.fingerprint() != base.fingerprint(), name
    # Every option of every rule is in the key.
    for code, cls in registry.all_rules().items():
        for option, default in getattr(cls, "options", {}).items():
            other = (not default) if isinstance(default, bool) else (default + 1 if isinstance(default, int) else "x")
            changed = dataclasses.replace(base, rule_options={code: {option: other}})
            assert changed.fingerprint() != base.fingerprint(), f"{code}.{option}"
