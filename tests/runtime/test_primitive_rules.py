"""`define_primitive`: raw binds, aval metadata, validation, PyTrees, named axes, lowering.

Each test here reproduces a problem of issue 14 (or a feature it asks for); all run on
JAX's default backend.
"""

import pytest


jax = pytest.importorskip("jax")
import jax.extend.core  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

from eqxlint.runtime import define_primitive, PrimitiveRuleError  # noqa: E402


pytestmark = pytest.mark.jax

my_sin = define_primitive("t14_my_sin", jnp.sin)


def _eqns(fn, *args):
    return jax.make_jaxpr(fn)(*args).jaxpr.eqns


def _other_platform():
    here = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}.get(jax.default_backend())
    return "tpu" if here != "tpu" else "cpu"


# ---- raw primitive --------------------------------------------------------------------


def test_raw_bind_and_rebind_from_jaxpr():
    x = jnp.linspace(0.0, 1.0, 5)
    assert jnp.allclose(my_sin.primitive.bind(x), jnp.sin(x))
    assert jnp.allclose(jax.jit(my_sin.primitive.bind)(x), jnp.sin(x))
    (eqn,) = _eqns(my_sin, x)
    assert eqn.primitive is my_sin.primitive and eqn.params == {}
    assert jnp.allclose(eqn.primitive.bind(x, **eqn.params), jnp.sin(x))
    # the raw primitive's transformations work too
    assert jnp.allclose(jax.grad(lambda x: my_sin.primitive.bind(x).sum())(x), jnp.cos(x))
    assert jnp.allclose(jax.vmap(my_sin.primitive.bind)(x[:, None]), jnp.sin(x)[:, None])


def test_reserved_parameter_names():
    with pytest.raises(ValueError, match="reserved"):
        my_sin(jnp.ones(2), _eqxlint_vmap=())


# ---- aval metadata --------------------------------------------------------------------


def test_weak_type_is_kept_under_jit():
    eager = my_sin(1.0) + jnp.float16(1)
    jitted = jax.jit(lambda: my_sin(1.0) + jnp.float16(1))()
    assert eager.dtype == jnp.float16
    assert jitted.dtype == eager.dtype
    assert jax.make_jaxpr(lambda x: my_sin(x))(1.0).out_avals[0].weak_type


def _one_device_mesh():
    return jax.make_mesh((1,), ("i",), devices=jax.devices()[:1])


@pytest.mark.parametrize("jit", [False, True])
def test_grad_and_jvp_inside_shard_map(jit):
    mesh = _one_device_mesh()
    x = jax.device_put(jnp.linspace(0.0, 1.0, 4), NamedSharding(mesh, P("i")))

    def grad_fn(x):
        return jax.grad(lambda x: my_sin(x).sum())(x)

    def jvp_fn(x):
        return jax.jvp(my_sin, (x,), (jnp.ones_like(x),))[1]

    def vjp_fn(x):
        y, pullback = jax.vjp(lambda x: my_sin(2.0 * x), x)
        return pullback(jnp.ones_like(y))[0]

    for fn, want in [(grad_fn, jnp.cos(x)), (jvp_fn, jnp.cos(x)), (vjp_fn, 2 * jnp.cos(2 * x))]:
        sm = jax.shard_map(fn, mesh=mesh, in_specs=P("i"), out_specs=P("i"))
        out = jax.jit(sm)(x) if jit else sm(x)
        assert jnp.allclose(out, want, atol=1e-6)


# ---- output validation ----------------------------------------------------------------


def test_dict_output_with_multiple_results():
    op = define_primitive(
        "t14_dict_out", lambda x: {"s": jnp.sin(x), "c": jnp.cos(x)}, multiple_results=True
    )
    x = jnp.linspace(0.0, 1.0, 3)
    for out in (op(x), jax.jit(op)(x)):
        assert isinstance(out, dict) and set(out) == {"s", "c"}
        assert jnp.allclose(out["s"], jnp.sin(x)) and jnp.allclose(out["c"], jnp.cos(x))
    g = jax.grad(lambda x: (op(x)["s"] * op(x)["c"]).sum())(x)
    assert jnp.allclose(g, jnp.cos(2 * x), atol=1e-6)
    out = jax.vmap(op)(jnp.stack([x, 2 * x]))
    assert jnp.allclose(out["c"][1], jnp.cos(2 * x))


