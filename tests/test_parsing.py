"""eqxlint.parsing: the parse without node re-validation gives LibCST's own trees, still rejects
invalid source, and leaves validation on for everything else."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest

from eqxlint.syntax.parsing import parse_module

ROOT = Path(__file__).resolve().parent.parent


def _sources():
    for path in sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "eqxlint").rglob("*.py")):
        yield path.read_text(encoding="utf-8")
    yield "x = 1\r\ny = f'{x!r:>{10}}'\r\n"
    yield "match p:\n    case [1, *rest] if rest:\n        pass\n"
    yield "async def f():\n    async with a as b:\n        await b\n"


def test_trees_equal_libcst_parse():
    n = 0
    for source in _sources():
        fast, stock = parse_module(source), cst.parse_module(source)
        assert fast.deep_equals(stock)
        assert fast.code == source
        n += 1
    assert n > 50


@pytest.mark.parametrize("source", ["def f(:\n    pass\n", "x = = 1\n", "if x\n    y\n"])
def test_invalid_source_still_rejected(source):
    with pytest.raises(cst.ParserSyntaxError):
        parse_module(source)


def test_validation_stays_on_for_hand_built_nodes():
    parse_module("x = 1\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not an identifier")
    with pytest.raises(cst.ParserSyntaxError):
        parse_module("def (:\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("still validated after a failed parse")


def test_tune_gc_only_in_owned_processes():
    # Importing and using the library leaves the interpreter's GC settings alone ...
    before = gc.get_threshold()
    import eqxlint.app.api

    eqxlint.app.api.check_source("import jax\nprint(1)\n")
    assert gc.get_threshold() == before
    # ... the CLI raises the young generation's threshold for its own process.
    code = (
        "import gc, sys\n"
        "from eqxlint.app import cli\n"
        "cli.main(['check', '--exit-zero', '--no-cache', sys.argv[1]])\n"
        "print(gc.get_threshold()[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "fixtures" / "clean_repo")],
        capture_output=True, text=True, check=True,
    )
    from eqxlint.syntax.parsing import GC_THRESHOLD

    assert out.stdout.split()[-1] == str(GC_THRESHOLD)
