"""EQX401 against real JAX: code the rule flags really draws identical samples, and the
split-key version it recommends does not. Runs on JAX's default backend (CPU or GPU)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.jax
jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from helpers import lint  # noqa: E402


def _eqx401_rows(src: str) -> list:
    return sorted(d.row for d in lint(src) if d.code == "EQX401")


def _run(src: str, fn: str, *args):
    ns: dict = {}
    exec(compile(src, "<eqx401-snippet>", "exec"), ns)
    return ns[fn](*args)


BAD_STRAIGHT = """\
import jax.random as jr

def draw(key):
    a = jr.normal(key, (4,))
    b = jr.normal(key, (4,))
    return a, b
"""

GOOD_STRAIGHT = """\
import jax.random as jr

def draw(key):
    key, subkey = jr.split(key)
    a = jr.normal(key, (4,))
    b = jr.normal(subkey, (4,))
    return a, b
"""


def test_straight_line_reuse_gives_identical_samples():
    key = jax.random.PRNGKey(0)
    assert _eqx401_rows(BAD_STRAIGHT) == [5]
    a, b = _run(BAD_STRAIGHT, "draw", key)
    assert bool(jnp.array_equal(a, b))  # the flagged code really repeats its draw

    assert _eqx401_rows(GOOD_STRAIGHT) == []
    a, b = _run(GOOD_STRAIGHT, "draw", key)
    assert not bool(jnp.array_equal(a, b))


BAD_LOOP = """\
import jax.numpy as jnp
from jax import random

def mc(key, n):
    draws = []
    for _ in range(n):
        draws.append(random.uniform(key, ()))
    return jnp.stack(draws)
"""

GOOD_LOOP = """\
import jax.numpy as jnp
from jax import random

def mc(key, n):
    draws = []
    for _ in range(n):
        key, sub = random.split(key)
        draws.append(random.uniform(sub, ()))
    return jnp.stack(draws)
"""

GOOD_LOOP_SPLIT_N = """\
import jax.numpy as jnp
from jax import random

def mc(key, n):
    return jnp.stack([random.uniform(k, ()) for k in random.split(key, n)])
"""


def test_loop_reuse_gives_the_same_sample_every_iteration():
    key = jax.random.key(1)
    assert _eqx401_rows(BAD_LOOP) == [7]
    out = _run(BAD_LOOP, "mc", key, 8)
    assert bool(jnp.all(out == out[0]))  # one sample, eight times

    for good in (GOOD_LOOP, GOOD_LOOP_SPLIT_N):
        assert _eqx401_rows(good) == []
        out = _run(good, "mc", key, 8)
        assert len(set(out.tolist())) == 8


BAD_MODULE = """\
import jax.random as jr
import equinox as eqx

def build(key):
    l1 = eqx.nn.Linear(3, 3, key=key)
    l2 = eqx.nn.Linear(3, 3, key=key)
    return l1, l2
"""

GOOD_MODULE = """\
import jax.random as jr
import equinox as eqx

def build(key):
    k1, k2 = jr.split(key)
    l1 = eqx.nn.Linear(3, 3, key=k1)
    l2 = eqx.nn.Linear(3, 3, key=k2)
    return l1, l2
"""


def test_layers_initialised_with_one_key_are_identical():
    pytest.importorskip("equinox")
    key = jax.random.PRNGKey(2)
    assert _eqx401_rows(BAD_MODULE) == [6]
    l1, l2 = _run(BAD_MODULE, "build", key)
    assert bool(jnp.array_equal(l1.weight, l2.weight))

    assert _eqx401_rows(GOOD_MODULE) == []
    l1, l2 = _run(GOOD_MODULE, "build", key)
    assert not bool(jnp.array_equal(l1.weight, l2.weight))


BAD_JIT = """\
import jax
import jax.random as jr

@jax.jit
def noisy(key, x):
    mask = jr.bernoulli(key, 0.5, x.shape)
    noise = jr.uniform(key, x.shape)
    return mask, noise
"""

GOOD_JIT = """\
import jax
import jax.random as jr

@jax.jit
def noisy(key, x):
    mkey, nkey = jr.split(key)
    mask = jr.bernoulli(mkey, 0.5, x.shape)
    noise = jr.uniform(nkey, x.shape)
    return mask, noise
"""


def test_reuse_under_jit_correlates_mask_and_noise():
    key = jax.random.PRNGKey(3)
    x = jnp.zeros((2000,))
    assert _eqx401_rows(BAD_JIT) == [7]
    mask, noise = _run(BAD_JIT, "noisy", key, x)
    # bernoulli(key, p) is `uniform(key) < p`: with one key the mask is a function of the noise.
    assert bool(jnp.array_equal(mask, noise < 0.5))

    assert _eqx401_rows(GOOD_JIT) == []
    mask, noise = _run(GOOD_JIT, "noisy", key, x)
    assert not bool(jnp.array_equal(mask, noise < 0.5))


CROSS_MODULE = {
    "noisepkg/__init__.py": "",
    "noisepkg/init.py": """\
import jax.random as jr


def init_weights(key, n):
    return jr.normal(key, (n,))


def shape_only(key, n):
    del key
    return (n,)
""",
    "noisepkg/noise.py": """\
import jax.random as jr


def perturb(key, n):
    return jr.normal(key, (n,))
""",
    "train.py": """\
import jax.random as jr
from noisepkg.init import init_weights, shape_only
from noisepkg.noise import perturb


def setup(key):
    shape = shape_only(key, 8)
    w = init_weights(key, shape[0])
    noise = perturb(key, shape[0])
    return w, noise
""",
}


def test_cross_module_reuse_is_found_and_really_repeats(tmp_path, monkeypatch):
    """`perturb(key)` after `init_weights(key)` (two other modules, both drawing) is reported,
    `shape_only(key)` (which `del`s its key) is not, and the flagged code really draws the
    same numbers twice."""
    import sys
    import textwrap
    from pathlib import Path

    from eqxlint.app import api

    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    for name, src in CROSS_MODULE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(src))
    diags = api.check_paths([tmp_path], cache=False).diagnostics
    assert [(Path(d.filename).name, d.row) for d in diags if d.code == "EQX401"] == [("train.py", 9)]

    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in [m for m in sys.modules if m == "train" or m.startswith("noisepkg")]:
        monkeypatch.delitem(sys.modules, mod)
    import train

    w, noise = train.setup(jax.random.PRNGKey(4))
    assert bool(jnp.array_equal(w, noise))  # the "noise" is the initial weights again
