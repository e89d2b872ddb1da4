"""`checkpoint_plan` and `checkpointed_grad`: plan checkpoints from a captured jaxpr."""

import dataclasses
import functools as ft
import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.extend.core as jex
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._scan import Checkpoints, checkpointed_scan, scan_schedule


# Call-like primitives whose body is a `ClosedJaxpr` in `params["jaxpr"]`: inlined when
# re-evaluated with a rewrite inside.
_CALL_PRIMITIVES = ("jit", "pjit", "closed_call", "core_call")
# Primitives whose bodies can hold a rewritten scan: the calls above (inlined), `scan`
# (re-run as `lax.scan`), `cond` (as `lax.switch`) and `checkpoint`/`remat` (as
# `jax.checkpoint`). Scans anywhere else (custom_jvp/custom_vjp bodies, whose gradients
# come from their rules; `while` bodies, which reverse mode cannot differentiate;
# `shard_map`, ...) are found and reported, never rewritten.
_CHECKPOINT_PRIMITIVES = ("checkpoint", "remat", "remat2")  # `jax.checkpoint` (named remat2)
_REWRITABLE = frozenset(_CALL_PRIMITIVES + _CHECKPOINT_PRIMITIVES + ("scan", "cond"))
# How `ScanPlan.inside` spells primitive names.
_DISPLAY = {"remat": "checkpoint", "remat2": "checkpoint", "pjit": "jit"}
_CUSTOM_RULES = frozenset(("custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr", "custom_lin"))


def _nbytes(aval: Any) -> int:
    try:
        return int(np.prod(aval.shape, dtype=np.int64)) * jnp.dtype(aval.dtype).itemsize
    except Exception:  # noqa: BLE001 -- tokens, opaque types
        return 0


def _subjaxprs(eqn: jex.JaxprEqn) -> list[jex.Jaxpr]:
    """The jaxprs held in the parameters of `eqn` (a scan or cond body, a jit call, a
    `jax.checkpoint` body, a custom rule's primal body, ...)."""
    out = []
    for value in eqn.params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, jex.ClosedJaxpr):
                out.append(item.jaxpr)
            elif isinstance(item, jex.Jaxpr):
                out.append(item)
    return out


def _eval_jaxpr(
    jaxpr: jex.Jaxpr,
    consts: Sequence[Any],
    *args: Any,
    rewrite: dict | None = None,
    contains: frozenset = frozenset(),
) -> list[Any]:
    """Evaluate `jaxpr`, replacing the `scan`s listed in `rewrite` (by `id(eqn)`) with
    `checkpointed_scan`. The equations listed in `contains` (those whose bodies hold a
    rewritten scan) are re-evaluated through their bodies: calls inlined, `scan` as
    `lax.scan`, `cond` as `lax.switch`, `checkpoint` as `jax.checkpoint`. Every other
    equation is bound as it is."""
    env: dict[Any, Any] = {}

    def read(v):
        return v.val if isinstance(v, jex.Literal) else env[v]

    sub = lambda j, c, *a: _eval_jaxpr(j, c, *a, rewrite=rewrite, contains=contains)
    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        p = eqn.params
        if rewrite and id(eqn) in rewrite:
            outvals = _checkpointed_scan_eqn(eqn, invals, rewrite[id(eqn)], sub)
        elif id(eqn) in contains and name in _CALL_PRIMITIVES:
            outvals = sub(p["jaxpr"].jaxpr, p["jaxpr"].consts, *invals)
        elif id(eqn) in contains and name == "scan":
            outvals = _plain_scan_eqn(eqn, invals, sub)
        elif id(eqn) in contains and name == "cond":
            index, ops = invals[0], invals[1:]
            branches = [ft.partial(sub, b.jaxpr, b.consts) for b in p["branches"]]
            outvals = jax.lax.switch(index, branches, *ops)
        elif id(eqn) in contains and name in _CHECKPOINT_PRIMITIVES:
            body = p["jaxpr"]
            outvals = jax.checkpoint(
                lambda *a: sub(body, (), *a), prevent_cse=p["prevent_cse"], policy=p["policy"]
            )(*invals)
        else:
            bind_params = eqn.primitive.get_bind_params(eqn.params)
            if isinstance(bind_params, tuple):  # older JAX: (subfuns, params)
                subfuns, bind_params = bind_params
            else:
                subfuns = []
            ctx = getattr(getattr(eqn, "ctx", None), "manager", None)
            if ctx is not None:
                with ctx:
                    ans = eqn.primitive.bind(*subfuns, *invals, **bind_params)
            else:
                ans = eqn.primitive.bind(*subfuns, *invals, **bind_params)
            outvals = ans if eqn.primitive.multiple_results else [ans]
        for v, val in zip(eqn.outvars, outvals):
            env[v] = val
    return [read(v) for v in jaxpr.outvars]


