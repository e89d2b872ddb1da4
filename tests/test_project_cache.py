"""The project-result cache (`Cache.get_project`): a run with nothing changed answers from one
entry without loading any file's result, gives exactly what a run without the cache gives, and
any change to any file of the project (or to the settings) recomputes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from eqxlint.app import cache as cache_mod
from eqxlint.app.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _json(capsys, *argv) -> str:
    capsys.readouterr()
    rc = main(["check", "--output-format", "json", "--exit-zero", *argv])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


def test_warm_run_answers_from_the_project_entry(tmp_path, monkeypatch, capsys):
    dest = tmp_path / "vae_project"
    shutil.copytree(ROOT / "fixtures" / "vae_project", dest, ignore=shutil.ignore_patterns(".eqxlint_cache"))
    monkeypatch.chdir(dest)
    cold = _json(capsys, "--no-cache", ".")
    assert json.loads(cold)
    assert _json(capsys, ".") == cold  # fills the cache
    entries = list((dest / ".eqxlint_cache").glob("*/project/*.json"))
    assert len(entries) == 1

    def no_file_results(self, key):  # the hit must not load per-file results
        raise AssertionError("per-file result loaded")

    with monkeypatch.context() as m:
        m.setattr(cache_mod.Cache, "get", no_file_results)
        assert _json(capsys, ".") == cold

    # A change in another module than the one with findings: recomputed, same as without cache.
    model = next(p for p in sorted((dest / "vae").rglob("*.py")) if p.name != "__init__.py")
    model.write_text(model.read_text() + "\n\ndef _added(x):\n    print(x)\n    return x\n")
    assert _json(capsys, ".") == _json(capsys, "--no-cache", ".")
    # One entry per invocation, overwritten: still one.
    assert len(list((dest / ".eqxlint_cache").glob("*/project/*.json"))) == 1
    # Settings are part of the key.
    assert _json(capsys, "--select", "EQX101", ".") == _json(capsys, "--no-cache", "--select", "EQX101", ".")
    assert _json(capsys, ".") == _json(capsys, "--no-cache", ".")
