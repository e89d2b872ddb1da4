"""`assert_static_unchanged`: check that the static part of a state did not change.

Also the PyTree comparison shared with [`filter_cond`][] and [`filter_switch`][]: it walks
two PyTrees side by side and names the path of every difference (static fields of an
`eqx.Module` included), treating NaN static leaves as equal to NaN.
"""

import cmath
import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.tree_util as jtu
import numpy as np
from jaxtyping import PyTree


class StaticChangedError(AssertionError):
    """Raised by [`assert_static_unchanged`][] when the static part (structure,
    non-array leaves, optionally array shapes/dtypes) of a PyTree changed."""


class _ArraySpec:
    """Stands for an array leaf (its shape and dtype only) in a compared PyTree; it is
    not a PyTree node, so it is a leaf."""

    __slots__ = ("shape", "dtype")

    def __init__(self, x: Any):
        self.shape = tuple(x.shape)
        self.dtype = x.dtype

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ArraySpec) and (self.shape, self.dtype) == (other.shape, other.dtype)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))

    def __repr__(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


def _spec_tree(tree: PyTree[Any]) -> PyTree[Any]:
    """`tree` with every array leaf (concrete or traced) replaced by its `_ArraySpec`."""
    return jtu.tree_map(lambda x: _ArraySpec(x) if eqx.is_array(x) else x, tree)


_FLOATS = (float, complex, np.floating, np.complexfloating)


def _static_equal(a: Any, b: Any) -> bool:
    """Equality of two static (non-array) values, where NaN equals NaN (also inside
    tuples, lists, dicts and NumPy arrays)."""
    if a is b:
        return True
    if isinstance(a, _FLOATS) and isinstance(b, _FLOATS):
        if cmath.isnan(a) and cmath.isnan(b):
            return True
        return bool(a == b)
    if type(a) in (tuple, list) and type(b) is type(a):
        return len(a) == len(b) and all(map(_static_equal, a, b))
    if type(a) is dict and type(b) is dict:
        return a.keys() == b.keys() and all(_static_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            a, b = np.asarray(a), np.asarray(b)
            return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        except Exception:  # noqa: BLE001 -- incomparable objects are different
            return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 -- e.g. `==` returning an array of several values
        return False


def _describe(x: Any) -> str:
    if isinstance(x, _ArraySpec):
        return f"array {x}"
    if x is None:
        return "None"
    return repr(x)


def _describe_kind(x: Any) -> str:
    if isinstance(x, _ArraySpec):
        return f"array {x}"
    if x is None:
        return "None"
    if _is_node(x):
        return f"a {type(x).__name__}"
    return f"static {type(x).__name__} {x!r}"


def _is_node(x: Any) -> bool:
    return x is not None and not jtu.treedef_is_leaf(jtu.tree_structure(x, is_leaf=lambda y: y is not x))


Formatter = Callable[[str, str, str], str]


def tree_differences(
    a: PyTree[Any], b: PyTree[Any], where: str, fmt: Formatter, *, check_shapes: bool = True
) -> list[str]:
    """Every difference between the PyTrees `a` and `b` (arrays compared by shape and
    dtype only, or not at all if `check_shapes=False`; static leaves and static fields
    by value, NaN equal to NaN), one line per difference, each `fmt(path, a_part,
    b_part)`. An empty list means "the same"."""
    out: list[str] = []
    _diff(_spec_tree(a), _spec_tree(b), where, fmt, check_shapes, out)
    return out


def _diff(a: Any, b: Any, where: str, fmt: Formatter, check_shapes: bool, out: list[str]) -> None:
    if a is b:
        return
    a_arr, b_arr = isinstance(a, _ArraySpec), isinstance(b, _ArraySpec)
    if a_arr and b_arr:
        if check_shapes and a != b:
            out.append(fmt(where, f"array {a}", f"{b}"))
        return
    if a_arr or b_arr or type(a) is not type(b):
        out.append(fmt(where, _describe_kind(a), _describe_kind(b)))
        return
    if a is None:
        return
    if not _is_node(a):
        if not _static_equal(a, b):
            out.append(fmt(where, _describe(a), _describe(b)))
        return
    if isinstance(a, eqx.Module):
        for field in dataclasses.fields(a):
            fa, fb = getattr(a, field.name, None), getattr(b, field.name, None)
            if field.metadata.get("static", False):
                if not _static_equal(fa, fb):
                    out.append(fmt(f"{where}.{field.name} (static field)", _describe(fa), _describe(fb)))
            else:
                _diff(fa, fb, f"{where}.{field.name}", fmt, check_shapes, out)
        return
    if isinstance(a, (list, tuple)) and len(a) != len(b):
        out.append(fmt(where, f"length {len(a)}", f"{len(b)}"))
        return
    if isinstance(a, dict) and a.keys() != b.keys():
        out.append(fmt(where, f"keys {sorted(map(repr, a))}", f"{sorted(map(repr, b))}"))
        return
    children_a, def_a = jtu.tree_flatten_with_path(a, is_leaf=lambda y: y is not a)
    children_b, def_b = jtu.tree_flatten_with_path(b, is_leaf=lambda y: y is not b)
    meta_a, meta_b = def_a.node_data()[1], def_b.node_data()[1]
    if not _static_equal(meta_a, meta_b) or len(children_a) != len(children_b):
        out.append(fmt(where, f"{type(a).__name__} with metadata {meta_a!r}", f"{meta_b!r}"))
        return
    for (pa, ca), (pb, cb) in zip(children_a, children_b):
        key = jtu.keystr(pa)
        if key != jtu.keystr(pb):
            out.append(fmt(where, f"children {key}", jtu.keystr(pb)))
            return
        _diff(ca, cb, where + key, fmt, check_shapes, out)


def assert_static_unchanged(
    old: PyTree[Any],
    new: PyTree[Any],
    *,
    check_shapes: bool = True,
    name: str = "state",
) -> None:
    """Partition `old` and `new` with `eqx.is_array` and check that their static parts
    are equal: same PyTree structure (including the `eqx.field(static=True)` fields of
    every `eqx.Module`), equal non-array leaves and (by default) the same shape and dtype
    for every array leaf. A NaN static value is equal to NaN.

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

    [`StaticChangedError`][] (an `AssertionError`) naming the path of every leaf or
    static field that changed, e.g. `state.mode (static field): 'a' became 'b'`.
    """
    problems = tree_differences(
        old, new, name, lambda where, o, n: f"  {where}: {o} became {n}", check_shapes=check_shapes
    )
    if problems:
        raise StaticChangedError(f"the static part of {name} changed:\n" + "\n".join(problems))
