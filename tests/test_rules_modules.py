"""Scenario tests for the Module / JIT-boundary rules EQX102–EQX108."""

from __future__ import annotations

import ast
import textwrap

from helpers import fix, lint, rows


def _src(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


# ---------------------------------------------------------------------------- EQX102
def test_eqx102_nested_loops_report_once_per_wrapper():
    code = _src(
        """
        import jax

        def f(x):
            return x + 1

        def run(xs):
            for row in xs:
                for x in row:
                    x = jax.jit(f)(x)
            return xs
        """
    )
    assert rows(code, "EQX102") == [9]


def test_eqx102_silent_for_loop_dependent_static_args():
    code = _src(
        """
        import jax

        def f(x, n):
            return x * n

        def run(x, ns):
            for n in ns:
                x = jax.jit(f, static_argnums=n)(x, n)
            return x
        """
    )
    assert rows(code, "EQX102") == []


def test_eqx102_assigned_then_called_in_loop():
    code = _src(
        """
        import equinox as eqx

        def train(model, batches, loss):
            for b in batches:
                step = eqx.filter_jit(loss)
                model = step(model, b)
            return model
        """
    )
    assert rows(code, "EQX102") == [5]


def test_eqx102_closure_over_per_call_values_says_what_to_do():
    # A closure over per-call values cannot move to module level (issue 13): the message says
    # to make those values parameters of a function jitted once.
    code = _src(
        """
        import jax

        def scale_all(x, n):
            return jax.jit(lambda y: y * n)(x)

        def shift(x):
            return jax.jit(lambda y: y + 1)(x)
        """
    )
    found = {d.row: d.message for d in lint(code) if d.code == "EQX102"}
    assert sorted(found) == [4, 7]
    assert "module level" not in found[4] and "`n` as parameter" in found[4]
    assert "outside `shift`" in found[7]


def test_eqx102_silent_where_the_function_is_traced_from_another_file(tmp_path):
    """`jax.jit(f)(x)` in a helper that another module's jitted step calls is a nested jit,
    traced with it: silent in the whole project and in a one-file run alike."""
    from eqxlint.app import api

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "helpers.py").write_text(
        "import jax\n\ndef helper(x):\n    return jax.jit(lambda y: y + 1)(x)\n"
    )
    (tmp_path / "pkg" / "train.py").write_text(
        "import jax\nfrom pkg.helpers import helper\n\n@jax.jit\ndef step(x):\n    return helper(x)\n"
    )
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    whole = api.check_paths([tmp_path], cache=False).diagnostics
    one = api.check_paths([tmp_path / "pkg" / "helpers.py"], cache=False).diagnostics
    assert [d for d in whole if d.code == "EQX102"] == [] == [d for d in one if d.code == "EQX102"]
    (tmp_path / "pkg" / "train.py").write_text("from pkg.helpers import helper\n\ndef step(x):\n    return helper(x)\n")
    assert [d.row for d in api.check_paths([tmp_path], cache=False).diagnostics if d.code == "EQX102"] == [4]


def test_eqx102_silent_in_test_files():
    code = _src(
        """
        import jax

        def test_it(xs):
            for x in xs:
                jax.jit(abs)(x)
        """
    )
    assert [d for d in lint(code, path="tests/test_x.py") if d.code == "EQX102"] == []


# ---------------------------------------------------------------------------- EQX103
BLOCK = _src(
    """
    import equinox as eqx
    import jax.numpy as jnp

    class Base(eqx.Module):
        depth: int
        scale: float = 1.0

    class Block(Base):
        weight: jnp.ndarray

        def __call__(self, x):
            for _ in range(self.depth):
                x = self.weight @ x
            if self.depth > 2:
                x = x * self.scale
            return x
    """
)


def test_eqx103_inherited_same_file_field_and_fix_once():
    assert rows(BLOCK, "EQX103") == [12, 14]
    fixed = fix(BLOCK, "EQX103")
    assert "depth: int = eqx.field(static=True)" in fixed
    assert "scale: float = 1.0" in fixed  # arithmetic use only: untouched
    assert fix(fixed, "EQX103") == fixed
    ast.parse(fixed)
    assert rows(fixed, "EQX103") == []


def test_eqx103_silent_for_fields_from_other_files():
    code = _src(
        """
        import jax.numpy as jnp
        from mypkg.layers import BaseLayer

        class Block(BaseLayer):
            weight: jnp.ndarray

            def __call__(self, x):
                for _ in range(self.depth):
                    x = self.weight @ x
                return x
        """
    )
    assert rows(code, "EQX103") == []


def test_eqx103_module_whose_base_is_in_another_file(tmp_path):
    """A class is a Module through a base of another project file: its own non-static flag is
    reported when the project says so (and a plain base keeps it silent)."""
    from eqxlint.app import api

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "base.py").write_text(
        "import equinox as eqx\n\nclass BaseLayer(eqx.Module):\n    pass\n\nclass Plain:\n    pass\n"
    )
    body = "\n    depth: int\n\n    def __call__(self, x):\n        for _ in range(self.depth):\n            x = x * 2\n        return x\n"
    (tmp_path / "pkg" / "block.py").write_text(
        "from pkg.base import BaseLayer, Plain\n\nclass Block(BaseLayer):" + body + "\nclass Other(Plain):" + body
    )
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    diags = api.check_paths([tmp_path], cache=False).diagnostics
    assert [d.row for d in diags if d.code == "EQX103"] == [7]


