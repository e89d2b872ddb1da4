"""`filter_cond` and `filter_switch`: `lax.cond`/`lax.switch` whose branches may take and
return non-array (static) values."""

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax.lax as lax
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Bool, Int, PyTree

from ._static import tree_differences


class StaticOutputMismatchError(ValueError):
    """Raised by [`filter_cond`][] and [`filter_switch`][] when the branches return
    different static (non-array) outputs, or differently-structured outputs."""


def _run_branches(
    api: str,
    run: Callable[[list[Callable[[PyTree[Array]], list[Array]]], PyTree[Array]], list[Array]],
    branches: Sequence[Callable[..., Any]],
    labels: Sequence[str],
    operands: tuple[Any, ...],
) -> Any:
    """Call `run(wrapped_branches, dynamic_operands)` (a `lax.cond`/`lax.switch`), where
    each wrapped branch returns only the flat list of the array leaves of its output.

    Only arrays cross the `lax` primitive: the output structure and static leaves are
    recorded while each branch is traced, compared here (NaN equal to NaN, naming the
    path of every difference), and used to rebuild the output. When `lax` runs only
    the branch taken (under `jax.disable_jit()`), only that branch is recorded.
    """
    dynamic_ops, static_ops = eqx.partition(operands, eqx.is_array)
    records: dict[int, tuple[jtu.PyTreeDef, list[bool], list[Any], Any]] = {}

    def _wrap(i: int, fn: Callable[..., Any]) -> Callable[[PyTree[Array]], list[Array]]:
        def _branch(dyn: PyTree[Array]) -> list[Array]:
            out = fn(*eqx.combine(dyn, static_ops))
            leaves, treedef = jtu.tree_flatten(out)
            is_array = [eqx.is_array(leaf) for leaf in leaves]
            static = [None if a else leaf for leaf, a in zip(leaves, is_array)]
            records[i] = (treedef, is_array, static, out)
            return [leaf for leaf, a in zip(leaves, is_array) if a]

        return _branch

    def _check() -> None:
        if len(records) < 2:
            return
        first = min(records)
        problems = []
        for i in sorted(records)[1:]:
            a, b = labels[first], labels[i]
            problems += tree_differences(
                records[first][3],
                records[i][3],
                "",
                lambda where, x, y: f"  at {where or '<root>'}: {x} ({a}) != {y} ({b})",
            )
        if problems:
            raise StaticOutputMismatchError(
                f"{api}: {_both(labels)} must return outputs of the same structure, with the "
                "same static (non-array) values and the same array shapes and dtypes, but:\n"
                + "\n".join(problems)
            )

    wrapped = [_wrap(i, fn) for i, fn in enumerate(branches)]
    try:
        dyn_out = run(wrapped, dynamic_ops)
    except TypeError as e:
        if len(records) == len(branches):
            try:
                _check()
            except StaticOutputMismatchError as mismatch:
                raise mismatch from e
        raise
    _check()
    treedef, is_array, static, _ = records[min(records)]
    dyn_iter = iter(dyn_out)
    leaves = [next(dyn_iter) if a else s for a, s in zip(is_array, static)]
    return jtu.tree_unflatten(treedef, leaves)


def _both(labels: Sequence[str]) -> str:
    return f"{labels[0]} and {labels[1]}" if len(labels) == 2 else "all branches"


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
    This works under `jax.jit`/`eqx.filter_jit` with a traced `pred`, under `jax.grad`
    and `jax.vmap`, and under `jax.disable_jit()` (where, as for `lax.cond`, only the
    branch taken runs, so the branches are not compared).

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
    differently-structured outputs, different static values (NaN counts as equal to
    NaN) or arrays of different shapes or dtypes. The message names the path of every
    difference, e.g. `at .act (static field): <function relu> (true_fun) != <function
    tanh> (false_fun)` or `at [1]: None (true_fun) != array float32[2] (false_fun)`.
    """
    return _run_branches(
        "filter_cond",
        lambda fns, dyn: lax.cond(pred, fns[0], fns[1], dyn),
        (true_fun, false_fun),
        ("true_fun", "false_fun"),
        operands,
    )


def filter_switch(
    index: int | Int[ArrayLike, ""],
    branches: Sequence[Callable[..., Any]],
    *operands: Any,
) -> Any:
    """Like `jax.lax.switch`, but the operands and the outputs may be arbitrary PyTrees
    mixing JAX arrays and non-array (static) leaves: the `lax.switch` analogue of
    [`filter_cond`][].

    Only the JAX arrays pass through the `lax.switch`; the static parts of the operands
    are closed over and the static parts of the outputs carried through. As for
    `lax.switch`, `index` is clamped to `[0, len(branches) - 1]`. Works under
    `jax.jit`/`eqx.filter_jit` with a traced `index`, under `jax.grad` and `jax.vmap`
    (a batched `index` runs every branch), and under `jax.disable_jit()` (only the branch
    taken runs, as for `lax.switch`).

    **Arguments:**

    - `index`: a Python int or a scalar integer array (possibly traced).
    - `branches`: a non-empty sequence of callables, each called as
      `branch(*operands)`.
    - `*operands`: arbitrary PyTrees passed to the branch taken.

    **Returns:**

    The output of `branches[clamp(index)]`. Its static (non-array) part is the one all
    branches agree on.

    **Raises:**

    [`StaticOutputMismatchError`][] (a `ValueError`) when a branch's output differs from
    that of `branches[0]` in structure, static values (NaN equals NaN) or array
    shapes/dtypes; the message names each differing branch and path, e.g.
    `at .act (static field): ... (branches[0]) != ... (branches[2])`. A `ValueError` for an
    empty `branches`, a `TypeError` for a non-integer `index` (as `lax.switch`).
    """
    branches = tuple(branches)
    if not branches:
        raise ValueError("filter_switch: `branches` must contain at least one branch")
    return _run_branches(
        "filter_switch",
        lambda fns, dyn: lax.switch(index, fns, dyn),
        branches,
        tuple(f"branches[{i}]" for i in range(len(branches))),
        operands,
    )
