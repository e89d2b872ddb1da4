"""Real JAX, on the default backend: the code the headline rules flag misbehaves, and the fixed
(or autofixed) code works. Each test lints the very source it runs, so the rule and the behaviour
are checked on the same text. The linter never runs code; these tests do, on purpose."""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
pytestmark = pytest.mark.jax

from helpers import fix, lint  # noqa: E402


_COUNTER = [0]


def run(source: str) -> dict:
    """Execute a snippet as a real module (dataclasses/Equinox need it in sys.modules)."""
    import sys
    import types

    _COUNTER[0] += 1
    mod = types.ModuleType(f"eqxlint_test_snippet_{_COUNTER[0]}")
    sys.modules[mod.__name__] = mod
    exec(compile(source, "<snippet>", "exec"), mod.__dict__)
    return mod.__dict__


def flagged(source: str, code: str) -> list:
    return [d.row for d in lint(source) if d.code == code]


# --------------------------------------------------------------------------- EQX209
PRINT_UNDER_JIT = '''
import jax
import jax.numpy as jnp

@jax.jit
def step(x):
    print("x =", x)
    return x * 2
'''


def test_eqx209_print_fires_at_trace_time_only_and_fix_prints_values(capsys):
    assert flagged(PRINT_UNDER_JIT, "EQX209") == [7]
    ns = run(PRINT_UNDER_JIT)
    ns["step"](jnp.arange(3.0))
    ns["step"](jnp.arange(3.0) + 1)
    out = capsys.readouterr().out
    assert out.count("x =") == 1  # once per trace, not per call
    assert "Tracer" in out or "Traced" in out  # a tracer, not the values

    fixed = fix(PRINT_UNDER_JIT, "EQX209")
    assert "jax.debug.print" in fixed and flagged(fixed, "EQX209") == []
    ns = run(fixed)
    ns["step"](jnp.arange(3.0))
    ns["step"](jnp.arange(3.0) + 1)
    jax.effects_barrier()
    out = capsys.readouterr().out
    assert out.count("x =") == 2  # every call
    assert "[0. 1. 2.]" in out and "[1. 2. 3.]" in out


# --------------------------------------------------------------------------- EQX101
RAW_JIT_ON_MODULE = '''
import equinox as eqx
import jax
import jax.numpy as jnp


class Scale(eqx.Module):
    weight: jax.Array
    activation: object


@jax.jit
def apply(model: Scale, x):
    return model.activation(model.weight * x)
'''


def test_eqx101_jit_on_module_fails_and_filter_jit_fix_works():
    pytest.importorskip("equinox")
    assert flagged(RAW_JIT_ON_MODULE, "EQX101") == [12]
    ns = run(RAW_JIT_ON_MODULE)
    model = ns["Scale"](jnp.ones(3), jnp.tanh)
    with pytest.raises(TypeError):  # a function is not a valid JAX type
        ns["apply"](model, jnp.ones(3))

    fixed = fix(RAW_JIT_ON_MODULE, "EQX101")
    assert "@eqx.filter_jit" in fixed and flagged(fixed, "EQX101") == []
    ns = run(fixed)
    model = ns["Scale"](jnp.ones(3), jnp.tanh)
    assert jnp.allclose(ns["apply"](model, jnp.ones(3)), jnp.tanh(1.0))


# --------------------------------------------------------------------------- EQX203
MISSING_THROW = '''
import jax
import jax.numpy as jnp
import lineax as lx


@jax.custom_jvp
def solve(A, b):
    return lx.linear_solve(lx.MatrixLinearOperator(A), b, lx.LU(), throw=False).value


@solve.defjvp
def solve_jvp(primals, tangents):
    A, b = primals
    dA, db = tangents
    x = solve(A, b)
    dx = lx.linear_solve(lx.MatrixLinearOperator(A), db - dA @ x, lx.LU(), throw=False).value
    return x, dx
'''


def test_eqx203_silent_tangent_failure_and_throw_fix_raises():
    pytest.importorskip("lineax")
    assert flagged(MISSING_THROW, "EQX203") == [17]
    singular = jnp.array([[1.0, 2.0], [2.0, 4.0]])
    b = jnp.array([1.0, 2.0])
    ns = run(MISSING_THROW)
    _, tangent = jax.jvp(lambda b: ns["solve"](singular, b), (b,), (b,))
    assert not bool(jnp.all(jnp.isfinite(tangent)))  # garbage, and nothing said so

    fixed = fix(MISSING_THROW, "EQX203")
    assert fixed.count("throw=True") == 1 and flagged(fixed, "EQX203") == []
    ns = run(fixed)
    with pytest.raises(Exception):  # the tangent solve now reports its failure
        jax.block_until_ready(jax.jvp(lambda b: ns["solve"](singular, b), (b,), (b,)))
    # and a well-posed solve still differentiates
    A = jnp.array([[3.0, 1.0], [1.0, 2.0]])
    _, t = jax.jvp(lambda b: ns["solve"](A, b), (b,), (b,))
    assert jnp.allclose(t, jnp.linalg.solve(A, b), atol=1e-5)


# --------------------------------------------------------------------------- EQX302
NO_TRANSPOSE = '''
import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

scale_p = Primitive("eqxlint_test_scale")
scale_p.def_impl(lambda x, *, c: x * c)
scale_p.def_abstract_eval(lambda x, *, c: jax.core.ShapedArray(x.shape, x.dtype))
mlir.register_lowering(scale_p, mlir.lower_fun(lambda x, *, c: x * c, multiple_results=False))
batching.defvectorized(scale_p)


def _scale_jvp(primals, tangents, *, c):
    (x,), (t,) = primals, tangents
    return scale_p.bind(x, c=c), scale_p.bind(ad.instantiate_zeros(t), c=c)


ad.primitive_jvps[scale_p] = _scale_jvp


def scale(x, c=2.0):
    return scale_p.bind(x, c=c)
'''

TRANSPOSE = '''

def _scale_transpose(ct, x, *, c):
    return [scale_p.bind(ct, c=c)]


ad.primitive_transposes[scale_p] = _scale_transpose
'''


def test_eqx302_grad_without_transpose_raises_and_registered_transpose_works():
    assert flagged(NO_TRANSPOSE, "EQX302") == [7]
    ns = run(NO_TRANSPOSE)
    x = jnp.arange(3.0)
    _, t = jax.jvp(ns["scale"], (x,), (jnp.ones(3),))  # forward mode works...
    assert jnp.allclose(t, 2.0)
    with pytest.raises(NotImplementedError, match="[Tt]ranspose"):  # ...reverse mode does not
        jax.grad(lambda x: ns["scale"](x).sum())(x)

    fixed = NO_TRANSPOSE + TRANSPOSE
    assert flagged(fixed, "EQX302") == []
    ns = run(fixed)
    assert jnp.allclose(jax.grad(lambda x: ns["scale"](x).sum())(x), 2.0)
