"""Scenario tests for the PRNG rules: EQX401 key-reuse, EQX402 key-made-in-traced-code,
EQX403 split-by-leaf-count. The catalogue examples (rules/EQX40*.md) cover the basics; these
cover real-code shapes (paths, messages, options, flow corner cases)."""

from __future__ import annotations

import textwrap

import pytest

from helpers import lint, rows


def _rows(src: str, code: str, **kw) -> list:
    return rows(textwrap.dedent(src), code, **kw)


def _msgs(src: str, code: str, **kw) -> list:
    return [d.message for d in lint(textwrap.dedent(src), **kw) if d.code == code]


# --------------------------------------------------------------------------- EQX401


def test_401_message_names_first_use_and_fix():
    (msg,) = _msgs(
        """
        import jax.random as jr
        import equinox as eqx

        def build(key):
            lin = eqx.nn.Linear(2, 2, key=key)
            return lin, jr.normal(key, (2,))
        """,
        "EQX401",
    )
    assert "after line 6" in msg and "eqx.nn.Linear" in msg
    assert "jr.split(key)" in msg


def test_401_loop_message_names_loop():
    (msg,) = _msgs(
        """
        import jax.random as jr

        def f(key, xs):
            for x in xs:
                x = x + jr.normal(key, x.shape)
            return x
        """,
        "EQX401",
    )
    assert "`for` loop at line 5" in msg and "every iteration" in msg


def test_401_module_level_script():
    src = """
    import jax.random as jr
    import equinox as eqx

    key = jr.PRNGKey(0)
    model = eqx.nn.MLP(2, 2, 8, 2, key=key)
    data = jr.normal(key, (10, 2))
    key, sub = jr.split(key)
    more = jr.normal(sub, (10, 2))
    """
    # a split after the key was used is reuse too
    assert _rows(src, "EQX401") == [7, 8]


def test_401_three_uses_reported_twice():
    src = """
    import jax.random as jr

    def f(key):
        a = jr.normal(key)
        b = jr.uniform(key)
        c = jr.split(key)
        return a, b, c
    """
    assert _rows(src, "EQX401") == [6, 7]


def test_401_two_uses_in_one_expression():
    src = """
    import jax.random as jr

    def f(key):
        return jr.normal(key, (2,)) + jr.uniform(key, (2,))
    """
    assert _rows(src, "EQX401") == [5]


def test_401_branch_then_join_is_reuse():
    src = """
    import jax.random as jr

    def f(key, flag):
        if flag:
            x = jr.normal(key)
        else:
            x = 0.0
        return x + jr.uniform(key)
    """
    assert _rows(src, "EQX401") == [9]


def test_401_exclusive_paths_and_rebinding_are_fine():
    src = """
    import jax.random as jr

    def f(key, other, flag, mode):
        if key is None:
            key = jr.PRNGKey(0)
        if flag:
            x = jr.normal(key)
        elif mode:
            raise ValueError(jr.uniform(key))
        else:
            x = jr.uniform(key)
        if flag:
            key = jr.split(other)[0]
        else:
            key, _ = jr.split(other)
        y = jr.normal(key)
        key = None
        return x, y
    """
    assert _rows(src, "EQX401") == []


def test_401_while_loop_split_per_iteration_ok():
    src = """
    import jax.random as jr

    def f(key, n):
        out = []
        while len(out) < n:
            key, sub = jr.split(key)
            out.append(jr.normal(sub))
        else:
            last = jr.normal(key)
        return out, last
    """
    assert _rows(src, "EQX401") == []


def test_401_nested_loops_report_inner():
    src = """
    import jax.random as jr

    def f(key, n, m):
        for i in range(n):
            key, sub = jr.split(key)
            for j in range(m):
                x = jr.normal(sub)
        return x
    """
    assert _rows(src, "EQX401") == [8]


def test_401_range_one_and_literal_singleton_loops_are_one_iteration():
    src = """
    import jax.random as jr

    def f(key):
        for _ in range(1):
            a = jr.normal(key)
        return a

    def g(key):
        return [jr.normal(key) for _ in (0,)]
    """
    assert _rows(src, "EQX401") == []