def _plain_scan_eqn(eqn, invals, sub):
    p = eqn.params
    body = p["jaxpr"]
    nc, nk = p["num_consts"], p["num_carry"]
    consts, init, xs = invals[:nc], invals[nc : nc + nk], invals[nc + nk :]

    def f(carry, x):
        out = sub(body.jaxpr, body.consts, *consts, *carry, *x)
        return out[:nk], out[nk:]

    carry, ys = jax.lax.scan(f, list(init), list(xs), length=p["length"], reverse=p["reverse"], unroll=p["unroll"])
    return [*carry, *ys]


def _checkpointed_scan_eqn(eqn, invals, sizes, sub):
    p = eqn.params
    body = p["jaxpr"]
    nc, nk = p["num_consts"], p["num_carry"]
    consts, init, xs = invals[:nc], invals[nc : nc + nk], invals[nc + nk :]

    def f(carry, x):
        out = sub(body.jaxpr, body.consts, *consts, *carry, *x)
        return out[:nk], out[nk:]

    carry, ys = checkpointed_scan(
        f, list(init), list(xs), length=p["length"], reverse=p["reverse"], checkpoints=sizes
    )
    return [*carry, *ys]


def _per_step_residual_bytes(eqn) -> int:
    """Bytes JAX's reverse mode keeps per step of a scan body: the residuals of a VJP
    with respect to the carry and the step input that depend on them (residuals that
    depend only on the scan's constants are hoisted out of the loop by JAX)."""
    p = eqn.params
    body = p["jaxpr"]
    nc, nk = p["num_consts"], p["num_carry"]
    in_avals = [v.aval for v in eqn.invars]
    consts_a = in_avals[:nc]
    carry_a = in_avals[nc : nc + nk]
    xs_a = [jax.core.ShapedArray(a.shape[1:], a.dtype) for a in in_avals[nc + nk :]]

    def residuals(consts, carry, x):
        fn = lambda carry, x: _eval_jaxpr(body.jaxpr, body.consts, *consts, *carry, *x)
        _, vjp_fn = jax.vjp(fn, carry, x)
        return jtu.tree_leaves(vjp_fn)

    to_struct = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype)
    closed = jax.make_jaxpr(residuals)(
        [to_struct(a) for a in consts_a], [to_struct(a) for a in carry_a], [to_struct(a) for a in xs_a]
    )
    jaxpr = closed.jaxpr
    dependent = set(jaxpr.invars[nc:])
    for e in jaxpr.eqns:
        if any((not isinstance(v, jex.Literal)) and v in dependent for v in e.invars):
            dependent.update(e.outvars)
    return sum(
        _nbytes(v.aval) for v in jaxpr.outvars if not isinstance(v, jex.Literal) and v in dependent
    )


