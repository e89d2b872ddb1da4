"""The AD family across modules (issue 12): custom rules, reverse-mode reach and custom-derivative
functions are project facts, so a finding follows them into other modules, and a one-file run
(pre-commit, the editor) gives for that file exactly what the whole-project run gives."""

from __future__ import annotations

import textwrap

from eqxlint.app import api


def _write(root, files: dict) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    (root / "pyproject.toml").write_text("[tool.eqxlint]\n")


def _found(root, paths, code) -> list:
    diags = api.check_paths(paths, cache=False).diagnostics
    return sorted((d.filename.replace(str(root) + "/", ""), d.row) for d in diags if d.code == code)


def _same_one_file(root, code, files) -> list:
    """The findings of `code` in the whole project; each file checked alone gives its share."""
    whole = _found(root, [root], code)
    for rel in files:
        one = _found(root, [root / rel], code)
        assert one == [f for f in whole if f[0] == rel], (rel, one, whole)
    return whole


def test_eqx203_follows_a_rule_into_a_helper_module(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/linalg.py": """
            import lineax as lx

            QUIET = False

            def tangent_solve(A, rhs):
                return lx.linear_solve(lx.MatrixLinearOperator(A), rhs, throw=QUIET).value

            def primal_solve(A, b):
                return lx.linear_solve(lx.MatrixLinearOperator(A), b, throw=False)

            def user_option(A, b, throw):
                return lx.linear_solve(lx.MatrixLinearOperator(A), b, throw=throw).value
        """,
        "pkg/ops.py": """
            import jax
            from pkg.linalg import primal_solve, tangent_solve, user_option

            @jax.custom_jvp
            def solve(A, b):
                sol = primal_solve(A, b)
                return sol.value

            @solve.defjvp
            def _solve_jvp(primals, tangents):
                A, b = primals
                dA, db = tangents
                x = solve(A, b)
                return x, tangent_solve(A, db - dA @ x) + user_option(A, db, False)
        """,
    })
    # Only the helper a JVP rule calls, with errors turned off through a constant; the primal
    # solve and the user's option passed through stay silent.
    assert _same_one_file(tmp_path, "EQX203", ["pkg/linalg.py", "pkg/ops.py"]) == [("pkg/linalg.py", 7)]


def test_eqx208_and_eqx205_follow_reverse_mode_across_modules(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/model.py": """
            import jax.numpy as jnp
            from jax import lax

            def settle(x):
                return lax.while_loop(lambda c: jnp.sum(c) > 1.0, lambda c: c * 0.5, x)

            def unroll(x):
                return lax.scan(lambda c, _: (c * 0.9, None), x, None, length=500)[0]

            def only_jitted(x):
                return lax.while_loop(lambda c: jnp.sum(c) > 1.0, lambda c: c * 0.5, x)
        """,
        "pkg/train.py": """
            import jax
            from pkg.model import only_jitted, settle, unroll

            def loss(x):
                return settle(x).sum() + unroll(x).sum()

            grad_loss = jax.grad(loss)
            fast = jax.jit(only_jitted)
        """,
    })
    files = ["pkg/model.py", "pkg/train.py"]
    assert _same_one_file(tmp_path, "EQX208", files) == [("pkg/model.py", 6)]
    assert _same_one_file(tmp_path, "EQX205", files) == [("pkg/model.py", 9)]
    report = api.check_paths([tmp_path], cache=False)
    [d] = [d for d in report.diagnostics if d.code == "EQX208"]
    # The message shows how reverse mode gets there.
    assert "`settle` is traced: called by `loss` (train.py:6), differentiated by `jax.grad`" in d.message


def test_eqx208_reverse_chain_is_the_differentiation_not_the_first_trace(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": """
            import jax
            import jax.numpy as jnp
            from jax import lax

            def body(x):
                return lax.while_loop(lambda c: jnp.sum(c) > 1.0, lambda c: c * 0.5, x)

            fast = jax.jit(body)
            slow = jax.grad(lambda x: body(x).sum())
        """,
    })
    report = api.check_paths([tmp_path], cache=False)
    [d] = [d for d in report.diagnostics if d.code == "EQX208"]
    assert "differentiated by `jax.grad`" in d.message and "jitted" not in d.message


def test_eqx208_silent_in_custom_root_operands(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": """
            import jax
            import jax.numpy as jnp
            from jax import lax

            def newton(f, x0):
                return lax.while_loop(lambda x: jnp.abs(f(x)) > 1e-6, lambda x: x - f(x), x0)

            def root(a):
                f = lambda x: x * x - a
                return lax.custom_root(f, 1.0, newton, lambda g, y: y / 2.0)

            g = jax.grad(root)
        """,
    })
    # custom_root differentiates through the optimality condition, not through the solve.
    assert _found(tmp_path, [tmp_path], "EQX208") == []


def test_eqx104_custom_function_of_another_module(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": """
            import functools
            import jax

            @functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
            def apply(fn, x):
                return fn(x)

            @apply.defjvp
            def _apply_jvp(fn, primals, tangents):
                return apply(fn, primals[0]), tangents[0]

            def plain(fn, x):
                return fn(x)
        """,
        "pkg/loss.py": """
            import jax
            from pkg.ops import apply, plain

            def loss(theta: jax.Array, x):
                return apply(lambda y: y * theta, x) + plain(lambda y: y * theta, x)
        """,
    })
    assert _same_one_file(tmp_path, "EQX104", ["pkg/ops.py", "pkg/loss.py"]) == [("pkg/loss.py", 6)]


def test_eqx211_public_wrapper_in_another_module_is_evidence(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.api import sample\n",
        "pkg/_impl.py": """
            import jax
            import jax.numpy as jnp

            @jax.custom_vjp
            def _draw(x):
                return jnp.exp(x)

            _draw.defvjp(lambda x: (jnp.exp(x), x), lambda x, g: (g * jnp.exp(x),))

            @jax.custom_jvp
            def untested(x):
                return x
        """,
        "pkg/api.py": """
            from pkg._impl import _draw

            def sample(x, scale=1.0):
                return scale * _draw(x)
        """,
        "tests/test_api.py": """
            import jax
            import jax.numpy as jnp
            from jax.test_util import check_grads
            from pkg import sample
            from pkg._impl import untested

            def test_sample():
                check_grads(sample, (0.5,), order=1, modes=("rev",))

            def test_untested_values():
                assert untested(1.0) == 1.0
        """,
    })
    assert _found(tmp_path, [tmp_path], "EQX211") == [("pkg/_impl.py", 12)]


def test_eqx211_grad_compared_with_analytic_values_is_evidence(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/fns.py": """
            import jax
            import jax.numpy as jnp

            @jax.custom_jvp
            def softplus(x):
                return jnp.logaddexp(x, 0.0)

            softplus.defjvp(lambda p, t: (softplus(p[0]), jax.nn.sigmoid(p[0]) * t[0]))
        """,
        "tests/test_fns.py": """
            import jax
            import jax.numpy as jnp
            from pkg.fns import softplus

            class TestSoftplus:
                def test_grad(self):
                    x = 0.3
                    assert jnp.allclose(jax.grad(softplus)(x), jax.nn.sigmoid(x))
        """,
    })
    assert _found(tmp_path, [tmp_path], "EQX211") == []


def test_reverse_chain_kept_on_the_diagnostic(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/model.py": """
            from jax import lax

            def settle(x):
                return lax.while_loop(lambda c: c > 1.0, lambda c: c * 0.5, x)
        """,
        "pkg/train.py": """
            import jax
            from pkg.model import settle

            grad_settle = jax.grad(settle)
        """,
    })
    [d] = [d for d in api.check_paths([tmp_path], cache=False).diagnostics if d.code == "EQX208"]
    assert d.trace[0]["function"] == "settle" and d.trace[0]["how"] == "differentiated by `jax.grad`"
