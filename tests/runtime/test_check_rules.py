"""The checkers of issue 14: missing rules, `params=`, false passes, false failures,
reports, lowerings, compositions, and sensitivity to exactly one wrong rule.

Every test runs on JAX's default backend (no device is hard-coded).
"""

import pytest


jax = pytest.importorskip("jax")
import jax.extend.core  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.interpreters import ad, batching, mlir  # noqa: E402

from eqxlint.runtime import (  # noqa: E402
    check_jvp,
    check_primitive,
    check_vjp,
    check_vmap,
    define_primitive,
)


pytestmark = pytest.mark.jax

x = jnp.linspace(0.1, 1.0, 12).reshape(4, 3)
w = jnp.linspace(-1.0, 1.0, 15).reshape(3, 5)


def _failed(report):
    return {k for k, r in report.results.items() if r.status == "failed"}


def _raw(name, fn, *, jvp=None, batch=True):
    """A hand-written primitive: impl, abstract eval, lowering, optional JVP, batching."""
    p = jax.extend.core.Primitive(name)
    p.def_impl(fn)
    p.def_abstract_eval(lambda a, **kw: jax.core.ShapedArray(a.shape, a.dtype))
    mlir.register_lowering(p, mlir.lower_fun(fn, multiple_results=False))
    if jvp is not None:
        ad.primitive_jvps[p] = jvp
    if batch:
        batching.defvectorized(p)
    return p


def _eqn(fn, *args):
    (eqn,) = [e for e in jax.make_jaxpr(fn)(*args).jaxpr.eqns]
    return eqn


# ---- raw primitives, missing and broken rules -----------------------------------------


def test_raw_primitive_of_a_defined_op():
    op = define_primitive("c14_sin", jnp.sin)
    report = check_primitive(op.primitive, x)
    assert report.ok, str(report)
    assert report["jvp"].status == "passed" and report["vmap"].status == "passed"


def _scale_p():
    # EQX302's example: a linear primitive whose JVP re-binds it, with no transpose rule.
    def scale_jvp(primals, tangents, *, c):
        (a,), (t,) = primals, tangents
        return p.bind(a, c=c), p.bind(t, c=c)

    p = _raw("c14_scale", lambda a, *, c: c * a, jvp=scale_jvp)
    return p


def test_missing_transpose_is_a_failed_entry():
    report = check_primitive(_scale_p(), x, params={"c": 2.0})
    assert report["transpose"].status == "failed"
    assert report["transpose"].message.startswith("missing: linear in argument(s) [0]")
    assert report["vjp"].status == "failed" and report["vjp"].message.startswith("missing")
    assert report["jvp"].status == "passed" and report["vmap"].status == "passed"
    assert report["lowering"].status == "passed"
    assert _failed(report) == {"transpose", "vjp"}
    assert "transpose          failed" in str(report)


def test_missing_and_broken_rules_are_failed_entries():
    d = lambda g, a: g * jnp.cos(a)
    no_batch = _raw("c14_nobatch", jnp.sin, batch=False)
    ad.defjvp(no_batch, d)
    report = check_primitive(no_batch, x)
    assert report["vmap"].status == "failed" and report["vmap"].message.startswith("missing")
    assert report["jvp"].status == "passed"

    broken = _raw("c14_broken_batch", jnp.sin, batch=False)
    ad.defjvp(broken, d)
    batching.primitive_batchers[broken] = lambda args, dims: 1 / 0
    report = check_primitive(broken, x)
    assert report["vmap"].status == "failed" and "ZeroDivisionError" in report["vmap"].message

    no_jvp = _raw("c14_nojvp", jnp.sin)
    report = check_primitive(no_jvp, x)
    assert report["jvp"].message.startswith("missing: no JVP rule")
    assert report["vjp"].status == "failed" and report["vmap"].status == "passed"
    assert report["vmap_of_jvp"].status == "skipped" and _failed(report) == {"jvp", "vjp"}
    report = check_primitive(no_jvp, x, skip=("jvp", "vjp"))
    assert report.ok and report["jvp"].status == "skipped"


# ---- params= --------------------------------------------------------------------------