@dataclasses.dataclass(frozen=True)
class ScanPlan:
    """The plan for one `lax.scan` found in the function.

    **Attributes:**

    - `length`: its number of steps.
    - `carry_bytes`: the size of its carry.
    - `per_step_bytes`: the estimated residual (activation) bytes reverse mode keeps
      per step.
    - `peak_bytes`: the estimated residual bytes without checkpointing
      (`length * per_step_bytes`).
    - `schedule`: the segment sizes chosen (as [`scan_schedule`][]); `()` means this
      scan is left as it is.
    - `checkpoints`: the number of carries saved on the forward pass.
    - `block_size`: the length of the segments whose residuals are kept at a time
      (the last entry of `schedule`).
    - `planned_peak_bytes`: the estimated bytes with the schedule.
    - `inside`: the names of the primitives enclosing the scan, outermost first: `()`
      at the top level, e.g. `("jit", "cond")`, `("checkpoint",)`, `("scan",)` for a
      scan in another scan's body, `("custom_jvp_call",)`.
    - `rewritable`: whether the scan can be replaced: false inside a custom_jvp/custom_vjp
      body (its gradient comes from the custom rule), a `while` body or any primitive
      other than `jit`, `scan`, `cond` and `checkpoint`.
    """

    length: int
    carry_bytes: int
    per_step_bytes: int
    peak_bytes: int
    schedule: tuple[int, ...]
    checkpoints: int
    block_size: int
    planned_peak_bytes: int
    inside: tuple[str, ...] = ()
    rewritable: bool = True


def _schedule_bytes(length: int, sizes: tuple[int, ...], carry: int, per_step: int) -> int:
    if not sizes:
        return length * per_step
    total = math.ceil(length / sizes[0]) * carry
    for outer, inner in zip(sizes, sizes[1:]):
        total += math.ceil(outer / inner) * carry
    return total + sizes[-1] * per_step


@dataclasses.dataclass(frozen=True)
class CheckpointPlan:
    """What [`checkpoint_plan`][] returns.

    **Attributes:**

    - `scans`: one [`ScanPlan`][] per `lax.scan` found, in program order: at the top
      level and inside `jit` calls, `jax.checkpoint`, `lax.cond`/`lax.switch` branches,
      other scans' bodies and custom_jvp/custom_vjp bodies (see `ScanPlan.inside`).
    - `other_bytes`: the bytes of every other intermediate value (an upper bound on
      what reverse mode keeps outside the scans).
    - `peak_bytes`: the estimated activation bytes of `jax.grad` without
      checkpointing.
    - `planned_peak_bytes`: the estimated activation bytes with the plan.
    - `checkpoints`, `block_size`: those of the largest scan (0 if there is none).
    - `meta`: the same figures as a dict (`"block_size"`, `"checkpoints"`,
      `"peak_bytes"`, `"peak_frontier"` = `planned_peak_bytes`, `"num_scans"`).
    - `ok`: whether any scan is worth checkpointing.
    - `reason`: why not, when `ok` is false.
    """

    scans: tuple[ScanPlan, ...]
    other_bytes: int
    peak_bytes: int
    planned_peak_bytes: int
    checkpoints: int
    block_size: int
    reason: str | None
    jaxpr: Any = dataclasses.field(repr=False, compare=False, default=None)
    out_shape: Any = dataclasses.field(repr=False, compare=False, default=None)
    _eqns: tuple = dataclasses.field(repr=False, compare=False, default=())
    _parents: tuple = dataclasses.field(repr=False, compare=False, default=())

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def meta(self) -> dict[str, int]:
        return {
            "block_size": self.block_size,
            "checkpoints": self.checkpoints,
            "peak_bytes": self.peak_bytes,
            "peak_frontier": self.planned_peak_bytes,
            "num_scans": len(self.scans),
        }


def _walk(jaxpr: jex.Jaxpr, parents: tuple, found: list, other: list) -> None:
    """Collect `(scan_eqn, enclosing_eqns)` for every scan, descending into every
    sub-jaxpr; the output bytes of every other equation go to `other`."""
    for eqn in jaxpr.eqns:
        subs = _subjaxprs(eqn)
        if eqn.primitive.name == "scan":
            found.append((eqn, parents))
        if subs:
            for sub in subs:
                _walk(sub, parents + (eqn,), found, other)
        else:
            other.append(sum(_nbytes(v.aval) for v in eqn.outvars))


