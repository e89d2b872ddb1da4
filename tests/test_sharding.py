"""Sharded runs (`check --shard I/N --index-file idx.json`) find exactly what one run finds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eqxlint.app.cli import main
from eqxlint.app.config import ConfigError
from eqxlint.app.sharding import parse_shard, select_shard

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def _run(capsys, *argv) -> list:
    capsys.readouterr()
    rc = main(["check", "--output-format", "json", *argv])
    out = capsys.readouterr()
    assert rc in (0, 1), out.err
    assert "internal error" not in out.err, out.err
    return [
        (d["filename"], d["location"]["row"], d["location"]["column"], d["code"], d["message"])
        for d in json.loads(out.out)
    ]


@pytest.fixture
def repo(tmp_path, monkeypatch, request):
    dest = tmp_path / request.param
    shutil.copytree(FIXTURES / request.param, dest, ignore=shutil.ignore_patterns(".eqxlint_cache"))
    monkeypatch.chdir(dest)
    return dest


@pytest.mark.parametrize("repo", ["solver_lib", "primitive_lib"], indirect=True)
@pytest.mark.parametrize("n", [2, 3])
def test_sharded_runs_equal_one_run(repo, capsys, n):
    whole = _run(capsys, "--no-cache", ".")
    assert whole, "the fixture repository has findings"
    capsys.readouterr()
    assert main(["index", "-o", "idx.json", "--no-cache", "."]) == 0
    union = []
    for i in range(1, n + 1):
        union += _run(capsys, "--no-cache", "--shard", f"{i}/{n}", "--index-file", "idx.json", ".")
    assert sorted(union) == sorted(whole)
    # Without an index, a shard lints the other files for their facts: same findings.
    union = []
    for i in range(1, n + 1):
        union += _run(capsys, "--no-cache", "--shard", f"{i}/{n}", ".")
    assert sorted(union) == sorted(whole)


@pytest.mark.parametrize("repo", ["solver_lib"], indirect=True)
def test_index_file_serves_cross_file_facts_for_a_subset(repo, capsys):
    """The pre-commit case with a prebuilt index: one file checked, cross-file facts from the
    index, findings equal to that file's findings in a whole-project run."""
    whole = _run(capsys, "--no-cache", ".")
    capsys.readouterr()
    assert main(["index", "-o", "idx.json", "--no-cache", "."]) == 0
    for f in sorted({w[0] for w in whole}):
        mine = _run(capsys, "--no-cache", "--index-file", "idx.json", f)
        assert sorted(mine) == sorted(w for w in whole if w[0] == f)


@pytest.mark.parametrize("repo", ["solver_lib"], indirect=True)
def test_stale_or_foreign_index_is_refused(repo, capsys):
    Path("idx.json").write_text(json.dumps({"format": 1, "version": "0.0.0", "fingerprint": "x", "files": []}))
    capsys.readouterr()
    assert main(["check", "--index-file", "idx.json", "."]) == 2
    assert "rebuild" in capsys.readouterr().err
    Path("idx.json").write_text("not json")
    assert main(["check", "--index-file", "idx.json", "."]) == 2


def test_parse_shard():
    assert parse_shard("1/4") == (1, 4)
    assert parse_shard("4/4") == (4, 4)
    for bad in ("0/4", "5/4", "1", "a/b", "1/0", "-1/2", ""):
        with pytest.raises(ConfigError):
            parse_shard(bad)


def test_shards_partition_the_files():
    files = [Path(f"f{k}.py") for k in range(10)]
    parts = [select_shard(files, i, 3) for i in (1, 2, 3)]
    assert sorted(p for part in parts for p in part) == sorted(files)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
