import pytest


jax = pytest.importorskip("jax")
import jax.extend.core  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from eqxlint.runtime import define_primitive, NonDifferentiableError  # noqa: E402


pytestmark = pytest.mark.jax


def _mm_impl(x, w, *, scale=1.0):
    return scale * (x @ w)


scaled_mm = define_primitive("test_scaled_mm", _mm_impl)
sincos = define_primitive(
    "test_sincos", lambda x: (jnp.sin(x), jnp.cos(x)), multiple_results=True
)


def _prims(jaxpr):
    out = []
    for eqn in jaxpr.eqns:
        out.append(eqn.primitive)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            out.extend(_prims(sub))
    return out


def _contains(fn, *args, prim):
    return any(p is prim for p in _prims(jax.make_jaxpr(fn)(*args).jaxpr))


def test_identity_and_eager_jit():
    x, w = jnp.ones((4, 3)), jnp.arange(15.0).reshape(3, 5)
    assert scaled_mm.primitive.name == "test_scaled_mm"
    jaxpr = jax.make_jaxpr(lambda x, w: scaled_mm(x, w, scale=2.0))(x, w)
    (eqn,) = jaxpr.jaxpr.eqns
    assert eqn.primitive is scaled_mm.primitive
    assert eqn.params["scale"] == 2.0
    assert jnp.allclose(scaled_mm(x, w, scale=2.0), 2 * x @ w)
    assert jnp.allclose(jax.jit(lambda x, w: scaled_mm(x, w, scale=2.0))(x, w), 2 * x @ w)


def test_shape_dtype_polymorphism():
    for shape, dtype in [((2, 3), jnp.float32), ((5, 3), jnp.float16), ((1, 3), jnp.int32)]:
        x = jnp.ones(shape, dtype)
        w = jnp.ones((3, 4), dtype)
        out = jax.jit(lambda x, w: scaled_mm(x, w, scale=1))(x, w)
        assert out.shape == (shape[0], 4) and out.dtype == dtype


def test_static_params_must_be_hashable():
    with pytest.raises(TypeError, match="not hashable"):
        scaled_mm(jnp.ones((1, 3)), jnp.ones((3, 2)), scale=[1.0])


def test_derived_jvp_grad_vmap():
    x, w = jnp.arange(12.0).reshape(4, 3) / 10, jnp.arange(15.0).reshape(3, 5) / 10
    f = lambda x, w: jnp.sum(jnp.sin(scaled_mm(x, w, scale=2.0)))
    g = lambda x, w: jnp.sum(jnp.sin(_mm_impl(x, w, scale=2.0)))
    for a, b in zip(jax.grad(f, (0, 1))(x, w), jax.grad(g, (0, 1))(x, w)):
        assert jnp.allclose(a, b, rtol=1e-5)
    _, t = jax.jvp(lambda x: scaled_mm(x, w), (x,), (jnp.ones_like(x),))
    assert jnp.allclose(t, jnp.ones_like(x) @ w)
    xs = jnp.arange(24.0).reshape(2, 4, 3)
    out = jax.vmap(lambda x: scaled_mm(x, w))(xs)
    assert jnp.allclose(out, xs @ w)
    # derived batching re-binds the same primitive (macro op preserved)
    assert _contains(jax.vmap(lambda x: scaled_mm(x, w)), xs, prim=scaled_mm.primitive)
    # batch axis not at the front; nested vmap; vmap of grad; grad of vmap
    out = jax.vmap(lambda w: scaled_mm(x, w), in_axes=1)(jnp.stack([w, 2 * w], axis=1))
    assert jnp.allclose(out[1], 2 * x @ w)
    out = jax.vmap(jax.vmap(lambda x: scaled_mm(x, w)))(xs[None])
    assert jnp.allclose(out[0], xs @ w)
    gv = jax.vmap(jax.grad(lambda w, x: f(x, w)), in_axes=(None, 0))(w, xs)
    assert jnp.allclose(gv[1], jax.grad(lambda w: g(xs[1], w))(w), rtol=1e-4, atol=1e-3)
    gg = jax.grad(lambda w: jnp.sum(jax.vmap(lambda x: scaled_mm(x, w))(xs) ** 2))(w)
    assert jnp.allclose(gg, jax.grad(lambda w: jnp.sum((xs @ w) ** 2))(w), rtol=1e-5)


def test_derived_transpose_linear():
    x, w = jnp.arange(12.0).reshape(4, 3), jnp.arange(15.0).reshape(3, 5)
    (ct,) = jax.linear_transpose(lambda x: scaled_mm(x, w, scale=2.0), x)(jnp.ones((4, 5)))
    assert jnp.allclose(ct, 2 * jnp.ones((4, 5)) @ w.T)