def checkpoint_plan(
    fn: Callable[..., Any],
    *args: Any,
    kwargs: dict[str, Any] | None = None,
    checkpoints: Checkpoints = "auto",
    memory_budget: int | None = None,
    min_length: int = 16,
) -> CheckpointPlan:
    """Capture the jaxpr of `fn(*args, **kwargs)`, estimate the activation memory
    reverse mode would keep, and plan checkpoints for its `lax.scan`s.

    Scans are found at the top level and inside `jit` calls, `jax.checkpoint`,
    `lax.cond`/`lax.switch` branches and other scans' bodies (all of which can be
    rewritten), and inside custom_jvp/custom_vjp bodies and other primitives (reported,
    not rewritten). Each scan's per-step residual bytes are measured from the residuals
    of a `jax.vjp` of its body (those that depend on the carry or the step input).

    **Arguments:**

    - `fn`: the function, taking PyTrees of arrays.
    - `*args`: example arguments (arrays or `jax.ShapeDtypeStruct`s).
    - `kwargs`: example keyword arguments for `fn`, if any.
    - `checkpoints`: the schedule to use for each scan, as for
      [`checkpointed_scan`][] (`"auto"` picks it from the scan's length and carry
      size). Ignored when `memory_budget` is given.
    - `memory_budget`: if given (bytes), choose for each scan the fastest schedule
      (fewest recomputation levels) whose estimate fits the budget, falling back to the
      most frugal one.
    - `min_length`: scans shorter than this are left alone.

    **Returns:**

    A [`CheckpointPlan`][]. Planning failures (the function cannot be traced, no
    scan found, no rewritable scan, no scan long enough) are reported in
    `plan.reason`, not raised.
    """
    kwargs = {} if kwargs is None else kwargs
    try:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        return CheckpointPlan((), 0, 0, 0, 0, 0, f"could not capture a jaxpr: {type(e).__name__}: {e}")
    found: list = []
    other: list = []
    _walk(closed.jaxpr, (), found, other)
    other_bytes = sum(other)
    plans = []
    for eqn, parents in found:
        p = eqn.params
        length = int(p["length"])
        nc, nk = p["num_consts"], p["num_carry"]
        carry_bytes = sum(_nbytes(v.aval) for v in eqn.invars[nc : nc + nk])
        names = tuple(e.primitive.name for e in parents)
        inside = tuple(_DISPLAY.get(name, name) for name in names)
        rewritable = all(name in _REWRITABLE for name in names)
        try:
            per_step = _per_step_residual_bytes(eqn)
        except Exception:  # noqa: BLE001 -- fall back to every intermediate of the body
            per_step = sum(_nbytes(v.aval) for e in p["jaxpr"].jaxpr.eqns for v in e.outvars)
        if not rewritable or length < min_length or per_step == 0:
            sizes: tuple[int, ...] = ()
        elif memory_budget is not None:
            candidates = [scan_schedule(length, "sqrt")]
            for levels in range(3, 8):
                sizes_l = tuple(
                    b for b in (math.ceil(length ** ((levels - i) / levels)) for i in range(1, levels)) if b < length
                )
                candidates.append(tuple(sorted(set(sizes_l), reverse=True)))
            candidates.sort(key=len)
            fitting = [c for c in candidates if _schedule_bytes(length, c, carry_bytes, per_step) <= memory_budget]
            sizes = fitting[0] if fitting else min(
                candidates, key=lambda c: _schedule_bytes(length, c, carry_bytes, per_step)
            )
        else:
            sizes = scan_schedule(length, checkpoints, carry_bytes=carry_bytes)
        planned = _schedule_bytes(length, sizes, carry_bytes, per_step)
        if sizes and planned >= length * per_step:
            sizes, planned = (), length * per_step
        plans.append(
            ScanPlan(
                length=length,
                carry_bytes=carry_bytes,
                per_step_bytes=per_step,
                peak_bytes=length * per_step,
                schedule=sizes,
                checkpoints=math.ceil(length / sizes[0]) if sizes else 0,
                block_size=sizes[-1] if sizes else length,
                planned_peak_bytes=planned,
                inside=inside,
                rewritable=rewritable,
            )
        )
    peak = other_bytes + sum(s.peak_bytes for s in plans)
    planned_peak = other_bytes + sum(s.planned_peak_bytes for s in plans)
    largest = max(plans, key=lambda s: s.peak_bytes, default=None)
    if not plans:
        reason = (
            "no lax.scan found in the function (looked inside jit calls, jax.checkpoint, "
            "lax.cond/lax.switch branches, scan bodies and custom_jvp/custom_vjp bodies): "
            "nothing to checkpoint"
        )
    elif not any(s.rewritable for s in plans):
        where = sorted({n for s in plans for n in s.inside if n not in _REWRITABLE})
        custom = [n for n in where if n in _CUSTOM_RULES]
        reason = (
            f"every lax.scan found is inside {', '.join(where)}, which is not rewritten"
            + (
                " (the gradient of a custom_jvp/custom_vjp function comes from its custom "
                "rule, not from its body)"
                if custom
                else ""
            )
            + ": nothing to checkpoint"
        )
    elif not any(s.schedule for s in plans):
        reason = f"no lax.scan long enough to benefit (min_length={min_length})"
    else:
        reason = None
    return CheckpointPlan(
        scans=tuple(plans),
        other_bytes=other_bytes,
        peak_bytes=peak,
        planned_peak_bytes=planned_peak,
        checkpoints=largest.checkpoints if largest else 0,
        block_size=largest.block_size if largest else 0,
        reason=reason,
        jaxpr=closed,
        out_shape=out_shape,
        _eqns=tuple(eqn for eqn, _ in found),
        _parents=tuple(parents for _, parents in found),
    )


