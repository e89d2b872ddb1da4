"""`split_by_tree`: one PRNG key per leaf of a PyTree."""

from collections.abc import Callable
from typing import Any

import jax
import jax.random as jr
import jax.tree_util as jtu
from jaxtyping import Array, PRNGKeyArray, PyTree


def split_by_tree(
    key: PRNGKeyArray,
    tree: PyTree[Any],
    *,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree[PRNGKeyArray]:
    """Split `key` into one independent key per leaf of `tree`.

    Pair it with `jax.tree_util.tree_map` to sample a PyTree leaf by leaf, without
    relying on an implicit leaf ordering:

    ```python
    keys = split_by_tree(key, shapes)
    out = jax.tree_util.tree_map(lambda k, s: jr.normal(k, s.shape), keys, shapes)
    ```

    **Arguments:**

    - `key`: a single PRNG key of any implementation (threefry, rbg, unsafe_rbg, ...):
      either a new-style typed key (`jax.random.key`, shape `()`) or a raw `uint32` key
      (`jax.random.PRNGKey`) of the default implementation (`jax_default_prng_impl`:
      shape `(2,)` for threefry, `(4,)` for rbg).
    - `tree`: any PyTree; only its structure is used (e.g. a tree of
      `jax.ShapeDtypeStruct`s or of arrays).
    - `is_leaf`: as for `jax.tree_util.tree_flatten`.

    **Returns:**

    A PyTree with the structure of `tree` whose leaves are keys of the same kind as
    `key` (typed keys stay typed with the same implementation, raw keys stay raw
    `uint32` keys of the same shape).

    **Raises:**

    `ValueError` for a batch of keys, or for a raw key whose shape is not the default
    implementation's.
    """
    leaves, treedef = jtu.tree_flatten(tree, is_leaf=is_leaf)
    key = jax.numpy.asarray(key)
    is_typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if is_typed:
        typed = key
    else:
        # A raw key belongs to the default implementation, whatever its key shape
        # (looked up at call time: JAX's trace caches do not key on that setting).
        try:
            if key.dtype != jax.numpy.uint32:
                raise TypeError
            typed = jr.wrap_key_data(key)
        except TypeError:
            raw_shape = jr.key_data(jr.key(0)).shape
            raise ValueError(
                "split_by_tree expects a single key: a typed key (`jax.random.key`) or a "
                f"raw uint32{list(raw_shape)} key (`jax.random.PRNGKey` with "
                f"jax_default_prng_impl={jax.config.jax_default_prng_impl!r}), got "
                f"{key.dtype}{list(key.shape)}"
            ) from None
    if typed.shape != ():
        raise ValueError(f"split_by_tree expects a single key, got a batch of shape {typed.shape}")
    keys: Array = jr.split(typed, len(leaves))
    if not is_typed:
        keys = jr.key_data(keys)
    return jtu.tree_unflatten(treedef, [keys[i] for i in range(len(leaves))])
