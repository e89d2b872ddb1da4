"""Scenario tests for the control-flow rules EQX109-EQX113 (beyond the catalogue examples)."""

from __future__ import annotations

import textwrap

from helpers import rows


def r(code: str, rule: str) -> list:
    return rows(textwrap.dedent(code), rule)


# ----------------------------------------------------------------------------------- EQX110
def test_eqx110_taint_flows_through_assignments_and_unpacking():
    code = """
    import jax
    import jax.numpy as jnp

    @jax.jit
    def f(x, y):
        a, b = x, y.shape[0]
        c = a * 2 + 1
        if b > 1:
            c = c + 1
        if c.sum() > 0:
            c = -c
        d = b
        d = c
        while d > 0:
            d = d - 1
        return c
    """
    assert r(code, "EQX110") == [11, 15]


def test_eqx110_reassignment_to_static_clears_taint():
    code = """
    import jax

    @jax.jit
    def f(x):
        n = x
        n = x.shape[0]
        for _ in range(n):
            x = x + 1
        if n > 2:
            x = x * 2
        return x
    """
    assert r(code, "EQX110") == []


def test_eqx110_loop_carried_taint():
    code = """
    import jax
    import jax.numpy as jnp

    @jax.jit
    def f(x, tol):
        err = 1.0
        while err > 1e-6:
            err = jnp.linalg.norm(x)
            x = x / 2
        return x
    """
    assert r(code, "EQX110") == [8]


def test_eqx110_static_argnums_positions_and_names():
    code = """
    import jax
    from functools import partial

    def f(x, n, m, k):
        for _ in range(n):
            x = x + 1
        for _ in range(m):
            x = x + 1
        for _ in range(k):
            x = x + 1
        return x

    g = jax.jit(f, static_argnums=(1,), static_argnames="m")
    """
    assert r(code, "EQX110") == [10]


def test_eqx110_filter_jit_non_array_args_are_static():
    code = """
    import equinox as eqx
    import jax
    from jaxtyping import Array, Float

    @eqx.filter_jit
    def f(x: Float[Array, "n"], n: int, flag: bool, scale):
        for _ in range(n):
            x = x * 2
        if flag:
            x = -x
        if scale > 1:
            x = x / scale
        if x[0] > 0:
            x = x + 1
        return x
    """
    assert r(code, "EQX110") == [14]


def test_eqx110_filter_jit_param_used_as_array_is_traced():
    code = """
    import equinox as eqx

    @eqx.filter_jit
    def f(x, y):
        if x > 0:
            return x.sum()
        if y > 0:
            return y
        return x
    """
    assert r(code, "EQX110") == [6]


def test_eqx110_grad_alone_keeps_concrete_values_jit_of_grad_does_not():
    # Under jax.grad (or jvp/vjp) alone, parameters hold concrete values: Python control flow
    # works (checked with JAX 0.10). Under jax.jit(jax.grad(f)) they are tracers.
    code = """
    import jax

    def loss(w, n):
        for _ in range(n):
            w = w * 2
        if w > 0:
            return w
        return -w

    g = jax.grad(loss)
    """
    assert r(code, "EQX110") == []
    assert r(code.replace("jax.grad(loss)", "jax.jit(jax.grad(loss), static_argnums=1)"), "EQX110") == [7]


def test_eqx110_vmap_in_axes_none_is_not_traced():
    code = """
    import jax

    def f(x, n):
        for _ in range(n):
            x = x + 1
        return x

    g = jax.vmap(f, in_axes=(0, None))
    h = jax.vmap(f)
    """
    assert r(code, "EQX110") == [5]


def test_eqx110_callee_context_sensitive():
    code = """
    import jax

    def helper(x, n):
        for _ in range(n):
            x = x + 1
        if x > 0:
            x = -x
        return x

    @jax.jit
    def f(x):
        return helper(x, x.shape[0])
    """
    assert r(code, "EQX110") == [7]


def test_eqx110_callee_params_unknown_without_traced_caller_args():
    code = """
    import jax
    import jax.numpy as jnp

    def helper(x, n):
        if n > 3:
            x = x + 1
        return x

    @jax.jit
    def f(x):
        return helper(x, 5)
    """
    assert r(code, "EQX110") == []


def test_eqx110_nested_body_closure_and_params():
    code = """
    import jax
    import jax.numpy as jnp
    from jax import lax

    @jax.jit
    def f(x):
        total = jnp.sum(x)
        n = x.shape[0]

        def body(i, c):
            if n > 2:
                c = c + 1
            if total > 0:
                c = c * 2
            return c

        return lax.fori_loop(0, n, body, x)
    """
    assert r(code, "EQX110") == [14]


def test_eqx110_module_method_with_static_field():
    code = """
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    class Net(eqx.Module):
        w: jax.Array
        depth: int = eqx.field(static=True)

        def __call__(self, x):
            for _ in range(self.depth):
                x = self.w @ x
            if jnp.linalg.norm(x) > 1.0:
                x = x / 2
            return x

    @eqx.filter_jit
    def run(model: Net, x):
        return model(x)
    """
    assert r(code, "EQX110") == [13]


