import subprocess
import sys

import pytest


jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import jax.tree_util as jtu  # noqa: E402
import numpy as np  # noqa: E402

from eqxlint.runtime import (  # noqa: E402
    assert_static_unchanged,
    filter_cond,
    split_by_tree,
    StaticChangedError,
    StaticOutputMismatchError,
)


pytestmark = pytest.mark.jax


def test_import_does_not_load_libcst_or_linter():
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys, eqxlint.runtime\n"
        "assert 'libcst' not in sys.modules, 'libcst imported'\n"
        "bad = [m for m in sys.modules if m.split('.')[:2] in "
        "(['eqxlint', 'engine'], ['eqxlint', 'cli'], ['eqxlint', 'checks'])]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)


def test_device_env_var_is_enforced():
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, EQXLINT_TEST_DEVICE="no-such-backend")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         os.path.join(here, "test_helpers.py"), "-k", "rejects_batched_key"],
        capture_output=True, text=True, env=env, cwd=os.path.dirname(os.path.dirname(here)),
    )
    assert proc.returncode != 0
    assert "EQXLINT_TEST_DEVICE='no-such-backend'" in proc.stdout
    assert jax.default_backend() in proc.stdout


def test_runtime_sources_never_import_linter():
    import pathlib

    import eqxlint.runtime

    root = pathlib.Path(eqxlint.runtime.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "libcst" not in text.replace("LibCST", "")
        for mod in ("eqxlint.engine", "eqxlint.cli", "eqxlint.checks", "from .. import"):
            assert mod not in text, (path, mod)


# ---- filter_cond ----


def test_filter_cond_static_outputs_traced_pred():
    act = jax.nn.relu

    @eqx.filter_jit
    def f(pred, x):
        return filter_cond(
            pred,
            lambda x, fn, n: (fn(x) + n, "tag", fn),
            lambda x, fn, n: (fn(-x) - n, "tag", fn),
            x,
            act,
            3,
        )

    y, tag, fn = f(jnp.array(True), jnp.arange(3.0))
    assert tag == "tag" and fn is act
    assert jnp.allclose(y, jnp.arange(3.0) + 3)
    y, _, _ = f(jnp.array(False), jnp.arange(3.0))
    assert jnp.allclose(y, -3.0 * jnp.ones(3))


def test_filter_cond_python_pred_and_module():
    class M(eqx.Module):
        w: jax.Array
        name: str = eqx.field(static=True)

    m = M(jnp.ones(2), "m")
    out = filter_cond(False, lambda m: m, lambda m: M(m.w * 2, m.name), m)
    assert isinstance(out, M) and out.name == "m"
    assert jnp.allclose(out.w, 2.0)


def test_filter_cond_static_mismatch_error():
    with pytest.raises(StaticOutputMismatchError, match=r"\[1\].*'a'.*'b'"):
        jax.jit(
            lambda p, x: filter_cond(p, lambda x: (x, "a"), lambda x: (x, "b"), x)
        )(True, jnp.ones(2))


def test_filter_cond_structure_mismatch_error():
    with pytest.raises(StaticOutputMismatchError, match="structure"):
        filter_cond(
            jnp.array(True), lambda x: (x, 1), lambda x: (x, 1, 2), jnp.ones(2)
        )


def test_filter_cond_grad_and_vmap():
    def f(p, x):
        return filter_cond(p, lambda x: (jnp.sin(x), 1), lambda x: (x**2, 1), x)[0]

    g = jax.grad(lambda x: f(True, x))(0.5)
    assert jnp.allclose(g, jnp.cos(0.5))
    out = jax.vmap(f)(jnp.array([True, False]), jnp.array([0.5, 0.5]))
    assert jnp.allclose(out, jnp.array([jnp.sin(0.5), 0.25]))


# ---- split_by_tree ----


@pytest.mark.parametrize("typed", [True, False])
def test_split_by_tree(typed):
    key = jr.key(0) if typed else jr.PRNGKey(0)
    tree = {"a": jax.ShapeDtypeStruct((2,), jnp.float32), "b": [jnp.zeros(3), None]}
    keys = split_by_tree(key, tree)
    assert jtu.tree_structure(keys) == jtu.tree_structure(tree)
    leaves = jtu.tree_leaves(keys)
    assert len(leaves) == 2
    if typed:
        assert all(jnp.issubdtype(k.dtype, jax.dtypes.prng_key) and k.shape == () for k in leaves)
    else:
        assert all(k.dtype == jnp.uint32 and k.shape == (2,) for k in leaves)
    samples = jtu.tree_map(lambda k, s: jr.normal(k, s.shape), keys, tree)
    assert not jnp.allclose(samples["a"][:2], samples["b"][0][:2])
    # deterministic, and works under jit
    again = jax.jit(split_by_tree)(key, tree)
    for k1, k2 in zip(leaves, jtu.tree_leaves(again)):
        assert jnp.array_equal(jr.key_data(k1) if typed else k1, jr.key_data(k2) if typed else k2)


def test_split_by_tree_rejects_batched_key():
    with pytest.raises(ValueError, match="single"):
        split_by_tree(jr.split(jr.key(0), 3), [1, 2])


# ---- assert_static_unchanged ----


class _State(eqx.Module):
    x: jax.Array
    step_size: float
    mode: str = eqx.field(static=True)


def test_assert_static_unchanged_ok_under_jit():
    s = _State(jnp.ones(3), 0.1, "a")

    @eqx.filter_jit
    def step(s):
        new = eqx.tree_at(lambda t: t.x, s, s.x + 1)
        assert_static_unchanged(s, new)
        return new

    assert jnp.allclose(step(s).x, 2.0)


def test_assert_static_unchanged_names_leaf():
    s = _State(jnp.ones(3), 0.1, "a")
    with pytest.raises(StaticChangedError, match=r"state\.step_size: 0\.1 became 0\.2"):
        assert_static_unchanged(s, eqx.tree_at(lambda t: t.step_size, s, 0.2))
    with pytest.raises(StaticChangedError, match=r"float32\[3\] became float32\[4\]"):
        assert_static_unchanged(s, eqx.tree_at(lambda t: t.x, s, jnp.ones(4)))
    assert_static_unchanged(s, eqx.tree_at(lambda t: t.x, s, jnp.ones(4)), check_shapes=False)
    with pytest.raises(StaticChangedError, match=r"state\.mode \(static field\): 'a' became 'b'"):
        assert_static_unchanged(s, _State(jnp.ones(3), 0.1, "b"))
    with pytest.raises(StaticChangedError, match=r"state\[1\]: length 2 became 3"):
        assert_static_unchanged([1, (2, 3)], [1, (2, 3, 4)])
    with pytest.raises(StaticChangedError, match=r"state\['a'\]: array float32\[2\] became static float 1\.0"):
        assert_static_unchanged({"a": jnp.ones(2)}, {"a": 1.0})


# ---- filter_cond: issue 14 ----


class _Act(eqx.Module):
    w: jax.Array
    act: object = eqx.field(static=True)


@pytest.mark.parametrize("pred", [True, False, jnp.array(True), jnp.array(False)])
def test_filter_cond_under_disable_jit(pred):
    with jax.disable_jit():
        y, tag = filter_cond(
            pred, lambda x: (x + 1, "t"), lambda x: (x - 1, "t"), jnp.ones(2)
        )
    assert tag == "t"
    assert jnp.allclose(y, 2.0 if bool(pred) else 0.0)


def test_filter_cond_none_vs_array_names_the_leaf():
    with pytest.raises(StaticOutputMismatchError) as info:
        filter_cond(jnp.array(True), lambda x: (x, None), lambda x: (x, x), jnp.ones(2))
    msg = str(info.value)
    assert "at [1]: None (true_fun) != array float32[2] (false_fun)" in msg, msg
    with pytest.raises(StaticOutputMismatchError, match=r"at \['y'\]: array float32\[2\] \(true_fun\) != float32\[1\]"):
        filter_cond(jnp.array(True), lambda x: {"y": x}, lambda x: {"y": x[:1]}, jnp.ones(2))


def test_filter_cond_static_field_mismatch_names_the_field():
    with pytest.raises(StaticOutputMismatchError) as info:
        jax.jit(
            lambda x: filter_cond(
                x[0] > 0, lambda x: _Act(x, jax.nn.relu), lambda x: _Act(x, jnp.tanh), x
            )
        )(jnp.ones(2))
    msg = str(info.value)
    assert "at .act (static field):" in msg and "(true_fun) !=" in msg, msg
    assert "PyTreeDef" not in msg


def test_filter_cond_nan_static_leaves_are_unchanged():
    nan1, nan2 = float("nan"), float("nan")
    assert nan1 is not nan2
    y, s = filter_cond(jnp.array(True), lambda x: (x, nan1), lambda x: (x, nan2), jnp.ones(2))
    assert s != s  # the NaN comes through
    out = jax.jit(
        lambda x: filter_cond(x[0] > 0, lambda x: _Act(x, nan1), lambda x: _Act(-x, nan2), x)
    )(jnp.ones(2))
    assert jnp.allclose(out.w, 1.0) and out.act != out.act
    # NaN inside a static tuple, and inside a tuple in a static field
    filter_cond(
        True,
        lambda x: (x, (1, nan1), _Act(x, (0.5, nan1))),
        lambda x: (x, (1, nan2), _Act(x, (0.5, nan2))),
        jnp.ones(2),
    )


def test_assert_static_unchanged_nan_is_unchanged():
    nan1, nan2 = float("nan"), float("nan")
    x = jnp.ones(2)
    assert_static_unchanged((x, nan1), (x, nan2))
    assert_static_unchanged(_Act(x, nan1), _Act(x, nan2))
    assert_static_unchanged(_Act(x, (0.5, nan1)), _Act(x, (0.5, nan2)))
    assert_static_unchanged({"a": np.nan}, {"a": float("nan")})
    with pytest.raises(StaticChangedError, match=r"state\[1\]: nan became 1\.0"):
        assert_static_unchanged((x, nan1), (x, 1.0))
    with pytest.raises(StaticChangedError, match=r"state\.act \(static field\): nan became 0\.5"):
        assert_static_unchanged(_Act(x, nan1), _Act(x, 0.5))


# ---- split_by_tree: issue 14 ----


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg", "threefry2x32"])
def test_split_by_tree_any_impl(impl):
    tree = {"a": jnp.zeros(2), "b": (jnp.zeros(3), jnp.zeros(()))}
    typed = jr.key(0, impl=impl)
    keys = split_by_tree(typed, tree)
    assert all(k.dtype == typed.dtype and k.shape == () for k in jtu.tree_leaves(keys))
    assert len({tuple(np.asarray(jr.key_data(k)).ravel()) for k in jtu.tree_leaves(keys)}) == 3
    old = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", impl)
    try:
        # a raw uint32 key of the default impl (shape (4,) for rbg), also under jit
        raw = jr.PRNGKey(0)
        # (a fresh function for jit: JAX's trace cache does not key on the default impl)
        for fn in (split_by_tree, jax.jit(lambda k, t: split_by_tree(k, t))):
            raw_keys = fn(raw, tree)
            leaves = jtu.tree_leaves(raw_keys)
            assert all(k.dtype == jnp.uint32 and k.shape == raw.shape for k in leaves)
            assert len({tuple(np.asarray(k)) for k in leaves}) == 3
            jtu.tree_map(lambda k, s: jr.normal(k, s.shape), raw_keys, tree)
        # the typed key of the default impl gives the same keys as its raw data
        same = split_by_tree(jr.wrap_key_data(raw), tree)
        for k, r in zip(jtu.tree_leaves(same), jtu.tree_leaves(raw_keys)):
            assert jnp.array_equal(jr.key_data(k), r)
        with pytest.raises(ValueError, match="single"):
            split_by_tree(jr.split(raw, 3), tree)
    finally:
        jax.config.update("jax_default_prng_impl", old)


# ---- import without the `runtime` extra: issue 14 ----

_BLOCKER = """
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == {blocked!r} or name.startswith({blocked!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Block())
import eqxlint  # the linter itself never needs the extra
try:
    import eqxlint.runtime
except ImportError as e:
    print(type(e).__name__, isinstance(e, ImportError), e.name, "|", e)
else:
    print("imported")
"""


@pytest.mark.parametrize("blocked", ["equinox", "jax"])
def test_import_without_runtime_extra_says_what_to_install(blocked):
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCKER.format(blocked=blocked)],
        capture_output=True, text=True, cwd=root, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("ModuleNotFoundError True " + blocked + " |"), out
    assert "pip install 'eqxlint[runtime]'" in out and repr(blocked) in out, out