def test_primitive_parameters_do_not_clash_with_checker_options():
    seen = []

    def layernorm(a, *, eps):
        seen.append(eps)
        mu = a.mean(-1, keepdims=True)
        return (a - mu) / jnp.sqrt(((a - mu) ** 2).mean(-1, keepdims=True) + eps)

    ln = define_primitive("c14_layernorm", layernorm)
    report = check_primitive(ln, x, params={"eps": 0.5}, skip=("vmap_of_jvp", "jvp_of_vmap"))
    assert report.ok, str(report)
    assert set(seen) == {0.5}  # the primitive got its eps ...
    assert report["jvp"].eps == 2.0**-20  # ... and the finite differences their own
    seen.clear()
    report = check_primitive(ln, x, params={"eps": 0.5}, eps=2.0**-18, skip=("vmap", "vmap_of_jvp", "jvp_of_vmap"))
    assert set(seen) == {0.5} and report["jvp"].eps == 2.0**-18


def test_old_call_style_is_a_clear_error():
    op = define_primitive("c14_scaled_mm", lambda a, b, *, scale=1.0: scale * (a @ b))
    with pytest.raises(TypeError, match=r"params=\{'scale': 2.0\}"):
        check_primitive(op, x, w, scale=2.0)
    with pytest.raises(ValueError, match="unknown check name"):
        check_primitive(op, x, w, skip=("jvps",))


# ---- false passes ---------------------------------------------------------------------


def _take_batch_first_index(args, axes):
    a, i = args
    ax, ai = axes
    size = a.shape[ax] if ax is not None else i.shape[ai]
    if ai is not None:
        i = jnp.take(i, 0, axis=ai)  # BUG: every batch element gets the first index
    if ax is None:
        return jnp.broadcast_to(a[i], (size,) + a.shape[1:]), 0
    return jnp.moveaxis(a, ax, 0)[:, i], 0


def test_integer_arguments_are_batched_with_different_values():
    good = define_primitive("c14_take", lambda a, i: a[i])
    bad = define_primitive("c14_take_bad", lambda a, i: a[i], batching=_take_batch_first_index)
    i = jnp.asarray(1, jnp.int32)
    skip = ("vjp", "transpose", "vmap_of_jvp", "vmap_of_transpose")
    assert check_primitive(good, x, i, skip=skip).ok
    report = check_primitive(bad, x, i, skip=skip)
    assert report["vmap"].status == "failed", str(report)
    assert "only argument 1" in report["vmap"].message
    assert report["jvp"].status == "passed"


def _mm_batch_shared_axis(args, axes):
    a, b = args
    ax, bx = axes
    if ax is not None and bx is not None:
        # BUG: moves b's batch axis as if it were at a's position
        a, b = jnp.moveaxis(a, ax, 0), jnp.moveaxis(b, ax, 0)
        return jnp.einsum("nij,njk->nik", a, b), 0
    if ax is not None:
        return jnp.einsum("nij,jk->nik", jnp.moveaxis(a, ax, 0), b), 0
    return jnp.einsum("ij,njk->nik", a, jnp.moveaxis(b, bx, 0)), 0


def test_mixed_batch_axes_per_argument():
    bad = define_primitive("c14_mm_bad_axes", lambda a, b: a @ b, batching=_mm_batch_shared_axis)
    only = ("jvp", "vjp", "transpose", "vmap_of_jvp", "jvp_of_vmap", "vmap_of_transpose")
    report = check_primitive(bad, x, w, skip=only)
    assert report["vmap"].status == "failed", str(report)
    assert "mixed axes (0, 1)" in report["vmap"].message
    # the cases the rule gets right
    assert "all on axis 0" not in report["vmap"].message
    good = define_primitive("c14_mm_axes", lambda a, b: a @ b)
    assert check_primitive(good, x, w, skip=only).ok


@jax.custom_vjp
def _sin_vjp_1pc(a):
    return jnp.sin(a)


_sin_vjp_1pc.defvjp(lambda a: (jnp.sin(a), jnp.cos(a)), lambda c, g: (1.01 * c * g,))


@pytest.mark.parametrize("n", [10, 1000])
def test_vjp_test_keeps_its_sensitivity_with_size(n):
    a = jnp.linspace(-1.0, 1.0, n * n).reshape(n, n)
    report = check_vjp(_sin_vjp_1pc, a)
    assert not report.ok and report["vjp"].max_rel_error > 1e-3, str(report)
    assert check_vjp(jnp.sin, a).ok


def test_vjp_sensitivity_in_float32():
    a = jnp.linspace(-1.0, 1.0, 300 * 300).reshape(300, 300)
    assert not check_vjp(_sin_vjp_1pc, a, x64=False).ok
    assert check_vjp(jnp.sin, a, x64=False).ok


@jax.custom_jvp
def _square_drops_imag_tangent(z):
    return z * z


@_square_drops_imag_tangent.defjvp
def _(primals, tangents):
    (z,), (t,) = primals, tangents
    return z * z, 2 * z * t.real  # BUG: only right for real tangents