def test_eqx103_fix_keeps_field_arguments():
    code = _src(
        """
        import equinox as eqx

        class M(eqx.Module):
            mode: str = eqx.field(default="a", repr=False)

            def __call__(self, x):
                return x if self.mode == "a" else -x
        """
    )
    fixed = fix(code, "EQX103")
    assert 'mode: str = eqx.field(static=True, default="a", repr=False)' in fixed


def test_eqx103_jitted_argument_static_spec_silences():
    code = _src(
        """
        import jax

        def unroll(x, n: int, flag: bool):
            for _ in range(n):
                x = x * 2
            if flag:
                x = -x
            return x

        fast = jax.jit(unroll, static_argnames=("n",))
        """
    )
    assert rows(code, "EQX103") == [6]


# ---------------------------------------------------------------------------- EQX104
def test_eqx104_nested_closure_two_levels():
    # EQX104's contract changed (RULES.md): optimistix closure-converts its function argument,
    # so the old `optx.root_find(lambda ...)` case is silent; a custom-JVP function does not.
    code = _src(
        """
        import functools
        import jax
        import jax.numpy as jnp

        @functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
        def apply(fn, x):
            return fn(x)

        def outer(a):
            b = jnp.asarray(a) * 2

            def inner(y0):
                return apply(lambda y: y - b, y0)

            return inner
        """
    )
    assert rows(code, "EQX104") == [13]


# ---------------------------------------------------------------------------- EQX105
def test_eqx105_grandchild_of_concrete_base():
    code = _src(
        """
        import equinox as eqx

        class A(eqx.Module):
            def f(self):
                return 1

        class B(A):
            pass

        class C(B):
            def f(self):
                return 2
        """
    )
    assert rows(code, "EQX105") == [11]


def test_eqx105_silent_with_strict_abstract_base():
    code = _src(
        """
        import equinox as eqx

        class Base(eqx.Module, strict=eqx.StrictConfig(force_abstract=True)):
            def f(self):
                return 1

        class Impl(Base):
            def f(self):
                return 2
        """
    )
    assert rows(code, "EQX105") == []


# ---------------------------------------------------------------------------- EQX107
def test_eqx107_project_module_needs_index():
    code = _src(
        """
        import jax
        from mypkg.models import Net

        def shapes(net: Net, x):
            return jax.eval_shape(net, x)
        """
    )
    # Net's Module-ness is decided by the project index; alone in a run it is unknown.
    assert rows(code, "EQX107") == []


def test_eqx107_fix_adds_import_and_is_idempotent():
    code = _src(
        """
        import jax
        from equinox import nn

        def shapes(model: nn.MLP, x):
            return jax.eval_shape(model, x)
        """
    )
    fixed = fix(code, "EQX107")
    assert "eqx.filter_eval_shape(model, x)" in fixed and "import equinox as eqx" in fixed
    assert fix(fixed, "EQX107") == fixed


# ---------------------------------------------------------------------------- EQX108
def test_eqx108_silent_on_flax_style_init():
    code = _src(
        """
        import jax
        import jax.numpy as jnp

        def create_state(model, rng, tx):
            params = model.init(rng, jnp.ones((1, 28, 28, 1)))["params"]
            return tx.init(params), params
        """
    )
    assert rows(code, "EQX108") == []


def test_eqx108_silent_at_module_level_script():
    code = _src(
        """
        import jax.numpy as jnp

        def f(x):
            return x * 2

        print(f(jnp.zeros(3)).shape)
        """
    )
    assert rows(code, "EQX108") == []


def test_eqx103_partial_bound_argument_is_not_traced():
    code = _src(
        """
        import functools
        import jax

        def _solve(x, *, exact: bool):
            if exact:
                return x
            return -x

        solve = jax.jit(functools.partial(_solve, exact=False))
        """
    )
    assert rows(code, "EQX103") == []


def test_eqx104_unannotated_parameters_with_array_evidence():
    # Only closures handed to callees that do not closure-convert count now (RULES.md): a custom
    # VJP function, or a lineax operator built with `closure_convert=False`. An unannotated
    # parameter counts when the function uses it as an array.
    code = _src(
        """
        import equinox as eqx
        import jax.numpy as jnp
        import lineax as lx
        import optimistix as optx

        @eqx.filter_custom_vjp
        def fixed(fn, y0):
            return fn(y0)

        def solve(params, y0, solver):
            fn = lambda y: y - jnp.dot(params, y)
            return fixed(fn, y0) + optx.root_find(lambda y, args: y - params["a"], solver, y0).value

        def jac(a, x):
            n = a.shape[0]
            return lx.JacobianLinearOperator(lambda z, args: a @ z, x, closure_convert=False)

        def quiet(f, scale, y0, solver):
            return fixed(lambda y: f(y) * scale, y0)
        """
    )
    assert rows(code, "EQX104") == [12, 16]
