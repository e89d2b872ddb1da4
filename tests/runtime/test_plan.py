import pytest


jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402

from eqxlint.runtime import checkpoint_plan, checkpointed_grad  # noqa: E402


pytestmark = pytest.mark.jax

D = 8


def _loss(W, init, xs):
    @jax.jit
    def inner(W, init, xs):
        return jax.lax.scan(lambda c, x: (jnp.tanh(c @ W + x), jnp.sum(c)), init, xs)

    c, ys = inner(W, init, xs)
    return jnp.sum(c) + jnp.sum(jnp.sin(ys))


def _args(n=200):
    k1, k2 = jr.split(jr.key(0))
    return jr.normal(k1, (D, D)) / 4, jnp.ones((D, D)), jr.normal(k2, (n, D, D)) / 4


def test_plan_reports_sizes():
    plan = checkpoint_plan(_loss, *_args())
    assert plan.ok and plan.reason is None
    (scan,) = plan.scans
    carry = D * D * 4
    assert scan.length == 200 and scan.carry_bytes == carry
    # tanh(c @ W + x): reverse mode keeps the carry and the tanh output per step
    assert scan.per_step_bytes == 2 * carry
    assert scan.peak_bytes == 200 * 2 * carry
    assert scan.schedule and scan.planned_peak_bytes < scan.peak_bytes / 5
    assert plan.block_size == scan.block_size == scan.schedule[-1]
    assert plan.meta["block_size"] == plan.block_size
    assert plan.meta["peak_frontier"] == plan.planned_peak_bytes < plan.peak_bytes


def test_plan_memory_budget_prefers_fewer_levels():
    args = _args()
    big = checkpoint_plan(_loss, *args, memory_budget=10**9)
    small = checkpoint_plan(_loss, *args, memory_budget=1)
    assert len(big.scans[0].schedule) == 1  # "sqrt": fastest schedule that fits
    assert len(small.scans[0].schedule) > 1
    assert small.planned_peak_bytes <= big.planned_peak_bytes


def test_checkpointed_grad_matches_and_saves_memory():
    args = _args()
    g = checkpointed_grad(_loss, argnums=(0, 1, 2))
    ours = g(*args)
    ref = jax.grad(_loss, argnums=(0, 1, 2))(*args)
    assert g.fallback_reason is None and g.last_plan is not None and g.last_plan.ok
    for a, b in zip(ours, ref):
        assert jnp.allclose(a, b, rtol=1e-4, atol=1e-4)
    # under jit, with the compiled memory actually lower
    plain = jax.jit(jax.grad(_loss)).lower(*args).compile().memory_analysis()
    if plain is None:
        pytest.skip("no memory_analysis on this backend")
    ckpt = jax.jit(checkpointed_grad(_loss)).lower(*args).compile().memory_analysis()
    assert ckpt.temp_size_in_bytes < plain.temp_size_in_bytes / 4


def test_has_aux_and_reverse_scan():
    def loss(W, xs):
        c, ys = jax.lax.scan(lambda c, x: (jnp.sin(c * W + x), c), jnp.ones(3), xs, reverse=True)
        return jnp.sum(c) + jnp.sum(ys[0]), {"ys": ys}

    W, xs = jnp.array(0.7), jnp.linspace(0, 1, 90).reshape(30, 3)
    g = checkpointed_grad(loss, has_aux=True, min_length=4)
    (gw, aux) = g(W, xs)
    (rw, raux) = jax.grad(loss, has_aux=True)(W, xs)
    assert g.fallback_reason is None
    assert jnp.allclose(gw, rw, rtol=1e-5) and jnp.allclose(aux["ys"], raux["ys"])


def test_fallbacks_record_reason():
    g = checkpointed_grad(lambda x: jnp.sum(x**2))
    assert jnp.allclose(g(jnp.ones(3)), 2.0)
    assert "no lax.scan" in g.fallback_reason
    assert g.last_plan is not None and not g.last_plan.ok

    def short(x):
        return jax.lax.scan(lambda c, _: (c * x, None), 1.0, None, length=3)[0]

    g = checkpointed_grad(short)
    assert jnp.allclose(g(2.0), 3 * 2.0**2)
    assert "long enough" in g.fallback_reason

    def untraceable(x):
        if x > 0:  # Python control flow on a traced value
            return x
        return -x

    plan = checkpoint_plan(untraceable, jnp.array(1.0))
    assert not plan.ok and "could not capture" in plan.reason
