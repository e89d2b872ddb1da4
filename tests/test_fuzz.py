"""Fuzzing (issues 7 and 16): generated programs and mutated real files never make an exception
escape `engine.lint_source` with every rule on, and no rule crashes (the engine records a rule's
crash in `FileResult.errors`).

- JAX-shaped programs (`tests/jaxgen.py`: jitted and vmapped functions, `eqx.Module` classes,
  prints with `*args`, keys split and reused, `lax` bodies, `global` statements, ...): no internal
  error, and the same findings and fixes on every run and through the cache's JSON round trip;
  their fixes applied as `--fix` applies them raise nothing and make no rule crash either;
- hypothesmith programs (any Python) and mutated real files: no exception, no internal error.

The quick version runs in the normal suite (bounded, derandomized, a few seconds); `-m slow`
(with `EQXLINT_FUZZ_LONG=N` examples each) runs a long one."""

from __future__ import annotations

import ast
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings, strategies as st

from eqxlint.engine import run as engine
from eqxlint.app import fixes
from eqxlint.app.config import Settings

from jaxgen import programs

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


def _snapshot(diags: list) -> list:
    """Findings and their fixes as plain JSON values."""
    return json.loads(json.dumps([
        (d.code, d.row, d.column, d.end_row, d.end_column, d.message,
         [(e.start, e.end, e.content) for e in d.fix.edits] if d.fix is not None else None)
        for d in diags
    ]))


def lint_jax_program(src: str) -> list:
    """No rule crashes on `src` or on its fixed forms; the cache's JSON round trip changes
    nothing. Returns the findings' snapshot."""
    run = _run()
    ast.parse(src)  # the generator's own contract
    res = engine.lint_source(src, "gen.py", run, "gen")
    assert res.errors == [], res.errors
    diags = engine.finalize([res], run)
    cached = engine.FileResult.from_json(json.loads(json.dumps(res.to_json())))
    assert _snapshot(engine.finalize([cached], run)) == _snapshot(diags), "findings differ through the cache"
    crashes = []

    def relint(text: str) -> list:
        r = engine.lint_source(text, "gen.py", run, "gen")
        crashes.extend(r.errors)
        return engine.finalize([r], run)

    fixes.fix_text(src, diags, relint, unsafe=True, label="gen.py")
    assert crashes == [], crashes
    return _snapshot(diags)


_CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import test_fuzz
from eqxlint.engine import run as engine
run = test_fuzz._run()
out = []
for src in json.load(sys.stdin):
    res = engine.lint_source(src, "gen.py", run, "gen")
    out.append(test_fuzz._snapshot(engine.finalize([res], run)))
print(json.dumps(out))
"""


def assert_deterministic(sources: list, snapshots: list) -> None:
    """Another process, with another string-hash seed (so other set and dict orders of
    strings), finds exactly the same findings and fixes."""
    import subprocess
    import sys

    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"
    env.pop("EQXLINT_DEBUG", None)
    r = subprocess.run([sys.executable, "-c", _CHILD, str(Path(__file__).parent)], input=json.dumps(sources),
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    other = json.loads(r.stdout)
    for src, mine, theirs in zip(sources, snapshots, other):
        assert mine == theirs, f"findings depend on the process (hash seed) for:\n{src}"


# Programs that must be in every run, whatever the generator draws: the shapes issue 16 found
# crashing a rule (`global`, `print(*a)`) in traced code.
SEED_PROGRAMS = [
    "import jax\n\nCOUNTER = 0\n\n\n@jax.jit\ndef step(x):\n    global COUNTER\n    COUNTER += 1\n"
    "    return x * 2\n",
    "import jax\n\n\n@jax.jit\ndef step(x, *a):\n    print(*a)\n    print(*x, sep=',')\n    return x\n",
    "import jax\nimport jax.random as jr\nfrom jax import lax\n\n\ndef body(c, x):\n    global G\n"
    "    print(*c)\n    return c, jr.normal(KEY, ())\n\n\nout = lax.scan(body, 0.0, None, length=3)\n",
]
FUZZ_JAX = int(os.environ.get("EQXLINT_FUZZ_JAX", "20"))
FEATURES = ("def ", "@jax.jit", "@eqx.filter_jit", "@partial(jax.jit, static_argnums", "print(*", "print(",
            "global ", "jr.split(", "lax.scan(", "(eqx.Module):", "if ")


def _generated_jax_programs(n: int, derandomize: bool) -> tuple:
    sources, snapshots = [], []

    @seed(16)
    @settings(max_examples=n, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=list(HealthCheck))
    @given(programs())
    def inner(src):
        snapshot = lint_jax_program(src)
        sources.append(src)
        snapshots.append(snapshot)

    inner()
    return sources, snapshots


def test_generated_jax_programs_quick():
    sources, snapshots = _generated_jax_programs(FUZZ_JAX, derandomize=True)
    sources += SEED_PROGRAMS
    snapshots += [lint_jax_program(s) for s in SEED_PROGRAMS]
    # JAX-shaped programs, not comments: every feature the rules look at occurs.
    for feature in FEATURES:
        assert any(feature in s for s in sources), f"no generated program has {feature!r}"
    assert sorted(map(len, sources))[len(sources) // 2] > 300
    assert any(snapshots), "the rules found nothing in any generated program"
    assert_deterministic(sources, snapshots)


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


@pytest.mark.slow
def test_generated_jax_programs_long():
    sources, snapshots = _generated_jax_programs(int(os.environ.get("EQXLINT_FUZZ_LONG", "3000")), derandomize=False)
    assert_deterministic(sources, snapshots)