def test_eqx110_silent_outside_traced_code():
    code = """
    import jax.numpy as jnp

    def eager(x):
        if jnp.any(x > 0):
            x = -x
        return int(x.sum())
    """
    assert r(code, "EQX110") == []


def test_eqx110_guards_and_compile_time_eval():
    code = """
    import jax
    import jax.numpy as jnp

    @jax.jit
    def f(x):
        if isinstance(x, int) and x > 0:
            x = x + 1
        with jax.ensure_compile_time_eval():
            if jnp.sum(jnp.ones(3)) > 1:
                x = x * 2
        if jnp.any(x < 0):
            raise ValueError("negative")
        return x
    """
    assert r(code, "EQX110") == []


def test_eqx110_comprehension_filter_and_minmax():
    code = """
    import jax

    @jax.jit
    def f(xs):
        kept = [v for v in xs if v > 0]
        m = max(xs[0], 1.0)
        n = max(xs.shape[0], 1)
        return kept, m, n
    """
    assert r(code, "EQX110") == [6, 7]


def test_eqx110_lambda_under_lax_while_loop():
    code = """
    from jax import lax

    def run(x):
        return lax.while_loop(lambda c: c < 10, lambda c: c + 1 if c > 3 else c + 2, x)
    """
    assert r(code, "EQX110") == [5]


def test_eqx110_partial_bound_arguments_are_static():
    code = """
    import jax
    from functools import partial

    def f(x, n, *, k):
        for _ in range(n):
            x = x + k
        return x

    g = jax.jit(partial(f, n=3, k=2))
    """
    assert r(code, "EQX110") == []


# ----------------------------------------------------------------------------------- EQX109
def test_eqx109_function_branches_with_multiple_returns():
    code = """
    from jax import lax
    import jax.numpy as jnp

    def t(x):
        if x.ndim > 1:
            return x.sum(), x
        return x, x

    def f(x):
        return (x,)

    def run(x, p):
        a = lax.cond(p, t, f, x)
        b = lax.cond(p, t, t, x)
        return a, b
    """
    assert r(code, "EQX109") == [14]


def test_eqx109_unknown_calls_are_silent():
    code = """
    import jax
    from jax import lax

    def g(x):
        return x

    def run(x, p, branches):
        a = lax.cond(p, lambda: jax.debug.print("{}", x), lambda: None)
        b = lax.cond(p, lambda v: g(v), lambda v: None, x)
        c = lax.switch(0, branches, x)
        return a, b, c
    """
    assert r(code, "EQX109") == []


# ----------------------------------------------------------------------------------- EQX111
def test_eqx111_method_decorated_with_vmap():
    code = """
    import equinox as eqx
    import jax

    class Net(eqx.Module):
        w: jax.Array

        @jax.vmap
        def __call__(self, x):
            return self.w @ x

        def batched(self, xs):
            return jax.vmap(self.__call__)(xs)
    """
    assert r(code, "EQX111") == [8]


# ----------------------------------------------------------------------------------- EQX112
def test_eqx112_collective_in_callee_is_silent():
    code = """
    import jax

    def reduce(g):
        return jax.lax.psum(g, "i")

    def step(x):
        return reduce(x * 2)

    p = jax.pmap(step)
    q = jax.pmap(lambda x: x + 1)
    """
    assert r(code, "EQX112") == [11]


def test_eqx112_collective_in_another_module_and_test_files(tmp_path):
    """A collective in a helper of another module keeps the pmap quiet, in the whole project and
    in a one-file run; test files are not checked."""
    from eqxlint.app import api

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "comm.py").write_text("import jax\n\ndef allreduce(g):\n    return jax.lax.pmean(g, 'i')\n")
    (tmp_path / "pkg" / "train.py").write_text(
        "import jax\nfrom pkg.comm import allreduce\n\ndef step(g):\n    return allreduce(g * 2)\n\n"
        "def local(g):\n    return g + 1\n\np = jax.pmap(step)\nq = jax.pmap(local)\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_pmap.py").write_text("import jax\n\ndef test_it():\n    jax.pmap(lambda x: x)\n")
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    whole = api.check_paths([tmp_path], cache=False).diagnostics
    assert [(d.filename.rsplit("/", 1)[-1], d.row) for d in whole if d.code == "EQX112"] == [("train.py", 11)]
    one = api.check_paths([tmp_path / "pkg" / "train.py"], cache=False).diagnostics
    assert [d.row for d in one if d.code == "EQX112"] == [11]


# ----------------------------------------------------------------------------------- EQX113
def test_eqx113_partial_branches_and_self_submodule():
    code = """
    import equinox as eqx
    import jax
    from jax import lax

    class Block(eqx.Module):
        mlp: eqx.nn.MLP
        flag: bool = eqx.field(static=True)

        def __call__(self, x, p):
            return lax.cond(p, lambda v: self.mlp(v) + 1, lambda v: self.mlp(v), x)
    """
    assert r(code, "EQX113") == [11]


