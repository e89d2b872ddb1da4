"""A one-file run inside a project (pre-commit, the language server) gives for that file exactly
the findings of the whole-project run: for every `.py` file of every fixture repository (each its
own project), through the CLI (`eqxlint check path/to/file.py` from the project root), the API
(`check_paths([file])`) and the language server's `ProjectSession`. The same comparison over a
sample of the real-package corpus is `benchmarks/one_file.py` (by hand; figure in
docs/reliability.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from eqxlint.app.api import ProjectSession, check_paths

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REPOS = sorted(p.name for p in FIXTURES.iterdir() if (p / "pyproject.toml").exists())


def _key(d: dict) -> dict:
    d = dict(d)
    d["filename"] = os.path.normpath(d["filename"])
    return d


def _by_file(dicts) -> dict:
    out = defaultdict(list)
    for d in dicts:
        out[os.path.normpath(d["filename"])].append(_key(d))
    return out


def _cli_json(*args) -> list:
    env = dict(os.environ)
    env.pop("EQXLINT_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "eqxlint", "check", *args, "--output-format", "json"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    for d in data:  # the JSON's filenames are absolute
        d["filename"] = os.path.relpath(d["filename"])
    return data


def test_every_fixture_repository_is_covered():
    assert {"clean_repo", "primitive_lib", "solver_lib", "training_scripts", "vae_project"} <= set(REPOS)


@pytest.mark.parametrize("name", REPOS)
def test_one_file_equals_whole_project(name, tmp_path, monkeypatch):
    project = tmp_path / name
    shutil.copytree(FIXTURES / name, project, ignore=shutil.ignore_patterns(".eqxlint_cache"))
    monkeypatch.chdir(project)
    files = sorted(p.relative_to(project).as_posix() for p in project.rglob("*.py"))
    assert files

    # API: whole project, then each file alone (no cache: every run computes everything).
    whole = _by_file(d.to_dict() for d in check_paths(["."], cache=False).diagnostics)
    assert set(whole) <= set(files)
    session = ProjectSession.for_path(files[0], cache=False, jobs=1)
    for f in files:
        one = [_key(d.to_dict()) for d in check_paths([f], cache=False).diagnostics]
        assert one == whole.get(f, []), f
        lsp = [_key(d.to_dict()) for d in session.diagnostics_for(f)]
        assert lsp == whole.get(f, []), f

    # CLI: the JSON of the whole project, then of each file alone (as pre-commit runs it, with
    # the cache the whole run wrote).
    whole_cli = _by_file(_cli_json("."))
    assert {f: [d["code"] for d in ds] for f, ds in whole_cli.items()} == \
        {f: [d["code"] for d in ds] for f, ds in whole.items()}
    for f in files:
        assert [_key(d) for d in _cli_json(f)] == whole_cli.get(f, []), f


@pytest.mark.slow
def test_corpus_sample():
    """benchmarks/one_file.py over a small sample of the real-package corpus (by hand: -m slow)."""
    corpus = Path(os.environ.get("EQXLINT_CORPUS", "/work/corpus/src"))
    if not corpus.is_dir():
        pytest.skip(f"no corpus at {corpus}")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "one_file.py"), str(corpus), "--per-package", "5",
         "--packages", "equinox", "lineax", "optimistix", "chex"],
        capture_output=True, text=True, timeout=3000,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
