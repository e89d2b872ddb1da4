"""`assert_static_unchanged`: check that the static part of a state did not change."""

import dataclasses
from typing import Any

import equinox as eqx
import jax.tree_util as jtu
from jaxtyping import PyTree


class StaticChangedError(AssertionError):
    """Raised by [`assert_static_unchanged`][] when the static part (structure,
    non-array leaves, optionally array shapes/dtypes) of a PyTree changed."""


def _aval(x: Any) -> tuple[tuple[int, ...], Any]:
    return (tuple(x.shape), x.dtype)


def _structure_diff(old: Any, new: Any, where: str) -> list[str]:
    """Best-effort description of where two PyTrees' structures differ, looking inside
    `eqx.Module` fields (static fields included), sequences and dicts."""
    if type(old) is not type(new):
        return [f"  {where}: {type(old).__name__} became {type(new).__name__}"]
    if isinstance(old, eqx.Module):
        out = []
        for field in dataclasses.fields(old):
            o, n = getattr(old, field.name, None), getattr(new, field.name, None)
            if field.metadata.get("static", False):
                if not (eqx.tree_equal(o, n) is True):
                    out.append(f"  {where}.{field.name} (static field): {o!r} became {n!r}")
            else:
                out.extend(_structure_diff(o, n, f"{where}.{field.name}"))
        return out
    if isinstance(old, (list, tuple)):
        if len(old) != len(new):
            return [f"  {where}: length {len(old)} became {len(new)}"]
        return [d for i, (o, n) in enumerate(zip(old, new)) for d in _structure_diff(o, n, f"{where}[{i}]")]
    if isinstance(old, dict):
        if set(old) != set(new):
            return [f"  {where}: keys {sorted(map(repr, old))} became {sorted(map(repr, new))}"]
        return [d for k in old for d in _structure_diff(old[k], new[k], f"{where}[{k!r}]")]
    if jtu.tree_structure(old) != jtu.tree_structure(new):
        return [f"  {where}: {jtu.tree_structure(old)} became {jtu.tree_structure(new)}"]
    return []


def assert_static_unchanged(
    old: PyTree[Any],
    new: PyTree[Any],
    *,
    check_shapes: bool = True,
    name: str = "state",
) -> None:
    """Partition `old` and `new` with `eqx.is_array` and check that their static parts
    are equal: same PyTree structure, equal non-array leaves and (by default) the same
    shape and dtype for every array leaf.

    Use it at the end of a loop step, before `eqx.combine`-ing a new dynamic part with
    an old static part. Everything compared is known at trace time, so it works inside
    `jax.jit`/`eqx.filter_jit` too (it raises during tracing).

    **Arguments:**

    - `old`: the PyTree before the update.
    - `new`: the PyTree after the update.
    - `check_shapes`: also compare the shape and dtype of every array leaf (a change
      would cause a recompilation, or an error inside `lax.scan`/`lax.while_loop`).
    - `name`: what to call the PyTree in the error message.

    **Returns:**

    `None`.

    **Raises:**

    [`StaticChangedError`][] (an `AssertionError`) naming the path of every leaf that
    changed, or describing the structure change.
    """
    old_struct = jtu.tree_structure(old)
    new_struct = jtu.tree_structure(new)
    if old_struct != new_struct:
        details = _structure_diff(old, new, name)
        raise StaticChangedError(
            f"the structure of {name} changed:\n"
            + ("\n".join(details) + "\n" if details else "")
            + f"  old: {old_struct}\n  new: {new_struct}"
        )
    _, old_static = eqx.partition(old, eqx.is_array)
    _, new_static = eqx.partition(new, eqx.is_array)
    old_leaves = jtu.tree_flatten_with_path(old, is_leaf=lambda x: x is None)[0]
    new_leaves = jtu.tree_leaves(new, is_leaf=lambda x: x is None)
    problems = []
    for (path, o), n in zip(old_leaves, new_leaves):
        where = f"{name}{jtu.keystr(path)}"
        o_arr, n_arr = eqx.is_array(o), eqx.is_array(n)
        if o_arr != n_arr:
            kind = lambda x: "array" if eqx.is_array(x) else f"static {type(x).__name__}"
            problems.append(f"  {where}: {kind(o)} became {kind(n)} ({n!r})")
        elif o_arr:
            if check_shapes and _aval(o) != _aval(n):
                problems.append(
                    f"  {where}: array {o.dtype}{list(o.shape)} became "
                    f"{n.dtype}{list(n.shape)}"
                )
        elif not (eqx.tree_equal(o, n) is True):
            problems.append(f"  {where}: {o!r} became {n!r}")
    if problems:
        raise StaticChangedError(
            f"the static part of {name} changed:\n" + "\n".join(problems)
        )
    # The static parts are equal leaf-by-leaf; also catch static data held in the
    # treedefs of the static partitions (e.g. `eqx.field(static=True)`).
    if jtu.tree_structure(old_static) != jtu.tree_structure(new_static):
        raise StaticChangedError(
            f"the static part of {name} changed (static fields in the PyTree "
            f"structure):\n  old: {jtu.tree_structure(old_static)}\n"
            f"  new: {jtu.tree_structure(new_static)}"
        )