def test_eqx111_partial_bound_module_is_not_mapped():
    code = """
    import equinox as eqx
    import jax
    from functools import partial

    class MLP(eqx.Module):
        w: jax.Array

    def loss(model: MLP, x, y):
        return model.w @ x - y

    def run(model: MLP, xs, ys):
        a = jax.vmap(partial(loss, model))(xs, ys)
        b = jax.vmap(partial(loss, y=ys))
        return a, b
    """
    assert r(code, "EQX111") == [14]


def test_eqx110_tracer_guards_keep_quiet():
    code = """
    import jax

    @jax.jit
    def f(x):
        if isinstance(x, jax.core.Tracer):
            y = x
        else:
            if x > 0:
                y = -x
        try:
            n = int(x)
        except jax.errors.ConcretizationTypeError:
            n = None
        if x > 0:
            pass
        return x
    """
    assert r(code, "EQX110") == [15]


def test_eqx110_module_call_array_methods_staged():
    code = """
    import equinox as eqx
    import jax

    class Model(eqx.Module):
        layers: list

        def __call__(self, x):
            for layer in self.layers:
                x = layer(x)
            if x.mean() > 0:
                x = -x
            if len(self.layers) > 2:
                x = x * 2
            return x

    @eqx.filter_jit
    def run(model: Model, x):
        return model(x)
    """
    assert r(code, "EQX110") == [11]


def test_eqx111_unresolved_function_applied_to_module():
    # The Module-ness of `model` comes from the caller that passes an `eqx.nn.MLP` (it used to
    # come from the parameter's name, which is no evidence: see the dict-passing variant).
    code = """
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from mylib import loss_fn

    def batch_loss(model, xs):
        a = jax.vmap(loss_fn)(model, xs)
        b = jax.vmap(loss_fn, in_axes=(None, 0))(model, xs)
        c = jax.vmap(model)(xs)
        d = jax.vmap(loss_fn)(xs, xs)
        return a, b, c, d

    def main():
        return batch_loss(eqx.nn.MLP(2, 1, 8, 2, key=jax.random.key(0)), jnp.ones((4, 2)))
    """
    assert r(code, "EQX111") == [8]
    assert r(code.replace("eqx.nn.MLP(2, 1, 8, 2, key=jax.random.key(0))", '{"w": jnp.ones(2)}'), "EQX111") == []


def test_eqx111_module_class_of_another_file(tmp_path):
    """A Module class imported from another project file: reported only where the project
    says it is a Module (a flax dataclass of the same shape is data)."""
    from eqxlint.app import api

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "nets.py").write_text(
        "from typing import Callable\nimport equinox as eqx\nimport flax.struct\nimport jax\n\n"
        "class Net(eqx.Module):\n    w: jax.Array\n    act: Callable\n\n"
        "@flax.struct.dataclass\nclass State:\n    w: jax.Array\n"
    )
    (tmp_path / "pkg" / "use.py").write_text(
        "import jax\nfrom pkg.nets import Net, State\n\n"
        "def loss(net: Net, x):\n    return net.w @ x\n\n"
        "def norm(net: Net):\n    return (net.w ** 2).sum()\n\n"
        "def step(state: State, x):\n    return state.w * x\n\n"
        "a = jax.vmap(loss)\nb = jax.vmap(norm)\nc = jax.vmap(step)\n"
    )
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    diags = [d for d in api.check_paths([tmp_path], cache=False).diagnostics if d.code == "EQX111"]
    assert sorted(d.row for d in diags) == [13, 14]
    one = api.check_paths([tmp_path / "pkg" / "use.py"], cache=False).diagnostics
    assert sorted(d.row for d in one if d.code == "EQX111") == [13, 14]


def test_eqx113_unknown_bodies_are_silent_known_heavy_methods_are_not():
    # A function or method whose body is not visible (a name bound nowhere, a method of a
    # Module class of another library) was taken as heavy; an attribute accessor is not (issue
    # 13). What is heavy is decided from the callee's body: a local method with a loop is.
    code = """
    import equinox as eqx
    import jax
    from jax import lax

    class Solver(eqx.Module):
        tol: jax.Array

        def tolerance(self):
            return self.tol

        def iterate(self, x):
            for _ in range(10):
                x = x * self.tol
            return x

    def f(x, pred, model: eqx.Module, s: Solver):
        a = lax.cond(pred, lambda v: heavy_fn(v) + 1, lambda v: heavy_fn(v) * 2, x)
        b = lax.cond(pred, lambda v: model.encode(v) + 1, lambda v: model.encode(v) * 2, x)
        c = lax.cond(pred, lambda v: abs(v) + 1, lambda v: abs(v) * 2, x)
        d = lax.cond(pred, lambda v: s.tolerance() + v, lambda v: s.tolerance() - v, x)
        e = lax.cond(pred, lambda v: s.iterate(v) + 1, lambda v: s.iterate(v) - 1, x)
        return a, b, c, d, e
    """
    assert r(code, "EQX113") == [22]
