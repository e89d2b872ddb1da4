"""Cross-file scenarios for EQX211 (project-level) and extra cases for EQX204/EQX305/EQX306."""

from __future__ import annotations

import textwrap

from eqxlint.app.api import check_paths
from eqxlint.app.config import Settings

from helpers import rows


def _write(root, files: dict):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    (root / "pyproject.toml").write_text("[tool.eqxlint]\n")


LIB = '''
    import jax
    import jax.numpy as jnp
    from jax.extend.core import Primitive
    from jax.interpreters import ad, batching

    @jax.custom_jvp
    def tested(x):
        return jnp.sin(x)

    @jax.custom_vjp
    def untested(x):
        return jnp.cos(x)

    twice_p = Primitive("twice")
    twice_p.def_abstract_eval(lambda x: x)
    ad.deflinear2(twice_p, lambda ct, x: [2 * ct])
    batching.defvectorized(twice_p)

    argmax_p = Primitive("argmax")  # eqxlint: nondifferentiable
    batching.defvectorized(argmax_p)
'''


def _eqx211(root):
    settings = Settings(root=root, select=["EQX211"])
    report = check_paths([root], settings=settings, cache=False, jobs=1)
    return sorted((d.filename.rsplit("/", 1)[-1], d.row) for d in report.diagnostics if d.code == "EQX211")


def test_eqx211_links_tests_across_files(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": LIB,
        "tests/test_ops.py": '''
            import jax
            from jax.test_util import check_grads
            from pkg.ops import tested, untested

            def test_tested():
                check_grads(tested, (1.0,), order=1)

            def test_untested_primal_only():
                assert untested(0.0) == 1.0
        ''',
    })
    # `untested` (line 12) and `twice_p` (line 15) are reported; `tested` is checked against
    # finite differences, `argmax_p` is non-differentiable by design.
    assert _eqx211(tmp_path) == [("ops.py", 12), ("ops.py", 15)]


def test_eqx211_vmap_and_primitive_name_count(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": LIB,
        "tests/test_ops.py": '''
            import jax
            import jax.numpy as jnp
            from eqxlint.runtime import check_primitive
            from pkg import ops

            def _loop_matches(fn):
                xs = jnp.arange(3.0)
                assert jnp.allclose(jax.vmap(fn)(xs), jnp.stack([fn(x) for x in xs]))

            def test_untested_batches():
                _loop_matches(ops.untested)

            def test_twice():
                check_primitive(ops.twice_p, 1.0)
        ''',
    })
    assert _eqx211(tmp_path) == [("ops.py", 8)]  # `tested` is now the one left


def test_eqx211_silent_without_tests_in_view(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/ops.py": LIB})
    assert _eqx211(tmp_path) == []


def test_eqx211_prototype_folder(tmp_path):
    _write(tmp_path, {
        "experimental/ops.py": LIB,
        "tests/test_smoke.py": "import jax\n\ndef test_smoke():\n    assert True\n",
    })
    assert _eqx211(tmp_path) == []


def test_eqx306_ignores_tests_by_default():
    code = "import jax\n\ndef test_scan(jaxpr):\n    assert jaxpr.eqns[0].primitive.name == 'scan'\n"
    assert rows(code, "EQX306", path="tests/test_x.py") == []
    assert rows(code, "EQX306", path="pkg/x.py") == [4]


def test_eqx306_local_variable_reassigned():
    code = textwrap.dedent('''
        import jax

        def f(eqn, other):
            name = eqn.primitive.name
            name = other.label
            return name == "scan"
    ''')
    assert rows(code, "EQX306") == []


def test_eqx305_class_alias_registration():
    code = textwrap.dedent('''
        import jax
        from jax.extend.core import Primitive
        from jax.interpreters import batching

        LAMBDA_P = Primitive("lambda")

        class LambdaPlugin:
            _PRIM = LAMBDA_P

            @classmethod
            def call(cls, x, op):
                return cls._PRIM.bind(x, op=lambda y: op(y))

        LambdaPlugin._PRIM.def_abstract_eval(lambda x, op: x)
        batching.primitive_batchers[LambdaPlugin._PRIM] = lambda a, d, op: (a[0], d[0])
    ''')
    assert rows(code, "EQX305") == [6]


def test_eqx204_marked_before_through_partition_combine():
    code = textwrap.dedent('''
        import equinox as eqx
        import equinox.internal as eqxi
        import jax.lax as lax

        def solve(op, b, state, options, solver):
            dyn, static = eqx.partition(state, eqx.is_array)
            dyn = lax.stop_gradient(dyn)
            state = eqx.combine(dyn, static)
            out, _, _ = eqxi.filter_primitive_bind(p, op, state, b, options, solver)
            return out
    ''')
    # `options` and `solver` are unmarked; `state` is marked through `combine`.
    found = [d for d in __import__("helpers").lint(code) if d.code == "EQX204"]
    assert [d.row for d in found] == [10]
    assert "`options`, `solver`" in found[0].message and "`state`" not in found[0].message.split("passed")[0]


def test_eqx306_bare_primitive_attribute_only_on_equations():
    code = textwrap.dedent('''
        import jax

        def f(eqn, mesh):
            a = eqn.primitive == "scan"
            b = mesh.primitive == "triangles"
            return a, b
    ''')
    assert rows(code, "EQX306") == [5]
