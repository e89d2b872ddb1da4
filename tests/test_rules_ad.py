"""Scenario tests for the AD rules (EQX201, EQX202, EQX205-EQX208, EQX210)."""

from __future__ import annotations

import ast

from helpers import codes, fix, lint, rows


def test_eqx208_follows_module_call_from_filter_grad():
    code = """
import equinox as eqx
import jax
from jax import lax

class Net(eqx.Module):
    w: jax.Array

    def __call__(self, x):
        return lax.while_loop(lambda c: c < 1.0, lambda c: c * self.w, x)

def loss(model: Net, x):
    return model(x)

grads = eqx.filter_grad(loss)
"""
    assert rows(code, "EQX208") == [10]


def test_eqx208_silent_when_only_jitted_or_inside_custom_vjp_chain():
    code = """
import equinox as eqx
import jax
from jax import lax

def inner(x):
    return lax.while_loop(lambda c: c < 1.0, lambda c: c * 2, x)

@eqx.filter_custom_vjp
def solve(vjp_arg, x):
    return inner(x)

def loss(x):
    return solve(x, x)

g = jax.grad(loss)
fast = jax.jit(inner)
"""
    assert "EQX208" not in codes(code)


def test_eqx208_traced_fori_bound_under_jit_grad():
    code = """
import jax
import jax.numpy as jnp
from jax import lax

@jax.jit
def step(params, n):
    def loss(p):
        return lax.fori_loop(0, n, lambda i, c: c * p, 1.0)
    return jax.grad(loss)(params)
"""
    # `n` is a parameter of a jax.jit function: traced (also inside the closure `loss`), so the
    # fori_loop lowers to a while loop.
    assert rows(code, "EQX208") == [9]
    static = code.replace("@jax.jit", "@functools.partial(jax.jit, static_argnums=1)").replace(
        "import jax\n", "import functools\nimport jax\n", 1
    )
    assert "functools.partial" in static and rows(static, "EQX208") == []
    computed = code.replace("lax.fori_loop(0, n,", "lax.fori_loop(0, jnp.sum(p * 10).astype(int),")
    assert rows(computed, "EQX208") == [9]


def test_eqx205_min_length_option():
    code = """
import jax
from jax import lax

def loss(p):
    return lax.scan(lambda c, x: (c * p, None), 0.0, None, length=100)[0]

g = jax.grad(loss)
"""
    assert rows(code, "EQX205") == [6]
    assert rows(code, "EQX205", rule_options={"EQX205": {"min-length": 200}}) == []


def test_eqx205_points_to_runtime_helper():
    code = """
import jax
import jax.numpy as jnp
from jax import lax

def loss(p):
    return lax.scan(lambda c, x: (c * p + x, None), 0.0, jnp.zeros((500, 3)))[0].sum()

g = jax.value_and_grad(loss)
"""
    [d] = [d for d in lint(code) if d.code == "EQX205"]
    assert "eqxlint.runtime.checkpointed_scan" in d.message
    assert "500 steps" in d.message


def test_eqx210_static_asserts_in_equinox_style_code_are_silent():
    code = """
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

@eqx.filter_jit
def f(x: Float[Array, "n m"], y, flag: bool = False):
    assert x.shape == y.shape
    assert jnp.ndim(x) == 2
    assert jnp.result_type(x) == jnp.result_type(y)
    assert flag in (True, False)
    assert all(jnp.shape(v) == () for v in [x])
    if y is None:
        raise ValueError("y")
    return x
"""
    assert "EQX210" not in codes(code)


def test_eqx210_breakpoint_fix_adds_import_and_is_idempotent():
    code = """
import jax.numpy as jnp
from jax import lax

def body(c, x):
    breakpoint()
    return c + x, None

def run(xs):
    return lax.scan(body, jnp.float32(0), xs)
"""
    fixed = fix(code, "EQX210")
    assert "jax.debug.breakpoint()" in fixed and "import jax\n" in fixed
    assert fix(fixed, "EQX210") == fixed
    ast.parse(fixed)


def test_eqx206_enum_subclass_chain_and_predicate():
    code = """
import jax
import optimistix as optx

class MyResults(optx.RESULTS):
    extra = "extra failure"

def is_extra(r):
    return r == MyResults.extra

@jax.jit
def f(r):
    if is_extra(r):
        return 1
    return 0
"""
    assert rows(code, "EQX206") == [13]


