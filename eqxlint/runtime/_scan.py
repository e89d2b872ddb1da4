"""`checkpointed_scan`: `lax.scan` with reverse-mode memory sub-linear in the length."""

import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import PyTree


_Carry = TypeVar("_Carry")
_X = TypeVar("_X")
_Y = TypeVar("_Y")
Checkpoints = Literal["auto", "sqrt", "binomial"] | int | tuple[int, ...]


def _is_float(x: Any) -> bool:
    return eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact)


# Carries of at least this many bytes: the innermost level is differentiated one step at
# a time (see `_auto_schedule`).
PER_STEP_MIN_CARRY_BYTES = 1024
# The largest fan-out (segments per segment) of the "auto" schedule.
AUTO_MAX_FANOUT = 256
# A loop of at most this many steps of `f` is unrolled into straight-line code: the
# innermost blocks of the small-carry "auto" schedule (and of explicit schedules ending
# in such a block), whose per-loop cost would otherwise dominate when a step is cheap.
UNROLL_MAX_STEPS = 8
# The innermost block of the small-carry "auto" schedule.
SMALL_CARRY_BLOCK = 8


def _unroll(steps: int) -> int | bool:
    return True if steps <= UNROLL_MAX_STEPS else 1


def _auto_schedule(length: int, carry_bytes: int | None) -> tuple[int, ...]:
    """The "auto" rule. `k = max(2, ceil(log_256 n))` levels with fan-out `n^(1/k)`
    (`k = 2`, fan-out ~sqrt(n), up to n = 65536); then:

    - a carry of at least 1 KiB (or unknown): the innermost segments of ~n^(1/k) steps are
      recomputed once more saving every carry, and differentiated one step at a time:
      sizes `(..., ceil(n^(1/k)), 1)`; memory ~`k n^(1/k)` carries, `k` extra forward
      passes.
    - a smaller carry: a step is cheap, so the cost is in the number of loops and of
      operations, and a step's residuals (several carries: the body's intermediates, its
      input and the input's cotangent) outweigh the carry itself. The innermost blocks
      are of 8 steps, unrolled and differentiated as a plain `lax.scan`, and the levels
      above them split the remaining `n/8` blocks evenly: sizes
      `(..., ceil(8 (n/8)^(1/k)), 8)`, e.g. `(182, 8)` at n = 4096: memory ~`k (n/8)^(1/k)`
      carries plus the residuals of 8 steps, `k - 1` extra forward passes. (Two levels,
      `(b,)`, cannot go below ~`2 sqrt(n r)` bytes for residuals of `r` bytes a step:
      more than Equinox's checkpointed loop, which keeps ~`sqrt(2n)` carries.)
    """
    if length <= 1:
        return ()
    levels = max(2, math.ceil(math.log(length) / math.log(AUTO_MAX_FANOUT) - 1e-9))
    if carry_bytes is None or carry_bytes >= PER_STEP_MIN_CARRY_BYTES:
        sizes = [math.ceil(length ** ((levels - i) / levels) - 1e-9) for i in range(1, levels)]
        sizes.append(1)
    else:
        blocks = length / SMALL_CARRY_BLOCK
        sizes = [
            SMALL_CARRY_BLOCK * math.ceil(blocks ** ((levels - i) / levels) - 1e-9)
            for i in range(1, levels)
        ]
        sizes.append(SMALL_CARRY_BLOCK)
    return tuple(sorted({b for b in sizes if b < length}, reverse=True))


