"""Fuzzing (issue 7): generated programs (hypothesmith) and mutated real files never make an
exception escape `engine.lint_source` with every rule on. The quick version runs in the normal
suite (bounded, deterministic); `-m slow` or `EQXLINT_FUZZ_EXAMPLES=N` runs a long one."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings, strategies as st

from eqxlint.engine import run as engine
from eqxlint.app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted(p for p in (ROOT / "eqxlint" / "checks").glob("*.py") if p.stat().st_size > 2000)[:6]
SEEDS += sorted((ROOT / "fixtures").rglob("*.py"))[:20]
QUICK = int(os.environ.get("EQXLINT_FUZZ_EXAMPLES", "25"))

_RUN = None


def _run():
    global _RUN
    if _RUN is None:
        s = Settings(root=ROOT, select=["ALL"], extend_select=["EQX"])
        _RUN = engine.RunConfig(s)
    return _RUN


def lint_all(source: str) -> engine.FileResult:
    res = engine.lint_source("import jax\nimport equinox as eqx\n" + source, "fuzz.py", _run(), "fuzz")
    assert not res.errors, res.errors
    engine.finalize([res], _run())
    return res


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True) or ["\n"]
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        if op == 0 and len(lines) > 1:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[j])
        elif op == 2:
            lines[i], lines[j] = lines[j], lines[i]
        else:
            line = lines[i]
            k = rng.randrange(len(line) + 1)
            ch = rng.choice("()[]{}:,.=+-*@'\"\\ \t\n#xjaxlambda")
            if op == 3:
                line = line[:k] + ch + line[k:]
            elif op == 4:
                line = line[:k] + line[k + 1 :]
            else:
                m = rng.randrange(len(line) + 1)
                line = line[:k] + line[m:k] + line[k:]
            lines[i] = line
    return "".join(lines)


def _mutants(n: int, base_seed: int):
    rng = random.Random(base_seed)
    texts = [p.read_text(encoding="utf-8") for p in SEEDS]
    for _ in range(n):
        yield mutate(rng.choice(texts), rng)


@pytest.mark.parametrize("chunk", range(4))
def test_mutated_real_files_quick(chunk):
    for src in _mutants(QUICK, 1000 + chunk):
        lint_all(src)


try:
    import hypothesmith
except ImportError:  # pragma: no cover
    hypothesmith = None


@pytest.mark.skipif(hypothesmith is None, reason="hypothesmith not installed")
def test_generated_programs_quick():
    @seed(7)
    @settings(max_examples=QUICK, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(hypothesmith.from_grammar())
    def inner(src):
        lint_all(src)

    inner()


@pytest.mark.skipif(hypothesmith is None, reason="hypothesmith not installed")
def test_generated_cst_programs_quick():
    @seed(11)
    @settings(max_examples=max(5, QUICK // 3), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(hypothesmith.from_node())
    def inner(src):
        lint_all(src)

    inner()


@pytest.mark.slow
def test_mutated_real_files_long():
    corpus = Path(os.environ.get("EQXLINT_CORPUS", "/work/corpus/src"))
    files = sorted(corpus.rglob("*.py"))[::10] if corpus.is_dir() else SEEDS
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    rng = random.Random(2024)
    n = int(os.environ.get("EQXLINT_FUZZ_LONG", "3000"))
    for _ in range(n):
        text = rng.choice(texts)
        if len(text) > 60_000:
            continue
        lint_all(mutate(text, rng))


@pytest.mark.slow
@pytest.mark.skipif(hypothesmith is None, reason="hypothesmith not installed")
def test_generated_programs_long():
    @settings(max_examples=int(os.environ.get("EQXLINT_FUZZ_LONG", "3000")), deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(hypothesmith.from_grammar(), hypothesmith.from_node()))
    def inner(src):
        lint_all(src)

    inner()