def test_401_variable_index_and_vmap_over_split():
    src = """
    import jax
    import jax.random as jr

    def f(key, xs):
        keys = jr.split(key, len(xs))
        out = [jr.normal(keys[i]) for i in range(len(xs))]
        samples = jax.vmap(lambda k: jr.normal(k))(jr.split(keys[0], 4))
        return out, samples
    """
    assert _rows(src, "EQX401") == []


def test_401_key_passed_down_and_returned():
    src = """
    import jax.random as jr

    def step(x, key):
        key, sub = jr.split(key)
        return x + jr.normal(sub), key

    def run(x, key):
        x, key = step(x, key)
        x, key = step(x, key)
        return x + jr.normal(key)
    """
    assert _rows(src, "EQX401") == []


def test_401_key_given_to_user_function_then_sampled():
    src = """
    import jax.random as jr

    def init(key):
        return jr.normal(key, (3,))

    def run(key):
        params = init(key)
        noise = jr.normal(key, (3,))
        return params + noise
    """
    assert _rows(src, "EQX401") == [9]


def test_401_fold_in_twice_ok_but_then_sampler_flagged():
    src = """
    import jax.random as jr

    def f(key, t):
        a = jr.normal(jr.fold_in(key, t))
        b = jr.normal(jr.fold_in(key, t + 1))
        c = jr.normal(key)
        return a, b, c
    """
    assert _rows(src, "EQX401") == [7]


def test_401_looking_at_a_key_is_not_using_it():
    src = """
    import jax
    import jax.numpy as jnp
    import jax.random as jr

    def is_prng_key(key):
        return True

    def f(key):
        assert is_prng_key(key)
        jax.debug.print("{}", key)
        print(key, len(key), isinstance(key, jax.Array), jr.key_data(key), jnp.shape(key))
        state = TrainState(step=0, rng=key)
        return jr.normal(key), state
    """
    assert _rows(src, "EQX401") == []


def test_401_test_files_allow_deliberate_replay():
    src = """
    import jax.random as jr
    import numpy as np

    def test_deterministic():
        key = jr.PRNGKey(0)
        np.testing.assert_array_equal(sample(key), sample(key))
        a = jr.normal(key, (3,))
        b = jr.normal(key, (3,))
        assert (a == b).all()
    """
    assert _rows(src, "EQX401", path="tests/test_sampling.py") == []
    # ...but different draws from one key are still correlated data.
    src2 = """
    import jax.random as jr

    def test_loss():
        key = jr.PRNGKey(0)
        preds = jr.normal(key, (8,))
        targets = jr.bernoulli(key, 0.5, (8,))
    """
    assert _rows(src2, "EQX401", path="tests/test_loss.py") == [7]
    # Outside tests, the same replay is reuse.
    assert _rows(src, "EQX401", path="pkg/sampling.py") == [7, 8, 9]


def test_401_numpyro_seed_handler_shares_key_on_purpose():
    src = """
    from jax import random
    from numpyro.handlers import seed

    def elbo(model, guide, rng_key):
        plate_key, rng_key = random.split(rng_key)
        m = seed(model, plate_key)
        g = seed(guide, plate_key)
        return m, g, random.normal(plate_key)
    """
    assert _rows(src, "EQX401") == [9]


def test_401_non_prng_keys_are_ignored():
    src = """
    import jax.random as jr

    def attention(query, key, value):
        return dot(query, key=key, value=value) + dot(query, key=key, value=value)

    def dot(query, key, value):
        return query

    def lookup(table, names):
        for key in names:
            print(table.get(key), sorted(names, key=key))
        return jr.PRNGKey(0)
    """
    assert _rows(src, "EQX401") == []


def test_401_nested_functions_are_analysed_separately():
    src = """
    import jax.random as jr

    def outer(key):
        a = jr.normal(key)

        def inner(key):
            return jr.normal(key)

        return a, inner
    """
    assert _rows(src, "EQX401") == []