def test_tuple_output_without_multiple_results_is_an_error():
    op = define_primitive("t14_tuple_out", lambda x: (jnp.sin(x), jnp.cos(x)))
    x = jnp.ones(3)
    with pytest.raises(PrimitiveRuleError, match="t14_tuple_out.*multiple_results=True"):
        op(x)
    with pytest.raises(PrimitiveRuleError, match="t14_tuple_out.*multiple_results=True"):
        jax.jit(op)(x)


def test_non_array_output_leaf_is_an_error():
    op = define_primitive("t14_str_out", lambda x: (x, "tag"), multiple_results=True)
    with pytest.raises(PrimitiveRuleError, match="t14_str_out.*non-array"):
        jax.jit(op)(jnp.ones(2))


def test_explicit_jvp_wrong_tangent_shape_is_an_error():
    def jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return op(x), jnp.sum(jnp.cos(x) * t)  # shape () instead of (3,)

    op = define_primitive("t14_bad_jvp_shape", jnp.sin, jvp=jvp)
    x = jnp.ones(3)
    with pytest.raises(PrimitiveRuleError, match=r"t14_bad_jvp_shape.*jvp rule.*tangent.*float32\[3\]"):
        jax.jvp(op, (x,), (x,))
    with pytest.raises(PrimitiveRuleError, match="t14_bad_jvp_shape"):
        jax.grad(lambda x: op(x).sum())(x)


def test_explicit_jvp_wrong_tangent_dtype_is_an_error():
    def jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return op(x), (jnp.cos(x) * t).astype(jnp.float16)

    op = define_primitive("t14_bad_jvp_dtype", jnp.sin, jvp=jvp)
    with pytest.raises(PrimitiveRuleError, match="t14_bad_jvp_dtype.*float16"):
        jax.jvp(op, (jnp.ones(3),), (jnp.ones(3),))


def test_explicit_batching_and_transpose_outputs_are_validated():
    bad_b = define_primitive(
        "t14_bad_batch", jnp.sin, batching=lambda args, axes: (jnp.sin(args[0]).sum(0), 0)
    )
    with pytest.raises(PrimitiveRuleError, match="t14_bad_batch.*batching rule"):
        jax.vmap(bad_b)(jnp.ones((2, 3)))

    def jvp(p, t):
        return lin(*p), lin(*t)

    lin = define_primitive(
        "t14_bad_t", lambda x: 2.0 * x, jvp=jvp, transpose=lambda ct, x: (ct.sum(),)
    )
    with pytest.raises(PrimitiveRuleError, match=r"t14_bad_t.*transpose rule.*float32\[3\]"):
        jax.grad(lambda x: lin(x).sum())(jnp.ones(3))


# ---- PyTree inputs and outputs --------------------------------------------------------


def _layer(params, x, *, act="tanh"):
    y = x @ params["w"] + params["b"]
    return {"y": getattr(jnp, act)(y), "pre": y}


layer = define_primitive("t14_layer", _layer, multiple_results=True)


def test_pytree_inputs_and_outputs():
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2), "b": jnp.array([0.1, -0.2])}
    x = jnp.linspace(0.0, 1.0, 12).reshape(4, 3)
    out = layer(params, x, act="sin")
    ref = _layer(params, x, act="sin")
    assert jnp.allclose(out["y"], ref["y"]) and jnp.allclose(out["pre"], ref["pre"])
    (eqn,) = _eqns(lambda p, x: layer(p, x), params, x)
    assert eqn.primitive is layer.primitive and len(eqn.invars) == 3 and len(eqn.outvars) == 2
    # re-binding from the jaxpr works on the flat operands
    flat = eqn.primitive.bind(*jax.tree_util.tree_leaves((params, x)), **eqn.params)
    assert len(flat) == 2
    loss = lambda p, x: layer(p, x)["y"].sum()
    ref_loss = lambda p, x: _layer(p, x)["y"].sum()
    for got, want in zip(
        jax.tree_util.tree_leaves(jax.grad(loss)(params, x)),
        jax.tree_util.tree_leaves(jax.grad(ref_loss)(params, x)),
    ):
        assert jnp.allclose(got, want, atol=1e-6)
    xs = jnp.stack([x, 2 * x])
    out = jax.jit(jax.vmap(layer, in_axes=(None, 0)))(params, xs)
    assert jnp.allclose(out["y"][1], _layer(params, 2 * x)["y"], atol=1e-6)


