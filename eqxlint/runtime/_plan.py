"""`checkpoint_plan` and `checkpointed_grad`: plan checkpoints from a captured jaxpr."""

import dataclasses
import functools as ft
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._scan import checkpointed_scan, scan_schedule


_CALL_PRIMITIVES = ("jit", "pjit", "closed_call", "core_call")


def _nbytes(aval: Any) -> int:
    try:
        return int(np.prod(aval.shape, dtype=np.int64)) * jnp.dtype(aval.dtype).itemsize
    except Exception:  # noqa: BLE001 -- tokens, opaque types
        return 0


def _eval_jaxpr(jaxpr: jex.Jaxpr, consts: Sequence[Any], *args: Any, rewrite: dict | None = None) -> list[Any]:
    """Evaluate `jaxpr`, replacing the `scan`s listed in `rewrite` (by `id(eqn)`) with
    `checkpointed_scan` and inlining calls (`jit`) so that nested scans are reached."""
    env: dict[Any, Any] = {}

    def read(v):
        return v.val if isinstance(v, jex.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if rewrite is not None and name == "scan" and id(eqn) in rewrite:
            outvals = _checkpointed_scan_eqn(eqn, invals, rewrite[id(eqn)], rewrite)
        elif rewrite and name in _CALL_PRIMITIVES and isinstance(eqn.params.get("jaxpr"), jex.ClosedJaxpr):
            inner = eqn.params["jaxpr"]
            outvals = _eval_jaxpr(inner.jaxpr, inner.consts, *invals, rewrite=rewrite)
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


def _checkpointed_scan_eqn(eqn, invals, sizes, rewrite):
    p = eqn.params
    body = p["jaxpr"]
    nc, nk = p["num_consts"], p["num_carry"]
    consts, init, xs = invals[:nc], invals[nc : nc + nk], invals[nc + nk :]

    def f(carry, x):
        out = _eval_jaxpr(body.jaxpr, body.consts, *consts, *carry, *x, rewrite=rewrite)
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
    """

    length: int
    carry_bytes: int
    per_step_bytes: int
    peak_bytes: int
    schedule: tuple[int, ...]
    checkpoints: int
    block_size: int
    planned_peak_bytes: int


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

    - `scans`: one [`ScanPlan`][] per `lax.scan` found (including scans inside `jit`
      calls and inside other scans' bodies), in program order.
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
    _eqns: tuple = dataclasses.field(repr=False, compare=False, default=())

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


def _walk(jaxpr: jex.Jaxpr, out: list, other: list) -> None:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            out.append(eqn)
            _walk(eqn.params["jaxpr"].jaxpr, out, other)
        elif eqn.primitive.name in _CALL_PRIMITIVES and isinstance(eqn.params.get("jaxpr"), jex.ClosedJaxpr):
            _walk(eqn.params["jaxpr"].jaxpr, out, other)
        else:
            other.append(sum(_nbytes(v.aval) for v in eqn.outvars))


def checkpoint_plan(
    fn: Callable[..., Any],
    *args: Any,
    checkpoints: str | int = "binomial",
    memory_budget: int | None = None,
    min_length: int = 16,
) -> CheckpointPlan:
    """Capture the jaxpr of `fn(*args)`, estimate the activation memory reverse mode
    would keep, and plan checkpoints for its `lax.scan`s.

    Each scan's per-step residual bytes are measured from the residuals of a `jax.vjp`
    of its body (those that depend on the carry or the step input).

    **Arguments:**

    - `fn`: the function, taking PyTrees of arrays.
    - `*args`: example arguments (arrays or `jax.ShapeDtypeStruct`s).
    - `checkpoints`: the schedule to use for each scan, as for
      [`checkpointed_scan`][]. Ignored when `memory_budget` is given.
    - `memory_budget`: if given (bytes), choose for each scan the fastest schedule
      (fewest recomputation levels) whose estimate fits the budget, falling back to the
      most frugal one.
    - `min_length`: scans shorter than this are left alone.

    **Returns:**

    A [`CheckpointPlan`][]. Planning failures (the function cannot be traced, no
    scan found, no scan long enough) are reported in `plan.reason`, not raised.
    """
    try:
        closed = jax.make_jaxpr(fn)(*args)
    except Exception as e:  # noqa: BLE001
        return CheckpointPlan((), 0, 0, 0, 0, 0, f"could not capture a jaxpr: {type(e).__name__}: {e}")
    scans: list = []
    other: list = []
    _walk(closed.jaxpr, scans, other)
    other_bytes = sum(other)
    plans = []
    eqns = []
    for eqn in scans:
        p = eqn.params
        length = int(p["length"])
        nc, nk = p["num_consts"], p["num_carry"]
        carry_bytes = sum(_nbytes(v.aval) for v in eqn.invars[nc : nc + nk])
        try:
            per_step = _per_step_residual_bytes(eqn)
        except Exception:  # noqa: BLE001 -- fall back to every intermediate of the body
            per_step = sum(_nbytes(v.aval) for e in p["jaxpr"].jaxpr.eqns for v in e.outvars)
        if length < min_length or per_step == 0:
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
            sizes = scan_schedule(length, checkpoints)  # type: ignore[arg-type]
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
            )
        )
        eqns.append(eqn)
    peak = other_bytes + sum(s.peak_bytes for s in plans)
    planned_peak = other_bytes + sum(s.planned_peak_bytes for s in plans)
    largest = max(plans, key=lambda s: s.peak_bytes, default=None)
    if not plans:
        reason = "no lax.scan found in the function: nothing to checkpoint"
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
        _eqns=tuple(eqns),
    )


class CheckpointedGrad:
    """What [`checkpointed_grad`][] returns: call it like the function `jax.grad`
    returns.

    **Attributes:**

    - `last_plan`: the [`CheckpointPlan`][] of the last call (`None` before the first
      call, or if planning raised).
    - `fallback_reason`: `None` if the last call ran with checkpointing, else why it fell
      back to plain `jax.grad`.
    """

    def __init__(self, fn, argnums, has_aux, plan_kwargs):
        self.fn = fn
        self.argnums = argnums
        self.has_aux = has_aux
        self.plan_kwargs = plan_kwargs
        self.last_plan: CheckpointPlan | None = None
        self.fallback_reason: str | None = None
        ft.update_wrapper(self, fn, updated=())

    def __call__(self, *args: Any) -> Any:
        grad_kwargs = dict(argnums=self.argnums, has_aux=self.has_aux)
        try:
            plan = checkpoint_plan(self.fn, *args, **self.plan_kwargs)
        except Exception as e:  # noqa: BLE001
            self.last_plan = None
            self.fallback_reason = f"planning failed: {type(e).__name__}: {e}"
            return jax.grad(self.fn, **grad_kwargs)(*args)
        self.last_plan = plan
        if not plan.ok:
            self.fallback_reason = plan.reason
            return jax.grad(self.fn, **grad_kwargs)(*args)
        rewrite = {id(e): s.schedule for e, s in zip(plan._eqns, plan.scans) if s.schedule}
        closed = plan.jaxpr
        out_tree = jtu.tree_structure(jax.eval_shape(self.fn, *args))

        def rewritten(*a):
            flat = jtu.tree_leaves(a)
            out = _eval_jaxpr(closed.jaxpr, closed.consts, *flat, rewrite=rewrite)
            return jtu.tree_unflatten(out_tree, out)

        try:
            result = jax.grad(rewritten, **grad_kwargs)(*args)
        except Exception as e:  # noqa: BLE001
            self.fallback_reason = f"checkpointed gradient failed: {type(e).__name__}: {e}"
            return jax.grad(self.fn, **grad_kwargs)(*args)
        self.fallback_reason = None
        return result


def checkpointed_grad(
    fn: Callable[..., Any],
    *,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    checkpoints: str | int = "binomial",
    memory_budget: int | None = None,
    min_length: int = 16,
) -> CheckpointedGrad:
    """Like `jax.grad(fn, argnums=argnums, has_aux=has_aux)`, but every long `lax.scan`
    in `fn` (also inside `jit` calls and nested scans) runs as a
    [`checkpointed_scan`][] chosen by [`checkpoint_plan`][].

    On every call the function is traced, planned and re-evaluated with the scans
    replaced. When planning fails or finds nothing to checkpoint (no scan, scans too
    short, the jaxpr cannot be captured, the rewritten gradient raises), it falls back to
    plain `jax.grad` and records why in `.fallback_reason`; `.last_plan` holds the plan.

    **Arguments:**

    - `fn`: the function to differentiate, taking PyTrees of arrays (as for
      `jax.grad`).
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
