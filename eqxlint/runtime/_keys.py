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

    - `key`: a single PRNG key: either a new-style typed key (`jax.random.key`, shape
      `()`) or a legacy `uint32[2]` key (`jax.random.PRNGKey`).
    - `tree`: any PyTree; only its structure is used (e.g. a tree of
      `jax.ShapeDtypeStruct`s or of arrays).
    - `is_leaf`: as for `jax.tree_util.tree_flatten`.

    **Returns:**

    A PyTree with the structure of `tree` whose leaves are keys of the same kind as
    `key` (typed keys stay typed, legacy keys stay `uint32[2]`).
    """
    leaves, treedef = jtu.tree_flatten(tree, is_leaf=is_leaf)
    is_typed = jax.dtypes.issubdtype(jax.numpy.asarray(key).dtype, jax.dtypes.prng_key)
    if is_typed:
        if key.shape != ():
            raise ValueError(f"split_by_tree expects a single key, got shape {key.shape}")
    elif key.shape != (2,):
        raise ValueError(
            "split_by_tree expects a single typed key (`jax.random.key`) or a legacy "
            f"uint32[2] key (`jax.random.PRNGKey`), got shape {key.shape}"
        )
    keys: Array = jr.split(key, len(leaves))
    return jtu.tree_unflatten(treedef, [keys[i] for i in range(len(leaves))])