def test_eqx207_host_callback_reported_once_per_import():
    code = """
from jax.experimental.host_callback import id_tap

def f(x):
    id_tap(lambda *a: None, x)
    return x
"""
    assert rows(code, "EQX207") == [2]


def test_eqx201_silent_without_equinox():
    code = """
import functools
import jax
from jaxtyping import PyTree

@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def f(tree: PyTree, x):
    return x
"""
    assert "EQX201" not in codes(code)
    assert rows("import equinox as eqx\n" + code, "EQX201") == [7]


def test_eqx202_project_module_requires_index():
    code = """
import jax
from mypkg.models import Model

def f(model: Model, x):
    return jax.vjp(lambda m: m(x), model)
"""
    # Whether `Model` is an eqx.Module is a cross-file fact: without an index, no report.
    assert "EQX202" not in codes(code)


def test_eqx205_equinox_script_model_call_through_vmap():
    code = """
import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

class RNN(eqx.Module):
    cell: eqx.nn.GRUCell

    def __call__(self, xs):
        def f(carry, x):
            return self.cell(x, carry), None
        out, _ = lax.scan(f, jnp.zeros(4), None, length=1000)
        return out

@eqx.filter_value_and_grad
def compute_loss(model, x, y):
    pred = jax.vmap(model)(x)
    return jnp.mean((pred - y) ** 2)

model = RNN(eqx.nn.GRUCell(4, 4, key=jax.random.key(0)))
loss, grads = compute_loss(model, jnp.zeros((8, 4)), jnp.zeros((8, 4)))
"""
    # What the unannotated `model` holds is known from the call: an `RNN`, whose `__call__`
    # the differentiated loss runs through `jax.vmap`.
    assert rows(code, "EQX205") == [13]
    # Before the semantic layer, the rule guessed "the file's only callable Module" when no call
    # said what `model` holds; now, with no call, nothing is known and the rule stays silent.
    uncalled = code.rsplit("model = RNN", 1)[0]
    assert rows(uncalled, "EQX205") == []


def test_eqx210_raise_in_else_branch_of_traced_test():
    code = """
import jax
import jax.numpy as jnp

@jax.jit
def f(x):
    if jnp.all(x > 0):
        y = x
    else:
        raise ValueError("non-positive")
    if x.ndim == 1:
        pass
    else:
        raise ValueError("static: fine")
    return y
"""
    assert rows(code, "EQX210") == [10]


def test_eqx210_keywords_bound_by_partial_kwargs_are_not_traced():
    # Benchmark corpus (jax's pallas collective matmul): `jax.jit(jax.shard_map(partial(kernel,
    # **kwargs)))` binds `config` through `**kwargs`; it is a Python object, not a tracer, so
    # checks on it raise their own message. The array argument is traced.
    code = """
import functools
import jax

def kernel(lhs, rhs, axis_name, *, config, dtype=None):
    steps = config.max_concurrent_steps
    if steps < 2:
        raise ValueError("max_concurrent_steps must be >= 2")
    if lhs.sum() > 0:
        raise ValueError("positive")
    return lhs

def build(**kwargs):
    return jax.jit(jax.shard_map(functools.partial(kernel, **kwargs), out_specs=None))
"""
    assert rows(code, "EQX210") == [10]


def test_eqx203_user_option_and_default_are_silent_literal_false_is_not():
    # The corrected contract (RULES.md): the solvers default to throw=True, and a user's own
    # option passed through must be honoured; only errors turned off by a constant are flagged.
    code = """
import jax
import lineax as lx

@jax.custom_jvp
def solve(A, b, opts):
    return b

@solve.defjvp
def solve_jvp(primals, tangents):
    A, b, opts = primals
    op = lx.MatrixLinearOperator(A)
    a = lx.linear_solve(op, b).value
    c = lx.linear_solve(op, b, throw=opts["throw"]).value
    d = lx.linear_solve(op, b, throw=False).value
    return b, a + c + d
"""
    [d] = [d for d in lint(code) if d.code == "EQX203"]
    assert d.row == 15 and "silently" in d.message and "must raise" not in d.message
    fixed = fix(code, "EQX203")
    assert "throw=True" in fixed and "throw=opts" in fixed and rows(fixed, "EQX203") == []
