"""The fixture repositories: the CLI's findings on each must equal its expected-findings file
exactly (code, file, line), and the clean repository's own tests must pass under real JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REPOS = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.txt").exists() and (p / "pyproject.toml").exists())


def findings(repo: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "eqxlint", "check", ".", "--output-format", "json", "--no-cache"],
        cwd=repo, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    out = []
    for d in json.loads(proc.stdout):
        rel = Path(d["filename"]).resolve().relative_to(repo.resolve()).as_posix()
        cell = f"cell {d['cell']}:" if d.get("cell") else ""
        out.append(f"{rel}:{cell}{d['location']['row']}: {d['code']}")
    return sorted(out)


def expected(repo: Path) -> list[str]:
    lines = (repo / "expected.txt").read_text().splitlines()
    return sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@pytest.mark.parametrize("name", REPOS)
def test_fixture_findings(name):
    repo = FIXTURES / name
    assert findings(repo) == expected(repo)


def test_fixture_set():
    assert {"solver_lib", "primitive_lib", "training_scripts", "clean_repo"} <= set(REPOS)
    assert expected(FIXTURES / "clean_repo") == []


@pytest.mark.jax
def test_clean_repo_runs_under_jax():
    pytest.importorskip("jax")
    pytest.importorskip("lineax")
    repo = FIXTURES / "clean_repo"
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=repo, capture_output=True, text=True, env=env, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