def _rewritten(plan: CheckpointPlan) -> Callable[..., Any]:
    """`plan`'s function, re-evaluated from its jaxpr with the planned scans replaced by
    `checkpointed_scan`. Takes the same `(*args, **kwargs)` as the function."""
    rewrite = {id(e): s.schedule for e, s in zip(plan._eqns, plan.scans) if s.schedule}
    contains = frozenset(
        id(parent)
        for e, s, parents in zip(plan._eqns, plan.scans, plan._parents)
        if s.schedule
        for parent in parents
    )
    closed = plan.jaxpr
    out_tree = jtu.tree_structure(plan.out_shape)

    def rewritten(*args: Any, **kwargs: Any) -> Any:
        flat = jtu.tree_leaves((args, kwargs))
        out = _eval_jaxpr(closed.jaxpr, closed.consts, *flat, rewrite=rewrite, contains=contains)
        return jtu.tree_unflatten(out_tree, out)

    return rewritten


def _signature(tree: Any) -> Any:
    """A hashable key for the abstract values (shape, dtype, weak type) and structure of
    `tree`, or `None` if a leaf is not a JAX type."""
    leaves, treedef = jtu.tree_flatten(tree)
    try:
        return treedef, tuple(jax.typeof(leaf) for leaf in leaves)
    except TypeError:
        return None


def _static_key(static: Any) -> Any:
    """A hashable key for the static (non-array) part of the arguments, or `None`."""
    leaves, treedef = jtu.tree_flatten(static)
    key = (treedef, tuple(leaves))
    try:
        hash(key)
    except TypeError:
        return None
    return key


@dataclasses.dataclass
class _Entry:
    """What [`CheckpointedGrad`][] keeps per input signature."""

    plan: CheckpointPlan
    reason: str | None
    fn: Callable[..., Any]  # the array-only function differentiated
    grad: Callable[..., Any] | None  # the jitted checkpointed gradient; None = fall back
    aux_static: list  # filter mode: the static part of the aux output, recorded when traced
    succeeded: bool = False


