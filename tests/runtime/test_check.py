import pytest


jax = pytest.importorskip("jax")
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from eqxlint.runtime import (  # noqa: E402
    check_jvp,
    check_primitive,
    check_vjp,
    check_vmap,
    CheckFailure,
    define_primitive,
)


pytestmark = pytest.mark.jax

x = jnp.linspace(0.1, 1.0, 12).reshape(4, 3)
w = jnp.linspace(-1.0, 1.0, 15).reshape(3, 5)


def test_good_primitive_passes_all():
    op = define_primitive("chk_scaled_mm", lambda x, w, *, scale=1.0: scale * (x @ w))
    report = check_primitive(op, x, w, params={"scale": 2.0})
    assert report.ok, str(report)
    assert report["lowering"].status == "skipped"  # no lowering=: jit lowers impl
    assert [r.status for k, r in report.results.items() if k != "lowering"] == ["passed"] * 7
    assert report["jvp"].dtype == "float64" and report["jvp"].max_abs_error < 1e-6
    assert "linear in argument(s) [0, 1]" in report["transpose"].message
    assert set(report.max_errors) == {
        "lowering", "jvp", "vjp", "transpose", "vmap", "vmap_of_jvp", "jvp_of_vmap", "vmap_of_transpose"
    }
    report.raise_if_failed()


def test_multiple_results_and_nonlinear_skip():
    op = define_primitive("chk_sincos", lambda x: (jnp.sin(x), jnp.cos(x)), multiple_results=True)
    report = check_primitive(op, x)
    assert report.ok
    assert report["transpose"].status == "skipped"


def test_wrong_jvp_detected():
    bad = define_primitive("chk_bad_jvp", jnp.sin, jvp=lambda p, t: (bad(*p), jnp.sin(p[0]) * t[0]))
    report = check_primitive(bad, x)
    assert not report.ok
    assert report["jvp"].status == "failed" and report["vjp"].status == "failed"
    assert report["vmap"].status == "passed"
    with pytest.raises(CheckFailure, match="chk_bad_jvp"):
        report.raise_if_failed()
    with pytest.raises(CheckFailure):
        check_primitive(bad, x, raise_on_failure=True)


def test_wrong_transpose_detected():
    def jvp(p, t):
        return lin(*p), lin(*t)

    lin = define_primitive(
        "chk_bad_t", lambda x: 2.0 * x, jvp=jvp, transpose=lambda ct, x: (3.0 * ct,)
    )
    report = check_primitive(lin, x)
    assert report["transpose"].status == "failed"
    assert report["vjp"].status == "failed"
    assert report["jvp"].status == "passed"


def test_wrong_batching_detected():
    bb = define_primitive("chk_bad_b", jnp.sin, batching=lambda args, axes: (jnp.cos(args[0]), axes[0]))
    report = check_primitive(bb, x)
    assert report["vmap"].status == "failed" and "failed" in report["vmap"].message


def test_non_differentiable_skips():
    rnd = define_primitive("chk_round", jnp.round, differentiable=False)
    report = check_primitive(rnd, x)
    assert report.ok
    assert report["jvp"].status == "skipped" and "by design" in report["jvp"].message


def test_raw_jax_primitive():
    report = check_primitive(jax.lax.sin_p, x, params={"accuracy": None})
    assert report.ok, str(report)


def test_float32_mode():
    op = define_primitive("chk_tanh", jnp.tanh)
    report = check_primitive(op, x, x64=False)
    assert report.ok and report["jvp"].dtype == "float32"
    assert report["jvp"].rtol == 2e-3


def test_pytree_checks_under_filter_jit():
    def f(params, scale, name):
        assert isinstance(name, str)
        return {"y": jnp.tanh(params["w"] @ params["x"]) * scale, "name": name, "n": params["n"]}

    params = {"w": w.T, "x": jnp.ones(3), "n": 3}
    assert check_jvp(f, params, 2.0, "hi").ok
    assert check_vjp(f, params, 2.0, "hi").ok
    bad = eqx.filter_custom_jvp(lambda x: jnp.sin(x))
    bad.def_jvp(lambda primals, tangents: (jnp.sin(primals[0]), 2 * tangents[0]))
    r = check_jvp(bad, x)
    assert not r.ok and r["jvp"].max_abs_error > 0.1
    with pytest.raises(CheckFailure):
        check_vjp(bad, x, raise_on_failure=True)


def test_check_vmap():
    def f(x, w, tag):
        return x @ w, tag

    xs = jnp.stack([x, 2 * x, 3 * x])
    report = check_vmap(f, xs, w, "t", in_axes=(0, None, None))
    assert report.ok and report["vmap"].max_abs_error < 1e-5
    assert check_vmap(lambda x: x - jnp.mean(x), xs).ok

    @jax.custom_batching.custom_vmap
    def wrong(x):
        return jnp.sin(x)

    @wrong.def_vmap
    def _(axis_size, in_batched, x):
        return jnp.cos(x), True

    assert not check_vmap(wrong, xs).ok
