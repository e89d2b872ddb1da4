"""EQX401 as a domain of the shared flow engine: control flow corner cases, the allowed break
(one draw applied to aligned arrays), values in key positions that are not keys, and messages
whose fixes are valid code."""

from __future__ import annotations

import textwrap

import pytest

from helpers import lint


def _rows(src: str, code: str = "EQX401", **kw) -> list:
    return sorted(d.row for d in lint(textwrap.dedent(src), **kw) if d.code == code)


def _msgs(src: str, code: str = "EQX401", **kw) -> list:
    return [d.message for d in lint(textwrap.dedent(src), **kw) if d.code == code]


# --------------------------------------------------------------------------- control flow


def test_except_handler_starts_from_the_state_before_try():
    src = """
    import jax.random as jr

    def robust(key, x):
        try:
            y = jr.normal(key, x.shape)
        except ValueError:
            y = jr.uniform(key, x.shape)
        else:
            y = y + jr.uniform(key, x.shape)
        return y
    """
    # the handler is a fallback for the draw; `else` runs after it
    assert _rows(src) == [10]


def test_loop_whose_body_returns_does_not_flow_on():
    src = """
    import jax.random as jr

    def first(key, xs):
        for x in xs:
            return x + jr.normal(key)
        return jr.uniform(key)
    """
    assert _rows(src) == []


def test_key_rebound_on_some_paths_only():
    src = """
    import jax.random as jr

    def walk(key, n, every):
        x = 0.0
        for i in range(n):
            x = x + jr.normal(key)
            if i % every == 0:
                key = jr.PRNGKey(i)
        return x
    """
    (msg,) = _msgs(src)
    assert "does not split or rebind it on every path" in msg


def test_continue_path_still_counts_as_the_loop():
    src = """
    import jax.random as jr

    def f(key, xs):
        out = []
        for x in xs:
            if x is None:
                out.append(jr.normal(key))
                continue
            out.append(x)
        return out
    """
    assert _rows(src) == [8]


def test_match_arms_are_exclusive():
    src = """
    import jax.random as jr

    def f(key, kind):
        match kind:
            case "n":
                x = jr.normal(key)
            case _:
                x = jr.uniform(key)
        return x
    """
    assert _rows(src) == []


def test_alias_then_draw_from_both_names():
    src = """
    import jax.random as jr

    def f(key):
        k = key
        a = jr.normal(k)
        return a, jr.uniform(key)
    """
    assert _rows(src) == [7]


# --------------------------------------------------------------------------- allowed break


@pytest.mark.parametrize(
    "setup",
    [
        "x, y = batch",
        "x, y = batch['x'], batch['y']\n    assert x.shape[0] == y.shape[0]",
        "x = batch[0]\n    y = batch[1]\n    pairs = list(zip(x, y))",
    ],
)
def test_same_permutation_of_aligned_arrays_is_silent(setup):
    src = f"""
import jax.random as jr

def shuffle(key, batch):
    {setup}
    return jr.permutation(key, x), jr.permutation(key, y)
"""
    assert _rows(src) == []


def test_columns_of_one_container_are_aligned():
    src = """
    import jax.random as jr

    def shuffle(key, batch):
        return jr.permutation(key, batch["image"]), jr.permutation(key, batch["label"])
    """
    assert _rows(src) == []


def test_same_permutation_of_two_arrays_is_one_draw_whatever_the_names():
    # issue 13 (flashbax): the same permutation draw (same key, same shape and axis arguments)
    # applied to two arrays is the pairing idiom, decided from the draws, not the names; the
    # same draw on the same array twice, or on two sizes, is still reuse.
    src = """
    import jax.random as jr

    def shuffle(key, params, data):
        return jr.permutation(key, params), jr.permutation(key, data)

    def views(key, x):
        return jr.permutation(key, x), jr.permutation(key, x)

    def sizes(key, x, y):
        return jr.permutation(key, len(x)), jr.permutation(key, len(y))
    """
    assert _rows(src) == [8, 11]