class CheckpointedGrad:
    """What [`checkpointed_grad`][] and [`filter_checkpointed_grad`][] return: call it
    like the function `jax.grad` (or `eqx.filter_grad`) returns.

    **Attributes:**

    - `last_plan`: the [`CheckpointPlan`][] of the last call (`None` before the first
      call).
    - `fallback_reason`: `None` if the last call ran with checkpointing, else why it fell
      back to plain `jax.grad`.
    """

    def __init__(self, fn, argnums, has_aux, plan_kwargs, *, filter: bool = False):
        self.fn = fn
        self.argnums = argnums
        self.has_aux = has_aux
        self.plan_kwargs = plan_kwargs
        self.filter = filter
        self.last_plan: CheckpointPlan | None = None
        self.fallback_reason: str | None = None
        self._cache: dict[Any, _Entry] = {}
        ft.update_wrapper(self, fn, updated=())

    def _split(self, args: tuple, kwargs: dict) -> tuple[tuple, dict, Any, Any]:
        """`(call_args, call_kwargs, static, key)`: the arrays the array-only function
        takes, the static part it closes over, and the cache key."""
        if not self.filter:
            # As for `jax.grad`, keyword arguments are not differentiated, and non-array
            # ones stay Python values (closed over, part of the cache key).
            dyn_kwargs, static = eqx.partition(kwargs, eqx.is_array)
            call_args, call_kwargs = args, dyn_kwargs
        else:
            if not args:
                raise TypeError(
                    "filter_checkpointed_grad: the function must be called with at least one "
                    "positional argument (the one differentiated)"
                )
            diff_x, nondiff_x = eqx.partition(args[0], eqx.is_inexact_array)
            dynamic, static = eqx.partition((nondiff_x, args[1:], kwargs), eqx.is_array)
            call_args, call_kwargs = (diff_x, dynamic), {}
        static_key, sig = _static_key(static), _signature((call_args, call_kwargs))
        key = None if static_key is None or sig is None else (static_key, sig)
        return call_args, call_kwargs, static, key

    def _array_fn(self, static: Any, aux_static: list) -> Callable[..., Any]:
        fn, has_aux = self.fn, self.has_aux
        if not self.filter:
            return lambda *args, **dyn_kwargs: fn(*args, **eqx.combine(dyn_kwargs, static))

        def array_fn(diff_x, dynamic):
            nondiff_x, rest, kwargs = eqx.combine(dynamic, static)
            out = fn(eqx.combine(diff_x, nondiff_x), *rest, **kwargs)
            if not has_aux:
                return out
            value, aux = out
            aux_dynamic, aux_static_part = eqx.partition(aux, eqx.is_array)
            aux_static[:] = [aux_static_part]
            return value, aux_dynamic

        return array_fn

    def _prepare(self, call_args: tuple, call_kwargs: dict, static: Any) -> _Entry:
        aux_static: list = []
        fn = self._array_fn(static, aux_static)
        plan = checkpoint_plan(fn, *call_args, kwargs=call_kwargs, **self.plan_kwargs)
        grad = None
        if plan.ok:
            argnums = 0 if self.filter else self.argnums
            grad = jax.jit(jax.grad(_rewritten(plan), argnums=argnums, has_aux=self.has_aux))
        return _Entry(plan, plan.reason, fn, grad, aux_static)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call_args, call_kwargs, static, key = self._split(args, kwargs)
        entry = None if key is None else self._cache.get(key)
        if entry is None:
            entry = self._prepare(call_args, call_kwargs, static)
            consts = entry.plan.jaxpr.consts if entry.plan.jaxpr is not None else ()
            # A function closing over tracers of an enclosing trace is planned afresh.
            if key is not None and not any(isinstance(c, jax.core.Tracer) for c in consts):
                self._cache[key] = entry
        out = None
        if entry.grad is not None:
            try:
                out = entry.grad(*call_args, **call_kwargs)
                entry.succeeded = True
            except Exception as e:  # noqa: BLE001
                if entry.succeeded:  # it compiled and ran before: a genuine runtime error
                    raise
                entry.grad = None
                entry.reason = f"checkpointed gradient failed: {type(e).__name__}: {e}"
        if entry.grad is None:
            argnums = 0 if self.filter else self.argnums
            out = jax.grad(entry.fn, argnums=argnums, has_aux=self.has_aux)(*call_args, **call_kwargs)
        self.last_plan = entry.plan
        self.fallback_reason = entry.reason
        if self.filter and self.has_aux:
            grads, aux_dynamic = out
            return grads, eqx.combine(aux_dynamic, entry.aux_static[0])
        return out