def test_401_files_without_jax_are_skipped():
    src = """
    def f(key):
        g(key=key)
        g(key=key)
    """
    assert _rows(src, "EQX401") == []


def test_401_noqa():
    src = """
    import jax.random as jr

    def f(key):
        a = jr.normal(key)
        b = jr.normal(key)  # noqa: EQX401
        return a, b
    """
    assert _rows(src, "EQX401") == []


def test_401_scan_body_closure_and_carry():
    src = """
    import jax.random as jr
    from jax import lax

    def f(key, xs):
        def bad(c, x):
            return c + jr.normal(key), None

        def good(c, x):
            k, acc = c
            k, sub = jr.split(k)
            return (k, acc + jr.normal(sub)), None

        lax.scan(good, (key, 0.0), xs)
        return lax.scan(bad, 0.0, xs)
    """
    assert _rows(src, "EQX401") == [7]


# --------------------------------------------------------------------------- EQX402

TRACED_CONST_KEY = """
import jax
import jax.random as jr

@jax.jit
def f(x):
    return x + jr.normal(jr.PRNGKey(0), x.shape)
"""

LIBRARY_CONST_KEY = """
import jax.random as jr

def jitter(x):
    k = jr.PRNGKey(0)
    return x + jr.normal(k, x.shape)
"""


@pytest.mark.parametrize(
    "path",
    ["scripts/train.py", "examples/demo.py", "benchmarks/bench_rng.py", "tests/test_f.py", "pkg/f_test.py"],
)
def test_402_scripts_examples_and_tests_may_build_keys(path):
    assert _rows(TRACED_CONST_KEY, "EQX402", path=path) == []
    assert _rows(LIBRARY_CONST_KEY, "EQX402", path=path) == []


def test_402_library_paths_are_checked():
    assert _rows(TRACED_CONST_KEY, "EQX402", path="pkg/model.py") == [7]
    assert _rows(LIBRARY_CONST_KEY, "EQX402", path="pkg/model.py") == [5]


def test_402_library_option_off_keeps_traced_case():
    opts = {"rule_options": {"EQX402": {"library": False}}}
    assert _rows(LIBRARY_CONST_KEY, "EQX402", **opts) == []
    assert _rows(TRACED_CONST_KEY, "EQX402", **opts) == [7]


def test_402_host_rng_in_traced_code_even_in_scripts():
    src = """
    import jax
    import numpy as np

    @jax.jit
    def f(x):
        return x + np.random.default_rng(0).normal()
    """
    assert _rows(src, "EQX402", path="scripts/run.py") == [7]


def test_402_message_mentions_trace_and_fix():
    (msg,) = _msgs(TRACED_CONST_KEY, "EQX402")
    assert "jax.jit" in msg and "key" in msg and "jr.split" in msg


def test_402_main_block_and_seed_argument():
    src = """
    import jax
    import jax.random as jr

    @jax.jit
    def f(x, seed):
        return x + jr.normal(jr.key(seed), x.shape)

    def g(seeds):
        return jax.vmap(jr.PRNGKey)(seeds)

    if __name__ == "__main__":
        k = jr.PRNGKey(0)
        print(jr.normal(k))
    """
    assert _rows(src, "EQX402", path="pkg/run.py") == []


def test_402_stdlib_random_vs_jax_random():
    src = """
    import jax
    from jax import random

    @jax.jit
    def f(x, key):
        return x + random.normal(key, x.shape)
    """
    assert _rows(src, "EQX402") == []


# --------------------------------------------------------------------------- EQX403


_SPLIT_PER_LEAF = """
import jax
import jax.random as jr

def f(params, key):
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jr.split(key, len(leaves))
    new = [p + jr.normal(k, p.shape) for k, p in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, new)
"""


