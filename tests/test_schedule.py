"""Work split between worker processes, and per-file memory released without the cyclic GC."""

from __future__ import annotations

import gc
import random
from pathlib import Path

import libcst as cst

from eqxlint.app import api
from eqxlint.engine import run as engine
from eqxlint.app.schedule import balanced_chunks

ROOT = Path(__file__).resolve().parent.parent


def test_balanced_chunks_cover_everything_largest_first_and_end_small():
    rng = random.Random(0)
    sizes = [rng.randint(1, 300_000) for _ in range(2000)] + [2_000_000]
    for jobs in (2, 4, 16):
        chunks = balanced_chunks(sizes, jobs, size=lambda x: x)
        flat = [x for c in chunks for x in c]
        assert sorted(flat) == sorted(sizes)
        assert flat == sorted(sizes, reverse=True)
        totals = [sum(c) for c in chunks]
        # The last chunks are small, so workers finish within about one small chunk.
        assert max(totals[-jobs:]) <= sum(sizes) / (16 * jobs)
        assert len(chunks) < 40 * jobs


def test_balanced_chunks_small_inputs():
    assert balanced_chunks([], 2, size=len) == []
    assert balanced_chunks(["a"], 2, size=len) == [["a"]]
    assert balanced_chunks([""] * 3, 2, size=len) == [["", "", ""]]


def test_linting_leaves_no_syntax_tree_for_the_cyclic_collector():
    run = engine.RunConfig(api.settings_for([ROOT / "fixtures" / "solver_lib"]))
    files = sorted((ROOT / "fixtures").rglob("*.py"))
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for path in files:
            result = engine.lint_bytes(path.read_bytes(), str(path), run, "pkg.mod", False)
            assert result.errors == []
        del result
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, cst.CSTNode)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert leaked == []