def checkpointed_grad(
    fn: Callable[..., Any],
    *,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    checkpoints: Checkpoints = "auto",
    memory_budget: int | None = None,
    min_length: int = 16,
) -> CheckpointedGrad:
    """Like `jax.grad(fn, argnums=argnums, has_aux=has_aux)`, but every long `lax.scan`
    in `fn` (also inside `jit` calls, `jax.checkpoint`, `lax.cond`/`lax.switch` branches
    and other scans' bodies) runs as a [`checkpointed_scan`][] chosen by
    [`checkpoint_plan`][].

    The function is traced and planned **once per input signature** (the structure,
    shapes, dtypes and weak types of the arguments, keyword arguments included), like
    `jax.jit`: the plan and the compiled, checkpointed gradient are cached, so later
    calls with the same signature neither re-trace nor re-plan. (As under `jax.jit`,
    Python side effects of `fn` happen when it is traced, not on every call.)

    When planning fails or finds nothing to checkpoint (the jaxpr cannot be captured,
    no scan, every scan inside a custom_jvp/custom_vjp body, scans too short, or the
    rewritten gradient raises when first compiled), it falls back to plain
    `jax.grad(fn, ...)` and records why in `.fallback_reason`; `.last_plan` holds the
    plan.

    **Arguments:**

    - `fn`: the function to differentiate, taking PyTrees of arrays (as for `jax.grad`;
      see [`filter_checkpointed_grad`][] for arguments with non-array leaves). Keyword
      arguments are not differentiated, as for `jax.grad`; their non-array leaves are
      passed as the Python values they are (and are part of the cache key, so they must
      be hashable for the plan to be cached).
    - `argnums`, `has_aux`: as for `jax.grad`.
    - `checkpoints`, `memory_budget`, `min_length`: passed to [`checkpoint_plan`][].

    **Returns:**

    A [`CheckpointedGrad`][]: a callable with the signature of `jax.grad(fn, ...)`,
    usable under `jax.jit`.
    """
    return CheckpointedGrad(
        fn,
        argnums,
        has_aux,
        dict(checkpoints=checkpoints, memory_budget=memory_budget, min_length=min_length),
    )


def filter_checkpointed_grad(
    fn: Callable[..., Any],
    *,
    has_aux: bool = False,
    checkpoints: Checkpoints = "auto",
    memory_budget: int | None = None,
    min_length: int = 16,
) -> CheckpointedGrad:
    """[`checkpointed_grad`][] with the conventions of `eqx.filter_grad`: the gradient is
    taken with respect to every floating-point array leaf of the **first** argument;
    every other leaf of it (Python numbers, functions, integer arrays, ...) and every
    other argument are not differentiated, and may be anything (an `eqx.Module` with
    non-array fields, strings, callables).

    Non-array leaves are static: they are part of the cache key (so they must be
    hashable for the plan to be cached; an unhashable one re-plans on every call), and
    the static part of an aux output (`has_aux=True`) is returned as the function
    returned it.

    **Arguments:**

    - `fn`: the function to differentiate, `fn(x, *args, **kwargs)`, returning a scalar
      (and an aux output if `has_aux`).
    - `has_aux`: as for `eqx.filter_grad`.
    - `checkpoints`, `memory_budget`, `min_length`: passed to [`checkpoint_plan`][].

    **Returns:**

    A [`CheckpointedGrad`][] returning, like `eqx.filter_grad`, a PyTree shaped like
    `x` with the gradient at each floating-point array leaf and `None` elsewhere (and
    `(grads, aux)` if `has_aux`). Usable under `eqx.filter_jit`.
    """
    return CheckpointedGrad(
        fn,
        0,
        has_aux,
        dict(checkpoints=checkpoints, memory_budget=memory_budget, min_length=min_length),
        filter=True,
    )
