"""The PRNG rules across modules: whether a project function draws from the key it is given is
decided by its summary (directly, through the functions it passes the key on to, `del key`),
and a one-file run inside the project gives what the whole-project run gives. EQX402 follows
tracing into other modules and says one thing per key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from eqxlint.app import api
from helpers import lint

ROOT = Path(__file__).resolve().parent.parent


def _project(tmp_path: Path, files: dict) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    for name, src in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(src))
    return tmp_path


def _found(paths: list, code: str = "EQX401") -> list:
    diags = api.check_paths(paths, cache=False).diagnostics
    return sorted((Path(d.filename).name, d.row) for d in diags if d.code == code)


MODULES = {
    "pkg/__init__.py": "",
    "pkg/model.py": """
        import equinox as eqx
        import jax.random as jr

        class Net(eqx.Module):
            layer: eqx.nn.Linear

            def __init__(self, key):
                self.layer = eqx.nn.Linear(2, 2, key=key)

        def init_model(key):
            return Net(key)

        def make_noise(key, n: int = 4):
            return jr.normal(key, (n,))

        def relay(key):
            return make_noise(key)

        def ignore(key, x):
            del key
            return x

        def unused(x, key=None):
            return x

        def fingerprint(key):
            return hash(str(key))
        """,
    "train.py": """
        import jax.random as jr
        from pkg.model import fingerprint, ignore, init_model, make_noise, relay, unused

        def main():
            key = jr.PRNGKey(0)
            init_key, data_key, other = jr.split(key, 3)
            model = init_model(init_key)
            noise = make_noise(init_key)
            x = jr.normal(data_key, (4,))
            x = ignore(data_key, x)
            x = unused(x, key=data_key)
            tag = fingerprint(data_key)
            a = relay(other)
            b = jr.uniform(other, (4,))
            return model, noise, x, tag, a, b
        """,
}


def test_project_callees_decide_by_their_summaries(tmp_path):
    root = _project(tmp_path, MODULES)
    # init_model -> Net.__init__ -> eqx.nn.Linear draws; make_noise draws: reuse (line 9).
    # ignore (`del key`), unused (never reads it), fingerprint (hashes it): not draws.
    # relay -> make_noise draws: the uniform after it reuses `other` (line 15).
    assert _found([root]) == [("train.py", 9), ("train.py", 15)]


def test_one_file_run_equals_project_run(tmp_path):
    root = _project(tmp_path, MODULES)
    whole = api.check_paths([root], cache=False).diagnostics
    for path in sorted(root.rglob("*.py")):
        one = api.check_paths([path], cache=False).diagnostics
        mine = [(d.code, d.row, d.message) for d in whole if Path(d.filename).resolve() == path.resolve()]
        assert [(d.code, d.row, d.message) for d in one] == mine, path


def test_summary_records_draws_and_chains():
    src = textwrap.dedent(
        """
        import jax.random as jr

        def draws(key):
            return jr.normal(key)

        def passes(x, key):
            return draws(key)

        def drops(key):
            del key

        def stores(key):
            return {"key": key}
        """
    )
    from eqxlint.app.config import Settings
    from eqxlint.engine import run as engine

    run = engine.RunConfig(Settings(root=Path.cwd()))
    res = engine.lint_source(src, "m.py", run, "m")
    fns = res.facts["functions"]
    assert fns["m.draws"]["consumes"] == {"key": True}
    assert fns["m.passes"]["consumes"] == {"key": [["m.draws", 0]]}
    assert "consumes" not in fns["m.drops"] and fns["m.drops"]["flags"]["deleted"] == ["key"]
    assert "consumes" not in fns["m.stores"]


def test_vae_fixture(tmp_path):
    import shutil

    project = tmp_path / "vae_project"
    shutil.copytree(ROOT / "fixtures" / "vae_project", project)
    # `make_noise(init_key)` after `init_model(init_key)` (both in vae/): reuse;
    # `unused_key(data_key, x)` after `jr.normal(data_key, ...)`: `unused_key` dels its key.
    assert _found([project]) == [("train.py", 27)]
    assert _found([project / "train.py"]) == [("train.py", 27)]


def test_generated_init_stores_the_key(tmp_path):
    root = _project(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/state.py": """
                import equinox as eqx
                import jax

                class State(eqx.Module):
                    params: jax.Array
                    key: jax.Array

                class Noisy(eqx.nn.Linear):
                    pass
                """,
            "pkg/run.py": """
                import jax.random as jr
                from pkg.state import Noisy, State

                def start(params, key):
                    state = State(params, key)
                    layer = Noisy(2, 2, key=key)
                    return state, layer, jr.normal(key)
                """,
        },
    )
    # `State(params, key)` stores the key (generated __init__); `Noisy` inherits
    # `eqx.nn.Linear.__init__`, which draws: the `jr.normal` after it reuses the key.
    assert _found([root]) == [("run.py", 8)]


# --------------------------------------------------------------------------- EQX402


def test_402_follows_tracing_into_other_modules(tmp_path):
    root = _project(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/noise.py": """
                import jax.random as jr

                def jitter(x):
                    return x + jr.normal(jr.PRNGKey(0), x.shape)
                """,
            "pkg/train.py": """
                import jax
                from pkg.noise import jitter

                @jax.jit
                def step(x):
                    return jitter(x)
                """,
        },
    )
    diags = [d for d in api.check_paths([root], cache=False).diagnostics if d.code == "EQX402"]
    assert [(Path(d.filename).name, d.row) for d in diags] == [("noise.py", 5)]
    assert "inside traced code" in diags[0].message and "jax.jit" in diags[0].message
    # Without the jitted caller it is library code: the other message, still once.
    (root / "pkg" / "train.py").write_text("from pkg.noise import jitter\n\ndef step(x):\n    return jitter(x)\n")
    diags = [d for d in api.check_paths([root], cache=False).diagnostics if d.code == "EQX402"]
    assert len(diags) == 1 and "library function `jitter`" in diags[0].message


@pytest.mark.parametrize("path", ["pkg/model.py", "tests/test_model.py"])
def test_402_host_rng_reached_from_another_module(tmp_path, path):
    root = _project(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/aug.py": """
                import numpy as np

                def scale(x):
                    return x * np.random.uniform()
                """,
            path: """
                import jax
                from pkg.aug import scale

                @jax.jit
                def f(x):
                    return scale(x)
                """,
        },
    )
    assert _found([root], "EQX402") == [("aug.py", 5)]


def test_402_single_file_unchanged():
    src = textwrap.dedent(
        """
        import jax
        import jax.random as jr

        def helper(x):
            return x + jr.normal(jr.PRNGKey(0), x.shape)

        @jax.jit
        def f(x):
            return helper(x)
        """
    )
    found = [d for d in lint(src, path="pkg/m.py") if d.code == "EQX402"]
    assert [d.row for d in found] == [6] and "traced" in found[0].message


@pytest.mark.parametrize("base_body,expected", [
    ("self.rng = rng", []),
    ("self.w = jr.normal(rng, ())", [("state.py", 11)]),
])
def test_401_super_init_is_the_base_init_in_another_module(tmp_path, base_body, expected):
    """`super().__init__(rng=rng)` is the base class's `__init__` (issue 13, netket's sampler
    state): forwarding the key there draws only if that one draws."""
    root = _project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.py": f"""
            import jax.random as jr

            class Base:
                def __init__(self, rng):
                    {base_body}
            """,
        "pkg/state.py": """
            import jax.random as jr
            from pkg.base import Base

            class State(Base):
                def __init__(self, rng):
                    super().__init__(rng=rng)

            def init_state(key):
                state = State(rng=key)
                return state, jr.normal(key, ())
            """,
    })
    assert _found([root]) == expected