def test_multiple_results():
    x = jnp.linspace(0, 1, 5)
    s, c = sincos(x)
    assert jnp.allclose(s, jnp.sin(x)) and jnp.allclose(c, jnp.cos(x))
    g = jax.grad(lambda x: jnp.sum(sincos(x)[0] * sincos(x)[1]))(x)
    assert jnp.allclose(g, jnp.cos(2 * x), atol=1e-6)
    s2, _ = jax.vmap(sincos)(jnp.stack([x, x]))
    assert s2.shape == (2, 5)
    assert _contains(jax.vmap(sincos), jnp.stack([x, x]), prim=sincos.primitive)


def test_non_differentiable_error():
    rnd = define_primitive("test_round", jnp.round, differentiable=False)
    assert jnp.allclose(jax.vmap(rnd)(jnp.array([[0.4, 1.6]])), jnp.array([[0.0, 2.0]]))
    with pytest.raises(NonDifferentiableError, match="test_round"):
        jax.grad(lambda x: rnd(x).sum())(jnp.ones(3))
    with pytest.raises(NonDifferentiableError, match="test_round"):
        jax.jvp(rnd, (jnp.ones(3),), (jnp.ones(3),))
    # stop_gradient makes it fine
    jax.grad(lambda x: (rnd(jax.lax.stop_gradient(x)) * x).sum())(jnp.ones(3))


def test_explicit_rules_rebind_primitive():
    # A linear "macro op" whose JVP, transpose and batching rules all re-bind primitives,
    # so the macro op survives grad and vmap.
    def mm_t_impl(g, w):
        return g @ w.T

    mm_t = define_primitive("test_mm_t", mm_t_impl)

    def jvp(primals, tangents):
        (x, w), (tx, tw) = primals, tangents
        return mm(x, w), mm(tx, w) + mm(x, tw)

    def transpose(ct, x, w):
        # linear in x only when w is known
        assert isinstance(x, jax.ShapeDtypeStruct)
        return mm_t(ct, w), None

    def batching(args, axes):
        x, w = args
        ax, aw = axes
        assert aw is None
        x = jnp.moveaxis(x, ax, 0)
        b, n, k = x.shape
        return mm(x.reshape(b * n, k), w).reshape(b, n, -1), 0

    mm = define_primitive(
        "test_mm_explicit", lambda x, w: x @ w, jvp=jvp, transpose=transpose, batching=batching
    )
    x, w = jnp.arange(12.0).reshape(4, 3), jnp.arange(15.0).reshape(3, 5)
    loss = lambda x: jnp.sum(mm(x, w) ** 2)
    assert jnp.allclose(jax.grad(loss)(x), jax.grad(lambda x: jnp.sum((x @ w) ** 2))(x))
    assert _contains(jax.grad(loss), x, prim=mm.primitive)
    assert _contains(jax.grad(loss), x, prim=mm_t.primitive)
    xs = jnp.stack([x, 2 * x], axis=2)
    out = jax.vmap(lambda x: mm(x, w), in_axes=2)(xs)
    assert jnp.allclose(out[1], 2 * x @ w)
    jaxpr = jax.make_jaxpr(jax.vmap(lambda x: mm(x, w), in_axes=2))(xs)
    assert [e.primitive for e in jaxpr.jaxpr.eqns].count(mm.primitive) == 1


def test_explicit_jvp_under_derived_batching():
    def jvp(primals, tangents):
        (x,), (tx,) = primals, tangents
        return cube(x), 3 * x**2 * tx

    cube = define_primitive("test_cube", lambda x: x**3, jvp=jvp, transpose=None)
    xs = jnp.arange(6.0).reshape(2, 3)
    g = jax.vmap(jax.grad(lambda x: cube(x).sum()))(xs)
    assert jnp.allclose(g, 3 * xs**2)
    _, t = jax.jvp(jax.vmap(cube), (xs,), (jnp.ones_like(xs),))
    assert jnp.allclose(t, 3 * xs**2)


def test_transpose_none_error():
    def jvp(primals, tangents):
        (x,), (tx,) = primals, tangents
        return lin(x), lin(tx)

    lin = define_primitive("test_lin_no_t", lambda x: 2 * x, jvp=jvp, transpose=None)
    assert jnp.allclose(jax.jvp(lin, (jnp.ones(2),), (jnp.ones(2),))[1], 2.0)
    with pytest.raises(TypeError, match="test_lin_no_t.*transpose=None"):
        jax.grad(lambda x: lin(x).sum())(jnp.ones(2))


def test_derived_transpose_of_nonlinear_is_clear():
    sq = define_primitive("test_sq", lambda x: x**2)
    with pytest.raises(TypeError, match="test_sq"):
        jax.linear_transpose(sq, jnp.ones(2))(jnp.ones(2))
