"""`filter_cond`: a `lax.cond` whose branches may return non-array (static) outputs."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.lax as lax
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Bool, PyTree


class StaticOutputMismatchError(ValueError):
    """Raised by [`filter_cond`][] when the two branches return different static
    (non-array) outputs, or differently-structured outputs."""


def _describe_difference(true_static: PyTree, false_static: PyTree) -> str:
    true_struct = jtu.tree_structure(true_static)
    false_struct = jtu.tree_structure(false_static)
    if true_struct != false_struct:
        return (
            "the output structures differ:\n"
            f"  true_fun:  {true_struct}\n  false_fun: {false_struct}"
        )
    lines = []
    true_leaves = jtu.tree_flatten_with_path(true_static)[0]
    false_leaves = jtu.tree_leaves(false_static)
    for (path, t), f in zip(true_leaves, false_leaves):
        if not (eqx.tree_equal(t, f) is True):
            lines.append(f"  at {jtu.keystr(path) or '<root>'}: {t!r} (true_fun) != {f!r} (false_fun)")
    return "these static outputs differ:\n" + "\n".join(lines)


def filter_cond(
    pred: bool | Bool[ArrayLike, ""],
    true_fun: Callable[..., Any],
    false_fun: Callable[..., Any],
    *operands: Any,
) -> Any:
    """Like `jax.lax.cond`, but the operands and the outputs may be arbitrary PyTrees
    mixing JAX arrays and non-array (static) leaves, such as Python ints, strings,
    activation functions or the static fields of an `eqx.Module`.

    Only the JAX arrays pass through the `lax.cond`; the static parts of the operands
    are closed over, and the static parts of the outputs are carried through unchanged.
    This works under `jax.jit`/`eqx.filter_jit` with a traced `pred`.

    **Arguments:**

    - `pred`: a Python bool or a scalar boolean array (possibly traced).
    - `true_fun`: called as `true_fun(*operands)` when `pred` is true.
    - `false_fun`: called as `false_fun(*operands)` when `pred` is false.
    - `*operands`: arbitrary PyTrees passed to the branch taken.

    **Returns:**

    The output of the branch taken. Its static (non-array) part is the one both
    branches agree on.

    **Raises:**

    [`StaticOutputMismatchError`][] (a `ValueError`) when the branches return
    different static outputs or differently-structured outputs; the message names the
    differing leaves. (Array leaves must additionally agree in shape and dtype, as for
    `lax.cond`.)
    """
    dynamic_ops, static_ops = eqx.partition(operands, eqx.is_array)
    record: dict[str, PyTree] = {}

    def _wrap(fn: Callable[..., Any], which: str) -> Callable[[PyTree[Array]], PyTree]:
        def _branch(dyn: PyTree[Array]) -> PyTree[Array]:
            out = fn(*eqx.combine(dyn, static_ops))
            dyn_out, static_out = eqx.partition(out, eqx.is_array)
            record[which] = (static_out, jtu.tree_structure(out))
            return dyn_out

        return _branch

    try:
        dyn_out = lax.cond(
            pred, _wrap(true_fun, "true"), _wrap(false_fun, "false"), dynamic_ops
        )
    except TypeError as e:
        if "true" in record and "false" in record:
            (ts, tstruct), (fs, fstruct) = record["true"], record["false"]
            if tstruct != fstruct or not (eqx.tree_equal(ts, fs) is True):
                raise StaticOutputMismatchError(
                    "filter_cond: true_fun and false_fun must return the same static "
                    "(non-array) outputs, but " + _describe_difference(ts, fs)
                ) from e
        raise
    (true_static, _), (false_static, _) = record["true"], record["false"]
    if not (eqx.tree_equal(true_static, false_static) is True):
        raise StaticOutputMismatchError(
            "filter_cond: true_fun and false_fun must return the same static "
            "(non-array) outputs, but "
            + _describe_difference(true_static, false_static)
        )
    return eqx.combine(dyn_out, true_static)