def scan_schedule(
    length: int, checkpoints: Checkpoints = "auto", *, carry_bytes: int | None = None
) -> tuple[int, ...]:
    """The nested segment sizes used by [`checkpointed_scan`][] for `length` steps.

    Returns `(b_1, ..., b_k)`, strictly decreasing: the whole scan is cut into segments
    of `b_1` steps (one carry saved per segment on the forward pass); during the
    backward pass each `b_i`-segment is recomputed and cut into `b_{i+1}`-segments
    (one carry saved per segment). The last segments, of `b_k` steps, are differentiated
    by `jax.vjp` of a plain `lax.scan` (keeping that scan's residuals for `b_k` steps);
    `b_k = 1` means one step at a time (keeping only the saved carries). An empty tuple
    means "no checkpointing" (the scan is short).

    **Arguments:**

    - `length`: the number of steps.
    - `checkpoints`: as for [`checkpointed_scan`][].
    - `carry_bytes`: the size of the carry, used by `"auto"` (unknown: treated as large).

    **Returns:**

    The segment sizes, a tuple of strictly decreasing ints smaller than `length`.
    """
    if length <= 1:
        return ()
    if isinstance(checkpoints, tuple):
        if any(not isinstance(b, int) or b < 1 for b in checkpoints) or list(checkpoints) != sorted(set(checkpoints), reverse=True):
            raise ValueError(f"explicit segment sizes must be strictly decreasing positive ints, got {checkpoints}")
        return tuple(b for b in checkpoints if b < length)
    if isinstance(checkpoints, bool) or not isinstance(checkpoints, (int, str)):
        raise TypeError(f"checkpoints must be 'auto', 'sqrt', 'binomial' or an int, got {checkpoints!r}")
    if isinstance(checkpoints, int):
        if checkpoints < 1:
            raise ValueError(f"checkpoints must be >= 1, got {checkpoints}")
        block = math.ceil(length / checkpoints)
        return (block,) if checkpoints < length and block < length else ()
    if checkpoints == "auto":
        return _auto_schedule(length, carry_bytes)
    if checkpoints == "sqrt":
        # ~sqrt(n) checkpoints, and segments of ~sqrt(n) steps whose residuals are kept.
        block = math.ceil(math.sqrt(length))
        return (block,) if block < length else ()
    if checkpoints == "binomial":
        # Recursive checkpointing with fan-out ~8 per level: memory O(k n^(1/k)) carries
        # for k = ceil(log_8 n) levels, one extra forward recomputation per level.
        levels = max(2, math.ceil(math.log(length) / math.log(8) - 1e-9))
        sizes = []
        for i in range(1, levels):
            b = math.ceil(length ** ((levels - i) / levels))
            if sizes and b >= sizes[-1]:
                continue
            if b < length:
                sizes.append(b)
        return tuple(sizes)
    raise ValueError(f"checkpoints must be 'auto', 'sqrt', 'binomial' or an int, got {checkpoints!r}")


def _tree_index(tree: PyTree, i: Any) -> PyTree:
    return jtu.tree_map(lambda a: lax.dynamic_index_in_dim(a, i, keepdims=False), tree)


def _tree_slice(tree: PyTree, start: Any, size: int) -> PyTree:
    return jtu.tree_map(lambda a: lax.dynamic_slice_in_dim(a, start, size), tree)


def _tree_update(tree: PyTree, update: PyTree, start: Any) -> PyTree:
    return jtu.tree_map(lambda a, u: lax.dynamic_update_slice_in_dim(a, u, start, 0), tree, update)


def _tree_add(a: PyTree, b: PyTree) -> PyTree:
    return jtu.tree_map(lambda x, y: x + y, a, b)


