"""`filter_switch`: the `lax.switch` analogue of `filter_cond`."""

import pytest


jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import jax.numpy as jnp  # noqa: E402

from eqxlint.runtime import filter_switch, StaticOutputMismatchError  # noqa: E402


pytestmark = pytest.mark.jax


class _Layer(eqx.Module):
    w: jax.Array
    act: object = eqx.field(static=True)


def _branches():
    return [
        lambda x, fn, n: (fn(x) + n, "tag", fn),
        lambda x, fn, n: (fn(-x) - n, "tag", fn),
        lambda x, fn, n: (2 * x, "tag", fn),
    ]


@pytest.mark.parametrize("index, expected", [(0, [4.0, 5.0]), (1, [-3.0, -3.0]), (2, [2.0, 4.0])])
def test_filter_switch_traced_index_static_operands_and_outputs(index, expected):
    act = jax.nn.relu

    @eqx.filter_jit
    def f(i, x):
        return filter_switch(i, _branches(), x, act, 3)

    y, tag, fn = f(jnp.array(index), jnp.array([1.0, 2.0]))
    assert tag == "tag" and fn is act
    assert jnp.allclose(y, jnp.array(expected))


def test_filter_switch_clamps_like_lax_switch():
    x = jnp.array([1.0, 2.0])
    for index, branch in [(-5, 0), (7, 2), (jnp.array(9), 2)]:
        y, _, _ = filter_switch(index, _branches(), x, jax.nn.relu, 3)
        ref, _, _ = _branches()[branch](x, jax.nn.relu, 3)
        assert jnp.allclose(y, ref)


@pytest.mark.parametrize("index", [0, 1, 2, jnp.array(1)])
def test_filter_switch_under_disable_jit(index):
    with jax.disable_jit():
        y, tag, _ = filter_switch(index, _branches(), jnp.ones(2), jax.nn.relu, 3)
    assert tag == "tag"
    ref, _, _ = _branches()[int(index)](jnp.ones(2), jax.nn.relu, 3)
    assert jnp.allclose(y, ref)


def test_filter_switch_single_branch_and_module():
    out = filter_switch(jnp.array(0), [lambda m: _Layer(m.w * 2, m.act)], _Layer(jnp.ones(2), jnp.tanh))
    assert isinstance(out, _Layer) and out.act is jnp.tanh and jnp.allclose(out.w, 2.0)


def test_filter_switch_mismatch_names_branch_and_path():
    branches = [
        lambda x: _Layer(x, jnp.tanh),
        lambda x: _Layer(x, jnp.tanh),
        lambda x: _Layer(x, jax.nn.relu),
    ]
    with pytest.raises(StaticOutputMismatchError) as info:
        jax.jit(lambda i, x: filter_switch(i, branches, x))(1, jnp.ones(2))
    msg = str(info.value)
    assert "filter_switch" in msg
    assert "at .act (static field):" in msg and "(branches[0]) !=" in msg and "(branches[2])" in msg, msg
    assert "branches[1]" not in msg  # branch 1 agrees with branch 0
    with pytest.raises(StaticOutputMismatchError, match=r"at \[1\]: None \(branches\[0\]\) != array float32\[2\] \(branches\[1\]\)"):
        filter_switch(0, [lambda x: (x, None), lambda x: (x, x)], jnp.ones(2))


def test_filter_switch_grad_and_vmap():
    branches = [lambda x: (jnp.sin(x), 1), lambda x: (x**2, 1), lambda x: (-x, 1)]

    def f(i, x):
        return filter_switch(i, branches, x)[0]

    assert jnp.allclose(jax.grad(lambda x: f(0, x))(0.5), jnp.cos(0.5))
    assert jnp.allclose(jax.grad(lambda x: f(jnp.array(1), x))(0.5), 1.0)
    out = jax.vmap(f)(jnp.array([0, 1, 2]), jnp.array([0.5, 0.5, 0.5]))
    assert jnp.allclose(out, jnp.array([jnp.sin(0.5), 0.25, -0.5]))


def test_filter_switch_rejects_empty_and_non_integer_index():
    with pytest.raises(ValueError, match="at least one branch"):
        filter_switch(0, [], jnp.ones(2))
    with pytest.raises(TypeError):
        filter_switch(jnp.array(0.5), [lambda x: x, lambda x: x], jnp.ones(2))