@jax.custom_vjp
def _square_conj_vjp(z):
    return z * z


_square_conj_vjp.defvjp(lambda z: (z * z, z), lambda z, g: (jnp.conj(2 * z) * g,))

z = (jnp.linspace(-1.0, 1.0, 6) + 1j * jnp.linspace(0.5, 1.5, 6)).astype(jnp.complex64)


def test_complex_inputs_get_complex_tangents():
    assert check_jvp(lambda z: z * z, z).ok
    assert not check_jvp(_square_drops_imag_tangent, z).ok


def test_check_vjp_on_complex_inputs():
    for fn in (lambda z: z * z, jnp.conj, lambda z: jnp.abs(z) ** 2, lambda z: jnp.sin(z) * z.real):
        report = check_vjp(fn, z)
        assert report.ok, str(report)
    assert not check_vjp(_square_conj_vjp, z).ok
    op = define_primitive("c14_csq", lambda z: z * jnp.conj(z) + z)
    assert check_primitive(op, z, skip=("vmap_of_jvp", "jvp_of_vmap")).ok


# ---- false failures -------------------------------------------------------------------


def test_float64_check_of_a_float32_computation():
    f = lambda a: jnp.sin(a.astype(jnp.float32))
    for report in (check_jvp(f, jnp.ones(8)), check_vjp(f, jnp.ones(8))):
        result = next(iter(report.results.values()))
        assert report.ok, str(report)
        assert result.dtype == "float32" and "computes in float32" in result.message
    # inside a define_primitive op too: the checker looks into impl
    op = define_primitive("c14_f32_inside", lambda a: jnp.sin(a.astype(jnp.float32)).astype(a.dtype))
    report = check_primitive(op, jnp.ones(8), skip=("vmap_of_jvp", "jvp_of_vmap"))
    assert report.ok, str(report)
    assert report["jvp"].dtype == "float32"


def test_dot_general_with_preferred_element_type():
    eqn = _eqn(jnp.matmul, x, w)
    assert eqn.params["preferred_element_type"] == jnp.float32
    report = check_primitive(eqn.primitive, x, w, params=eqn.params)
    assert report.ok, str(report)


def test_bfloat16_without_x64():
    a = jnp.linspace(0.1, 2.0, 16).astype(jnp.bfloat16)
    assert check_jvp(jnp.sin, a, x64=False).ok
    assert check_vjp(jnp.tanh, a, x64=False).ok
    report = check_primitive(define_primitive("c14_bf16_sin", jnp.sin), a, x64=False)
    assert report.ok, str(report)
    assert report["jvp"].dtype == "bfloat16"


# ---- reports --------------------------------------------------------------------------


def test_failed_check_vmap_report_prints():
    report = check_vmap(lambda a, b: a + b, jnp.ones((3, 2)), jnp.ones((4, 2)))
    assert not report.ok
    text = str(report)
    assert "inconsistent batch sizes [3, 4]" in text


def test_in_axes_none_is_skipped():
    report = check_vmap(jnp.sin, jnp.ones((3, 2)), in_axes=None)
    assert report["vmap"].status == "skipped" and "set()" not in str(report)
    assert "nothing is batched" in report["vmap"].message


def test_no_float_inputs_is_skipped():
    for check in (check_jvp, check_vjp):
        report = check(lambda i: i * 2, jnp.arange(3))
        result = next(iter(report.results.values()))
        assert result.status == "skipped" and "no floating-point inputs" in result.message
        assert result.max_abs_error is None
    report = check_primitive(define_primitive("c14_int_double", lambda i: i * 2), jnp.arange(3))
    assert report["jvp"].status == "skipped" and report["vmap"].status == "passed"
    assert report.ok


# ---- lowering= ------------------------------------------------------------------------


def test_lower_fun_lowering_checked_against_impl():
    op = define_primitive("c14_softplus", lambda a: jnp.log1p(jnp.exp(a)), lowering=jax.nn.softplus)
    report = check_primitive(op, x)
    assert report.ok, str(report)
    assert report["lowering"].status == "passed" and "vs impl" in report["lowering"].message


def _pallas_scaled_tanh(a, b, *, scale=1.0):
    from jax.experimental import pallas as pl

    def kernel(a_ref, b_ref, o_ref):
        o_ref[...] = scale * a_ref[...] * jnp.tanh(b_ref[...])

    return pl.pallas_call(kernel, out_shape=jax.ShapeDtypeStruct(a.shape, a.dtype), interpret=True)(a, b)