def test_pytree_explicit_rules():
    def jvp(primals, tangents):
        (p, x), (tp, tx) = primals, tangents
        assert set(p) == {"w", "b"} and set(tp) == {"w", "b"}
        y = x @ p["w"] + p["b"]
        dy = tx @ p["w"] + x @ tp["w"] + tp["b"]
        return {"y": jnp.tanh(y), "pre": y}, {"y": dy / jnp.cosh(y) ** 2, "pre": dy}

    op = define_primitive("t14_layer_jvp", _layer, jvp=jvp, multiple_results=True)
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    x = jnp.linspace(0.0, 1.0, 6).reshape(2, 3)
    g = jax.grad(lambda p: op(p, x)["y"].sum())(params)
    g_ref = jax.grad(lambda p: _layer(p, x)["y"].sum())(params)
    assert jnp.allclose(g["w"], g_ref["w"], atol=1e-6)


def test_non_array_argument_leaf_is_an_error():
    with pytest.raises(TypeError, match="t14_my_sin.*keyword parameters"):
        my_sin("x")


# ---- named axes -----------------------------------------------------------------------


def test_collective_in_impl_under_named_vmap():
    op = define_primitive("t14_center", lambda x: x - jax.lax.pmean(x, "batch"))
    xs = jnp.arange(12.0).reshape(4, 3)
    want = xs - xs.mean(0)
    assert jnp.allclose(jax.vmap(op, axis_name="batch")(xs), want)
    assert jnp.allclose(jax.jit(jax.vmap(op, axis_name="batch"))(xs), want)
    (eqn,) = _eqns(jax.vmap(op, axis_name="batch"), xs)
    assert eqn.primitive is op.primitive
    g = jax.grad(lambda xs: (jax.vmap(op, axis_name="batch")(xs) ** 2).sum())(xs)
    assert jnp.allclose(g, 2 * want, atol=1e-5)
    # an inner, unnamed vmap under the named one
    out = jax.vmap(jax.vmap(op, in_axes=1, out_axes=1), axis_name="batch")(xs[:, :, None])
    assert jnp.allclose(out[..., 0], want)


def test_spmd_axis_name_is_passed_through():
    op = define_primitive("t14_spmd", lambda x: x * 2.0)
    (eqn,) = _eqns(jax.vmap(op, spmd_axis_name="i"), jnp.ones((2, 3)))
    (level,) = eqn.params["_eqxlint_vmap"]
    assert level.spmd_name == ("i",) and level.name is None


# ---- lowering= ------------------------------------------------------------------------


def _softplus_reference(x):
    return jnp.log1p(jnp.exp(x))


def test_lowering_with_lower_fun():
    # impl: the plain formula (reference, and what every rule is derived from);
    # lowering: a stable formulation, lowered with mlir.lower_fun.
    op = define_primitive("t14_softplus", _softplus_reference, lowering=jax.nn.softplus)
    assert set(op.lowering) == {"cpu", "cuda", "rocm", "tpu"}
    x = jnp.array([-3.0, 0.0, 2.0, 100.0])
    assert jnp.isinf(_softplus_reference(x)[-1])  # the reference overflows ...
    y = jax.jit(op)(x)
    assert jnp.allclose(y, jax.nn.softplus(x)) and jnp.isfinite(y[-1])  # ... the lowering doesn't
    assert jnp.allclose(op(x), y)  # eager calls run the lowering too
    g = jax.grad(lambda x: op(x).sum())(x[:3])  # the derivative is derived from impl
    assert jnp.allclose(g, jax.nn.sigmoid(x[:3]), atol=1e-6)
    assert jnp.allclose(jax.vmap(op)(x[:, None])[:, 0], y)


