"""Issue 13 (precision on untuned packages): primitive subclasses registering on `self` across
modules, EQX102's fresh-callable test, EQX306's message tiers."""

from __future__ import annotations

import textwrap

from eqxlint.app.api import check_paths
from eqxlint.app.config import Settings

from helpers import lint


def _project(root, files: dict, codes: list):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    (root / "pyproject.toml").write_text("[tool.eqxlint]\n")
    report = check_paths([root], settings=Settings(root=root, select=codes), cache=False, jobs=1)
    return sorted((d.filename.rsplit("/", 1)[-1], d.row, d.code) for d in report.diagnostics)


def test_primitive_subclass_rules_on_self_inherited(tmp_path):
    base = '''
        import jax
        import jax.extend as jex
        from jax.interpreters import ad, batching, mlir


        class Tag(jex.core.Primitive):
            def __init__(self, name):
                super().__init__(name)
                mlir.register_lowering(self, lambda ctx, x: [x])
                ad.deflinear(self, lambda ct, x: [ct])

            def abstract_eval(self, x):
                return x, jax.core.no_effects


        class BatchedTag(Tag):
            def __init__(self, name):
                super().__init__(name)
                batching.primitive_batchers[self] = lambda a, d: (self.bind(*a), d[0])


        batched_p = BatchedTag("b")
        plain_p = Tag("t")
    '''
    found = _project(tmp_path, {"pkg/__init__.py": "", "pkg/tags.py": base},
                     ["EQX301", "EQX302", "EQX303", "EQX304"])
    assert found == [("tags.py", 24, "EQX303")]  # only `plain_p` lacks batching


def test_eqx102_stable_vs_fresh_callables():
    code = '''
        import functools
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        def g(x):
            return x

        class Runner:
            def m(self, x):
                return x

            def eager(self, x):
                a = jax.jit(g)(x)
                b = jax.jit(jnp.einsum, static_argnums=0)("i->i", x)
                c = eqx.filter_jit(self.m)(x)
                d = jax.jit(self.m)(x)
                f = functools.partial(g)
                e = jax.jit(f)(x)
                r = Runner()
                h = eqx.filter_jit(r.m)(x)
                return a, b, c, d, e, h
    '''
    found = [(d.row, d.message) for d in lint(textwrap.dedent(code), select=["EQX102"])]
    assert [r for r, _ in found] == [18, 20, 22]
    assert all("retraces and recompiles" in m for _, m in found)


def test_eqx102_stable_function_in_loop_says_lookup_only():
    code = '''
        import jax

        def g(x):
            return x

        def run(xs):
            return [jax.jit(g)(x) for x in xs]
    '''
    (d,) = lint(textwrap.dedent(code), select=["EQX102"])
    assert "nothing retraces" in d.message


def test_eqx306_message_tiers():
    code = '''
        def a(eqn):
            return eqn.primitive.name == "pjit"

        def b(eqn):
            return eqn.primitive.name in ("pjit", "jit")

        def c(eqn):
            return eqn.primitive.name == "dot_general"

        def d(eqn):
            return eqn.primitive.name == "my_op"
    '''
    msgs = [d.message for d in lint(textwrap.dedent(code), select=["EQX306"])]
    assert len(msgs) == 4
    assert "`pjit` (now `jit`) is no longer the name" in msgs[0]
    assert "no longer" not in msgs[1]  # compatibility code: the current name is tested too
    assert "This is a current JAX primitive name" in msgs[2]
    assert "two primitives can share a name" in msgs[3]


_EQX204 = '''
    import jax


    def iterations(prob, solver, init):
        return prob


    def _fwd(prob, solver, init):
        return prob, (prob, solver)


    def _bwd(res, g):
        prob, solver = res
        return g, BWD_SOLVER, None


    implicit = jax.custom_vjp(iterations)
    implicit.defvjp(_fwd, _bwd)


    def run(prob, solver, init):
        return implicit(prob, solver, init)
'''


def test_eqx204_none_cotangent_and_plain_jax_advice():
    silent = textwrap.dedent(_EQX204.replace("BWD_SOLVER", "None"))
    assert lint(silent, select=["EQX204"]) == []
    (d,) = lint(textwrap.dedent(_EQX204.replace("BWD_SOLVER", "solver")), select=["EQX204"])
    assert "`solver`" in d.message and "eqxi" not in d.message and "lax.stop_gradient" in d.message


def test_eqx108_says_traced_or_eager():
    code = '''
        import jax
        import jax.numpy as jnp

        def f(x):
            return x * 2

        DECO
        def step(x):
            out = f(jnp.zeros((3, 4)))
            return x.reshape(out.shape)
    '''
    (t,) = lint(textwrap.dedent(code.replace("DECO", "@jax.jit")), select=["EQX108"])
    assert "nothing runs" in t.message and "executes" not in t.message
    (e,) = lint(textwrap.dedent(code.replace("DECO", "")), select=["EQX108"])
    assert "run eagerly" in e.message