def test_pallas_lowering_checked_against_impl():
    pytest.importorskip("jax.experimental.pallas")
    op = define_primitive(
        "c14_pallas", lambda a, b, *, scale=1.0: scale * a * jnp.tanh(b), lowering=_pallas_scaled_tanh
    )
    report = check_primitive(op, x, 2 * x, params={"scale": 2.0}, skip=("vmap_of_jvp", "jvp_of_vmap"))
    assert report.ok, str(report)
    assert report["lowering"].status == "passed"


# ---- exactly one wrong rule of each kind ----------------------------------------------


def test_one_wrong_jvp_rule():
    def jvp(p, t):
        return bad(*p), 1.01 * jnp.cos(p[0]) * t[0]

    bad = define_primitive("c14_w_jvp", jnp.sin, jvp=jvp)
    assert _failed(check_primitive(bad, x)) == {"jvp", "vjp"}


def test_one_wrong_transpose_rule():
    bad = define_primitive("c14_w_t", lambda a: 2.0 * a, transpose=lambda ct, a: (2.02 * ct,))
    good = define_primitive("c14_r_t", lambda a: 2.0 * a, transpose=lambda ct, a: (2.0 * ct,))
    assert check_primitive(good, x).ok
    report = check_primitive(bad, x)
    assert _failed(report) == {"transpose"}, str(report)


def test_one_wrong_batching_rule():
    def batch(args, axes):
        return 1.01 * jnp.sin(jnp.moveaxis(args[0], axes[0], 0)), 0

    bad = define_primitive("c14_w_b", jnp.sin, batching=batch)
    assert _failed(check_primitive(bad, x)) == {"vmap", "vmap_of_jvp", "jvp_of_vmap"}


def test_one_wrong_lowering():
    bad = define_primitive("c14_w_low", jnp.sin, lowering=lambda a: jnp.sin(a) * (1 + 1e-3))
    report = check_primitive(bad, x)
    assert _failed(report) == {"lowering"}, str(report)
    pallas = define_primitive(
        "c14_w_pallas",
        lambda a, b, *, scale=1.0: scale * a * jnp.tanh(b),
        lowering=lambda a, b, *, scale=1.0: _pallas_scaled_tanh(a, b, scale=scale + 0.01),
    )
    report = check_primitive(pallas, x, x, skip=("vmap_of_jvp", "jvp_of_vmap"))
    assert _failed(report) == {"lowering"}, str(report)


# ---- compositions catch what the single checks cannot ---------------------------------


def test_vmap_of_jvp_and_jvp_of_vmap():
    # sin's JVP binds dsin, whose batching rule is wrong: vmap(sin) and jvp(sin) are right
    dsin = define_primitive(
        "c14_dsin", jnp.cos, batching=lambda args, axes: (jnp.cos(jnp.moveaxis(args[0], axes[0], 0)) + 0.01, 0)
    )
    op = define_primitive("c14_sin_dsin", jnp.sin, jvp=lambda p, t: (op(p[0]), dsin(p[0]) * t[0]))
    report = check_primitive(op, x)
    assert _failed(report) == {"vmap_of_jvp", "jvp_of_vmap"}, str(report)


def test_jvp_of_vmap_only():
    # the batching rule binds a helper whose JVP is wrong: only jvp(vmap(op)) meets it
    helper = define_primitive("c14_helper", jnp.sin, jvp=lambda p, t: (helper(p[0]), 1.01 * jnp.cos(p[0]) * t[0]))
    op = define_primitive(
        "c14_sin_helper", jnp.sin, batching=lambda args, axes: (helper(jnp.moveaxis(args[0], axes[0], 0)), 0)
    )
    report = check_primitive(op, x)
    assert _failed(report) == {"jvp_of_vmap"}, str(report)


def test_vmap_of_transpose():
    lin_t = define_primitive(
        "c14_lin_t", lambda c: 2.0 * c, batching=lambda args, axes: (2.02 * jnp.moveaxis(args[0], axes[0], 0), 0)
    )
    lin = define_primitive("c14_lin", lambda a: 2.0 * a, transpose=lambda ct, a: (lin_t(ct),))
    report = check_primitive(lin, x)
    assert _failed(report) == {"vmap_of_transpose"}, str(report)


# ---- passes on JAX's own primitives and custom_jvp functions --------------------------