def test_same_permutation_with_different_axis_fires():
    src = """
    import jax.random as jr

    def shuffle(key, x, y):
        return jr.permutation(key, x, axis=0), jr.permutation(key, y, axis=1)
    """
    assert _rows(src) == [5]


def test_index_draw_reused_through_names():
    src = """
    import jax.random as jr

    def batches(key, xs, ys, b):
        idx = jr.choice(key, xs.shape[0], (b,))
        xb = xs[idx]
        idy = jr.choice(key, xs.shape[0], (b,))
        yb = ys[idy]
        return xb, yb

    def two_offsets(key, n):
        i = jr.randint(key, (), 0, n)
        j = jr.randint(key, (), 0, n)
        return i, j
    """
    # the same index draw for two aligned arrays is deliberate; two "independent" offsets are not
    assert _rows(src) == [13]


def test_augmentation_helpers_on_image_and_mask():
    src = """
    import jax.random as jr
    from mylib import random_crop, add_noise

    def augment(key, image, mask):
        image = random_crop(key, image, 32)
        mask = random_crop(key, mask, 32)
        return image, mask

    def noisy(key, image, mask):
        return add_noise(key, image), add_noise(key, mask)
    """
    assert _rows(src) == [11]


# --------------------------------------------------------------------------- what is a key


def test_values_in_key_positions_that_are_not_keys():
    src = """
    import jax.random as jr

    def run(seed: int, names, table):
        env = make_env(seed)
        env2 = make_env(seed)
        for key in names:
            a = lookup(table, key)
            b = lookup(table, key)
        order = sorted(names, key=len)
        return env, env2, order, jr.normal(jr.PRNGKey(seed))

    def make_env(seed):
        return seed

    def lookup(table, key):
        return table[key]
    """
    assert _rows(src) == []


def test_key_named_parameter_without_evidence_is_not_a_key():
    src = """
    import jax.random as jr

    def describe(key, registry):
        return render(key), render(key)

    def sample(key):
        return jr.normal(key)
    """
    assert _rows(src) == []


def test_key_through_tuples_and_split_index():
    src = """
    import jax.random as jr
    import equinox as eqx

    def build(key):
        keys = (jr.split(key)[0], jr.split(key)[1])
        a = eqx.nn.Linear(2, 2, key=keys[0])
        b = eqx.nn.Linear(2, 2, key=keys[0])
        return a, b
    """
    # `jr.split(key)` twice on one key, and `keys[0]` given to two layers
    assert _rows(src) == [6, 8]


def test_annotated_module_field_key():
    src = """
    import equinox as eqx
    import jax.random as jr
    from jaxtyping import PRNGKeyArray

    class Noisy(eqx.Module):
        key: PRNGKeyArray

        def __call__(self, x, model):
            y = model(x, key=self.key)
            return y + jr.normal(self.key, x.shape)
    """
    assert _rows(src) == [11]


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    "tok,fix",
    [
        ("subkeys[0]", "`k1, k2 = jr.split(subkeys[0])`"),
        ("self.rng", "`k1, k2 = jr.split(self.rng)`"),
        ("subkey", "`subkey, sub = jr.split(subkey)` and pass `sub`"),
        ("key", "`key, subkey = jr.split(key)` and pass `subkey`"),
    ],
)
def test_fix_names_are_valid(tok, fix):
    src = f"""
import jax.random as jr

class A:
    def f(self, subkeys, subkey, key):
        a = jr.normal({tok})
        b = jr.uniform({tok})
        return a, b
"""
    (msg,) = _msgs(src)
    assert fix in msg
    assert "subkeys, subkey = jr.split(subkeys)" not in msg
    if tok == "subkeys[0]":
        assert "another element of `subkeys`" in msg


def test_message_cites_the_previous_iteration():
    src = """
    import jax.random as jr

    def f(key, xs, flag):
        out = []
        for x in xs:
            out.append(jr.normal(key))
            if flag:
                key = jr.split(key)[0]
            out.append(jr.uniform(key))
        return out
    """
    msgs = _msgs(src)
    assert any("in the previous iteration" in m or "on every path" in m for m in msgs)