def checkpointed_scan(
    f: Callable[[_Carry, _X], tuple[_Carry, _Y]],
    init: _Carry,
    xs: _X,
    *,
    length: int | None = None,
    reverse: bool = False,
    checkpoints: Checkpoints = "auto",
) -> tuple[_Carry, _Y]:
    """A `jax.lax.scan` whose reverse-mode memory grows sub-linearly with its length.

    Same values and same gradients as `lax.scan(f, init, xs, length=length)` (with
    respect to `init`, `xs` and any arrays `f` closes over), but instead of storing the
    residuals of every step for the backward pass, only a few carries are stored and
    the rest is recomputed (recursive checkpointing).

    The backward pass is a custom VJP: each step reads its input from `xs` by index, so
    no level of the recursion copies all of `xs`, and the cotangent of `xs` is written in
    place into one buffer.

    **Arguments:**

    - `f`: the step, `f(carry, x) -> (carry, y)`, as for `lax.scan`. `carry` and `y` are
      PyTrees of arrays.
    - `init`: the initial carry.
    - `xs`: a PyTree of arrays scanned over their leading axis, or `None`.
    - `length`: the number of steps; required if `xs` is `None`.
    - `reverse`: scan from the end of `xs` to its start, as for `lax.scan`.
    - `checkpoints`: the schedule (see [`scan_schedule`][] for the segment sizes used):
        - `"auto"` (default): chosen from the length `n` and the carry's size. Up to
          n = 65536: with a carry of at least 1 KiB, `(ceil(√n), 1)`: √n saved carries,
          each √n-segment recomputed once more saving its √n carries, then
          differentiated step by step (≈ 2√n carries, two extra forward passes); with a
          smaller carry, `(8 ceil(√(n/8)), 8)`: √(8n) steps per segment, each recomputed
          once more saving the carry every 8 steps, then blocks of 8 steps unrolled and
          differentiated as a plain `lax.scan` (≈ 2√(n/8) carries plus the residuals of
          8 steps, two extra forward passes). Longer scans get one more level per
          factor of 256 in `n`.
        - `"binomial"`: recursive checkpointing with `k = ceil(log_8 n)` levels
          of fan-out `~n^(1/k)` (about 8): about `k·n^(1/k)` carries of memory plus the
          residuals of `n^(1/k)` steps, one extra forward pass per level below the top.
        - `"sqrt"`: two levels: ~√n saved carries, and ~√n steps of the body's residuals
          kept at a time; one extra forward pass.
        - an int `k`: two levels with `k` saved carries (segments of `ceil(n/k)` steps).
        - a tuple of strictly decreasing ints: the segment sizes themselves (ending in
          `1` for step-by-step differentiation of the innermost segments).

    **Returns:**

    `(final_carry, ys)`, as for `lax.scan`. Lengths need not factor (prime lengths are
    fine: the last segment of each level is shorter).

    !!! Info

        Reverse mode only: `jax.jvp`/`jax.jacfwd` through `checkpointed_scan` raise
        (it is a `jax.custom_vjp`). `jax.vmap` works.
    """
    xs_leaves = jtu.tree_leaves(xs)
    if length is None:
        if not xs_leaves:
            raise ValueError("checkpointed_scan: pass `length` when `xs` is None")
        length = int(xs_leaves[0].shape[0])
    for leaf in xs_leaves:
        if leaf.shape[0] != length:
            raise ValueError(
                f"checkpointed_scan: every leaf of xs must have leading axis {length}, "
                f"got shape {leaf.shape}"
            )
    if reverse:
        flip = lambda tree: jtu.tree_map(lambda a: jnp.flip(a, 0), tree)
        carry, ys = checkpointed_scan(f, init, flip(xs), length=length, checkpoints=checkpoints)
        return carry, flip(ys)
    carry_bytes = sum(
        math.prod(jnp.shape(a)) * jnp.result_type(a).itemsize for a in jtu.tree_leaves(init)
    )
    sizes = scan_schedule(length, checkpoints, carry_bytes=carry_bytes)
    if not sizes:
        return lax.scan(f, init, xs, length=length)
    x0 = None if xs is None else jtu.tree_map(lambda a: a[0], xs)
    converted, consts = jax.closure_convert(f, init, x0)
    n = length

    def body(consts, c, x):
        return converted(c, x, *consts)

    def step_at(consts, xs, c, t):
        return body(consts, c, None if xs is None else _tree_index(xs, t))

    # -- forward helpers -------------------------------------------------------------

    def run_no_ys(consts, xs, c, start, size):
        if size == 1:
            return step_at(consts, xs, c, start)[0]

        def inner(c, i):
            c, _ = step_at(consts, xs, c, start + i)
            return c, None

        c, _ = lax.scan(inner, c, jnp.arange(size, dtype=jnp.int32), unroll=_unroll(size))
        return c

    def save_carries(consts, xs, c, start, seg, count):
        """Run `count` segments of `seg` steps from `c`; return the carry at the end and
        the carry at the start of every segment (stacked)."""

        def outer(c, j):
            return run_no_ys(consts, xs, c, start + j * seg, seg), c

        return lax.scan(
            outer, c, jnp.arange(count, dtype=jnp.int32), unroll=_unroll(count) if seg == 1 else 1
        )

    # -- backward --------------------------------------------------------------------
    # `state` is (cotangent of the carry, accumulated cotangent of the consts, cotangent
    # of xs written in place). The segments at `level` have `sizes[level]` steps; below
    # the last level, a block of several steps is differentiated by `jax.vjp` of a plain
    # `lax.scan` (keeping its residuals for those steps), and a segment of one step by
    # `jax.vjp` of the step (keeping nothing but the carries saved above it).

    def step_bwd(consts, xs, ct_ys, c0, t, state):
        ct_c, acc_consts, dxs = state
        consts_f, consts_s = eqx.partition(consts, _is_float)
        c0_f, c0_s = eqx.partition(c0, _is_float)
        x = None if xs is None else _tree_index(xs, t)
        x_f, x_s = eqx.partition(x, _is_float)

        def one(consts_f, c_f, x_f):
            c, y = body(eqx.combine(consts_f, consts_s), eqx.combine(c_f, c0_s), eqx.combine(x_f, x_s))
            return eqx.filter(c, _is_float), eqx.filter(y, _is_float)

        _, vjp_fn = jax.vjp(one, consts_f, c0_f, x_f)
        ct_y = None if ct_ys is None else _tree_index(ct_ys, t)
        d_consts, d_c, d_x = vjp_fn((ct_c, ct_y))
        acc_consts = _tree_add(acc_consts, d_consts)
        if dxs is not None:
            dxs = jtu.tree_map(lambda a, u: lax.dynamic_update_index_in_dim(a, u, t, 0), dxs, d_x)
        return d_c, acc_consts, dxs

    def block_bwd(consts, xs, ct_ys, c0, start, size, state):
        ct_c, acc_consts, dxs = state
        consts_f, consts_s = eqx.partition(consts, _is_float)
        c0_f, c0_s = eqx.partition(c0, _is_float)
        xs_blk = None if xs is None else _tree_slice(xs, start, size)
        xs_f, xs_s = eqx.partition(xs_blk, _is_float)

        def run(consts_f, c0_f, xs_f):
            cs = eqx.combine(consts_f, consts_s)
            blk = eqx.combine(xs_f, xs_s)
            c_end, ys = lax.scan(
                lambda c, x: body(cs, c, x), eqx.combine(c0_f, c0_s), blk, length=size, unroll=_unroll(size)
            )
            return eqx.filter(c_end, _is_float), eqx.filter(ys, _is_float)

        _, vjp_fn = jax.vjp(run, consts_f, c0_f, xs_f)
        ct_ys_blk = None if ct_ys is None else _tree_slice(ct_ys, start, size)
        d_consts, d_c0, d_xs = vjp_fn((ct_c, ct_ys_blk))
        acc_consts = _tree_add(acc_consts, d_consts)
        if dxs is not None:
            dxs = _tree_update(dxs, d_xs, start)
        return d_c0, acc_consts, dxs

    def seg_bwd(level, consts, xs, ct_ys, c0, start, size, state):
        """Backward pass over steps [start, start + size) from carry `c0`, where `size`
        is at most `sizes[level - 1]`."""
        if size == 1:
            return step_bwd(consts, xs, ct_ys, c0, start, state)
        while level < len(sizes) and sizes[level] >= size:  # a short remainder: skip levels
            level += 1
        if level == len(sizes):
            return block_bwd(consts, xs, ct_ys, c0, start, size, state)
        seg = sizes[level]
        count, rem = divmod(size, seg)
        c_rem, ckpts = save_carries(consts, xs, c0, start, seg, count)
        return segs_bwd(level, consts, xs, ct_ys, ckpts, c_rem, start, seg, count, rem, state)

    def segs_bwd(level, consts, xs, ct_ys, ckpts, c_rem, start, seg, count, rem, state):
        """Backward pass over `count` segments of `seg` steps from `start` (whose
        starting carries are `ckpts`) followed by `rem` steps starting from `c_rem`."""
        if rem:
            state = seg_bwd(level + 1, consts, xs, ct_ys, c_rem, start + count * seg, rem, state)

        def back(state, inp):
            j, c0 = inp
            return seg_bwd(level + 1, consts, xs, ct_ys, c0, start + j * seg, seg, state), None

        state, _ = lax.scan(
            back, state, (jnp.arange(count, dtype=jnp.int32), ckpts), reverse=True,
            unroll=_unroll(count) if seg == 1 else 1,
        )
        return state

    # -- the custom VJP ----------------------------------------------------------------

    @jax.custom_vjp
    def _scan(consts, init, xs):
        return lax.scan(lambda c, x: body(consts, c, x), init, xs, length=n)

    def _fwd(consts, init, xs):
        seg = sizes[0]
        count, rem = divmod(n, seg)

        def inner(c, i, base):
            return step_at(consts, xs, c, base + i)

        def outer(c, j):
            c_end, ys = lax.scan(lambda c, i: inner(c, i, j * seg), c, jnp.arange(seg, dtype=jnp.int32))
            return c_end, (c, ys)

        c, (ckpts, ys) = lax.scan(outer, init, jnp.arange(count, dtype=jnp.int32))
        ys = jtu.tree_map(lambda y: y.reshape((count * seg,) + y.shape[2:]), ys)
        c_rem = c
        if rem:
            c, ys_rem = lax.scan(
                lambda c, i: inner(c, i, count * seg), c, jnp.arange(rem, dtype=jnp.int32)
            )
            ys = jtu.tree_map(lambda a, b: jnp.concatenate([a, b]), ys, ys_rem)
        return (c, ys), (consts, xs, ckpts, c_rem)

    def _bwd(res, cts):
        consts, xs, ckpts, c_rem = jtu.tree_map(jnp.asarray, res)
        ct_c, ct_ys = cts
        seg = sizes[0]
        count, rem = divmod(n, seg)
        ct_c_f = jtu.tree_map(
            lambda c, ct: ct if _is_float(c) else None, c_rem, ct_c
        )
        ct_c_f = eqx.filter(ct_c_f, _is_float)
        ct_ys_f = None if ct_ys is None else eqx.filter(ct_ys, _is_float)
        acc = jtu.tree_map(jnp.zeros_like, eqx.filter(consts, _is_float))
        dxs = None if xs is None else jtu.tree_map(jnp.zeros_like, eqx.filter(xs, _is_float))
        state = (ct_c_f, acc, dxs)
        ct_init, acc, dxs = segs_bwd(0, consts, xs, ct_ys_f, ckpts, c_rem, 0, seg, count, rem, state)
        return acc, ct_init, dxs

    _scan.defvjp(_fwd, _bwd)
    # Python scalars (e.g. weak-typed closed-over floats) would otherwise reach the
    # backward pass as Python numbers and be mistaken for non-differentiable leaves.
    consts = [jnp.asarray(c) for c in consts]
    init = jtu.tree_map(jnp.asarray, init)
    xs = jtu.tree_map(jnp.asarray, xs)
    return _scan(consts, init, xs)