@pytest.mark.parametrize(
    "fn, args",
    [
        (jnp.sin, (x,)),
        (lambda a, b: a * b, (x, 2 * x)),
        (jnp.matmul, (x, w)),
        (lambda a: jnp.cumsum(a, axis=0), (x,)),
    ],
    ids=["sin_p", "mul_p", "dot_general_p", "cumsum_p"],
)
def test_lax_primitives_pass(fn, args):
    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    (eqn,) = jaxpr.eqns
    if eqn.primitive.name == "jit":  # cumsum is wrapped in a jit
        (eqn,) = eqn.params["jaxpr"].jaxpr.eqns
    report = check_primitive(eqn.primitive, *args, params=eqn.params)
    assert report.ok, str(report)
    assert report["jvp"].status == "passed" and report["vmap"].status == "passed"


@pytest.mark.parametrize(
    "fn",
    [jax.nn.relu, jax.nn.softplus, lambda a: jax.nn.logsumexp(a, axis=-1)],
    ids=["relu", "softplus", "logsumexp"],
)
def test_jax_custom_jvp_functions_pass(fn):
    a = jnp.linspace(-1.05, 1.0, 12).reshape(4, 3)  # no zeros: relu is smooth here
    assert check_jvp(fn, a).ok
    assert check_vjp(fn, a).ok
    assert check_vmap(fn, jnp.stack([a, 2 * a])).ok
    op = define_primitive(f"c14_{getattr(fn, '__name__', 'lse')}", fn)
    report = check_primitive(op, a, skip=("vmap_of_jvp", "jvp_of_vmap"))
    assert report.ok, str(report)


# ---- PyTree arguments -----------------------------------------------------------------


def test_check_primitive_on_pytree_arguments_and_outputs():
    def dense(p, a, *, act="tanh"):
        y = a @ p["w"] + p["b"]
        return {"y": getattr(jnp, act)(y), "pre": y}

    op = define_primitive("c14_dense", dense, multiple_results=True)
    p = {"w": w[:, :2], "b": jnp.array([0.1, -0.2])}
    report = check_primitive(op, p, x, params={"act": "sin"}, skip=("vmap_of_jvp", "jvp_of_vmap"))
    assert report.ok, str(report)
    assert "7 batching cases" in report["vmap"].message  # per leaf: w, b and x

    def bad_jvp(primals, tangents):
        (p, a), (tp, ta) = primals, tangents
        y = a @ p["w"] + p["b"]
        dy = ta @ p["w"] + a @ tp["w"]  # BUG: forgets the bias's tangent
        return {"y": jnp.sin(y), "pre": y}, {"y": jnp.cos(y) * dy, "pre": dy}

    bad = define_primitive("c14_dense_bad", dense, jvp=bad_jvp, multiple_results=True)
    report = check_primitive(bad, p, x, params={"act": "sin"}, skip=("vmap_of_jvp", "jvp_of_vmap"))
    assert _failed(report) == {"jvp", "vjp"}, str(report)


def test_an_exception_is_reported_without_error_figures():
    op = define_primitive("c14_bad_reshape", lambda a: a.reshape(-1, 5))
    report = check_primitive(op, x, skip=("vmap_of_jvp", "jvp_of_vmap"))
    assert report["jvp"].status == "failed" and report["jvp"].max_abs_error is None
    assert "cannot reshape" in report["jvp"].message
    assert report["vmap"].status == "failed" and report["vmap"].max_abs_error is None
    assert "max abs err" not in str(report).split("\n")[2]


def test_float32_matmul_precision_on_accelerators():
    # GPUs compute default-precision float32 matmuls in TF32, TPUs with bfloat16 passes:
    # the checker picks tolerances for that, not for float32.
    from jax import lax

    from eqxlint.runtime._tolerance import reduced_matmul_precision

    a = jnp.ones((2, 2), jnp.float32)

    def eqn(precision=None, dtype=jnp.float32):
        return _eqn(lambda a: jnp.dot(a, a, precision=precision), a.astype(dtype))

    assert reduced_matmul_precision(eqn(), "cpu") is None
    assert reduced_matmul_precision(eqn(), "gpu") == "tf32"
    assert reduced_matmul_precision(eqn(), "tpu") == "bfloat16"
    assert reduced_matmul_precision(eqn("highest"), "gpu") is None
    assert reduced_matmul_precision(eqn(lax.Precision.HIGH), "tpu") == "tf32"
    assert reduced_matmul_precision(eqn("F32_F32_F32"), "gpu") is None
    assert reduced_matmul_precision(eqn("BF16_BF16_F32"), "gpu") == "bfloat16"
    assert reduced_matmul_precision(eqn(dtype=jnp.bfloat16), "gpu") is None  # its own dtype says it
    with jax.default_matmul_precision("float32"):
        assert reduced_matmul_precision(eqn(), "gpu") is None
    with jax.default_matmul_precision("tensorfloat32"):
        assert reduced_matmul_precision(eqn(), "tpu") == "tf32"