def test_lowering_is_used_per_platform():
    here = {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu"}[jax.default_backend()]
    x = jnp.linspace(0.0, 1.0, 4)
    used = define_primitive("t14_low_here", jnp.sin, lowering={here: lambda x: jnp.sin(x) + 1.0})
    assert jnp.allclose(jax.jit(used)(x), jnp.sin(x) + 1.0)
    unused = define_primitive(
        "t14_low_other", jnp.sin, lowering={_other_platform(): lambda x: jnp.sin(x) + 1.0}
    )
    assert jnp.allclose(jax.jit(unused)(x), jnp.sin(x))
    with pytest.raises(ValueError, match="unknown lowering platform 'metal'"):
        define_primitive("t14_low_bad", jnp.sin, lowering={"metal": jnp.sin})


def test_lowering_output_is_validated():
    op = define_primitive("t14_low_shape", jnp.sin, lowering=lambda x: jnp.sin(x).sum())
    with pytest.raises(PrimitiveRuleError, match=r"t14_low_shape.*lowering.*float32\[4\]"):
        jax.jit(op)(jnp.ones(4))


_kernel_traces = []


def _pallas_scaled_tanh(x, y, *, scale=1.0):
    from jax.experimental import pallas as pl

    def kernel(x_ref, y_ref, o_ref):
        _kernel_traces.append(x_ref.shape)
        o_ref[...] = scale * x_ref[...] * jnp.tanh(y_ref[...])

    out = jax.ShapeDtypeStruct(x.shape, x.dtype)
    return pl.pallas_call(kernel, out_shape=out, interpret=True)(x, y)


def test_lowering_with_pallas_kernel():
    pytest.importorskip("jax.experimental.pallas")
    op = define_primitive(
        "t14_pallas_tanh",
        lambda x, y, *, scale=1.0: scale * x * jnp.tanh(y),
        lowering=_pallas_scaled_tanh,
    )
    x = jnp.linspace(-1.0, 1.0, 32).reshape(4, 8)
    y = jnp.linspace(0.5, 2.0, 32).reshape(4, 8)
    want = 2.0 * x * jnp.tanh(y)
    _kernel_traces.clear()
    assert jnp.allclose(jax.jit(lambda x, y: op(x, y, scale=2.0))(x, y), want, atol=1e-6)
    assert _kernel_traces == [(4, 8)]  # jit lowered the Pallas kernel, not impl
    jaxpr = jax.make_jaxpr(lambda x, y: op(x, y, scale=2.0))(x, y)
    assert [e.primitive for e in jaxpr.jaxpr.eqns] == [op.primitive]
    out = jax.vmap(lambda x, y: op(x, y, scale=2.0), in_axes=(0, 1))(
        jnp.stack([x, -x]), jnp.stack([y, y], axis=1)
    )
    assert jnp.allclose(out[1], -want, atol=1e-6)
    g = jax.grad(lambda x: op(x, y, scale=2.0).sum())(x)
    assert jnp.allclose(g, 2.0 * jnp.tanh(y), atol=1e-6)


def test_lowering_under_disable_jit():
    op = define_primitive("t14_low_nojit", lambda x: jnp.sin(x), lowering=lambda x: jnp.sin(x) + 1.0)
    x = jnp.linspace(0.0, 1.0, 3)
    with jax.disable_jit():
        assert jnp.allclose(op(x), jnp.sin(x) + 1.0)  # the lowering, run eagerly
        assert jnp.allclose(jax.vmap(op)(x[:, None])[:, 0], jnp.sin(x) + 1.0)


def test_multiple_results_with_a_collective_under_named_vmap():
    op = define_primitive(
        "t14_center_mean",
        lambda x: {"c": x - jax.lax.pmean(x, "b"), "m": jax.lax.pmean(x, "b")},
        multiple_results=True,
    )
    xs = jnp.arange(6.0).reshape(3, 2)
    out = jax.jit(jax.vmap(op, axis_name="b"))(xs)
    assert jnp.allclose(out["c"], xs - xs.mean(0)) and jnp.allclose(out["m"], xs.mean(0) + 0 * xs)