def test_403_message_points_to_split_by_tree():
    # In an Equinox file the advice is the runtime companion (which needs Equinox); elsewhere
    # it is the plain-JAX spelling.
    (msg,) = _msgs("import equinox as eqx\n" + _SPLIT_PER_LEAF, "EQX403")
    assert "eqxlint.runtime.split_by_tree(key, params)" in msg


def test_403_message_outside_equinox_is_plain_jax():
    (msg,) = _msgs(_SPLIT_PER_LEAF, "EQX403")
    assert "split_by_tree" not in msg and "treedef.num_leaves" in msg


def test_403_keyword_num_and_flatten_index():
    src = """
    import jax
    import jax.random as jr

    def f(params, key):
        leaves = jax.tree_util.tree_flatten(params)[0]
        keys = jr.split(key, num=len(leaves))
        return [jr.normal(k, p.shape) for k, p in zip(keys, leaves)]
    """
    assert _rows(src, "EQX403") == [7]


def test_403_unrelated_counts_are_fine():
    src = """
    import jax
    import jax.random as jr

    def f(params, key, n):
        leaves = jax.tree_util.tree_leaves(params)
        keys = jr.split(key, n)
        return [jr.normal(k, p.shape) for k, p in zip(keys, leaves)]
    """
    assert _rows(src, "EQX403") == []


def test_401_key_named_parameters_are_keys_in_jax_random_files():
    src = """
    import jax.random as jr

    def train(model, data, key):
        for x in data:
            loss = step(model, x, key)
        return loss

    def step(model, x, key):
        return model(x) + jr.normal(key)

    def guides(parts, rng_key):
        noise = jr.normal(rng_key)
        return [p.sample(rng_key) for p in parts]
    """
    assert _rows(src, "EQX401") == [6, 14]


def test_401_key_named_parameters_used_as_dict_keys_are_not_keys():
    src = """
    import jax.random as jr

    def fetch(table, key):
        if key in table:
            return table[key]
        record(key)
        return record(key)

    def compile(self, rng_key, args):
        self.run(rng_key, args)
        return _hashable(rng_key)

    class Cache:
        def get(self, key):
            return load(key), load(key)

        def __getitem__(self, key):
            return load(key), load(key)

    def no_random(key):
        return f(key), f(key)
    """
    assert _rows(src, "EQX401") == []
    # and in a file that never uses jax.random, key-named parameters are left alone
    assert _rows("import jax\n\ndef g(key):\n    f(key)\n    f(key)\n", "EQX401") == []


# --------------------------------------------------------------------------- issue 13: causes seen on unseen packages


def test_401_messages_use_the_files_own_spelling():
    """No `jr` alias: the earlier use is named as written, the advice spells `jax.random.split`."""
    (msg,) = _msgs(
        """
        import jax

        def f(key):
            a = jax.random.normal(key, ())
            b = jax.random.uniform(key, ())
            return a + b
        """,
        "EQX401",
    )
    assert "by `jax.random.uniform`" in msg and "(by `jax.random.normal`)" in msg
    assert "jax.random.split(key)" in msg and "jr." not in msg
    (msg,) = _msgs(
        """
        from jax import random

        def f(key):
            return random.normal(key, ()) + random.normal(key, ())
        """,
        "EQX401",
    )
    assert "random.split(key)" in msg and "jr." not in msg


def test_401_returned_in_its_own_container_is_not_a_use_before_return():
    src = """
        import jax

        class State:
            def __init__(self, rng):
                self.rng = jax.random.normal(rng, ())

        def init_state(key):
            k, _ = jax.random.split(key)
            return State(rng=k)
        """
    assert _rows(src, "EQX401") == []


def test_402_discarded_draw_is_not_reported():
    src = """
        import jax

        def train(state, steps):
            jax.random.normal(jax.random.PRNGKey(0), ()).block_until_ready()
            return state

        def noisy(x):
            return x + jax.random.normal(jax.random.PRNGKey(0), x.shape)  # still reported
        """
    assert _rows(src, "EQX402") == [9]
    (msg,) = _msgs(src, "EQX402")
    assert "jax.random.split" in msg and "jr." not in msg and "returns the same" not in msg
