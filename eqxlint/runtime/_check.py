"""Finite-difference and loop-reference checks for primitives and PyTree functions."""

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.extend.core
import jax.interpreters.ad as ad
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import PyTree

from ._primitive import Primitive


Status = Literal["passed", "failed", "skipped"]

# Default tolerances. "float64": finite differences run in double precision (inputs are
# cast up inside `jax.enable_x64`), so a correct rule agrees to ~1e-9 and these bounds
# are loose. "float32": used when float64 is unavailable or `x64=False`.
_TOLERANCES = {
    "float64": dict(eps=1e-6, rtol=1e-5, atol=1e-7),
    "float32": dict(eps=1e-3, rtol=2e-2, atol=2e-3),
    "float16": dict(eps=1e-2, rtol=1e-1, atol=5e-2),
}
_VMAP_TOLERANCES = {
    "float64": dict(rtol=1e-10, atol=1e-12),
    "float32": dict(rtol=1e-5, atol=1e-6),
    "float16": dict(rtol=1e-2, atol=1e-3),
}


class CheckFailure(AssertionError):
    """Raised by [`CheckReport.raise_if_failed`][] (and by the `check_*` functions when
    `raise_on_failure=True`)."""


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    **Attributes:**

    - `name`: `"jvp"`, `"vjp"`, `"transpose"` or `"vmap"`.
    - `status`: `"passed"`, `"failed"` or `"skipped"`.
    - `max_abs_error`: the largest absolute error measured (`None` if skipped).
    - `max_rel_error`: `max_abs_error` divided by the size of the reference
      (`None` if skipped).
    - `rtol`, `atol`: the tolerances used: passed iff
      `abs_error <= atol + rtol * |reference|` everywhere.
    - `dtype`: the floating dtype the check ran in (`"float64"` or the native dtype).
    - `message`: details (why it was skipped, which case failed).
    """

    name: str
    status: Status
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    rtol: float | None = None
    atol: float | None = None
    dtype: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """What the `check_*` functions return.

    **Attributes:**

    - `name`: what was checked.
    - `results`: a dict from check name to [`CheckResult`][].
    - `ok`: `True` iff no check failed (skipped checks do not fail).
    - `max_errors`: a dict from check name to its `max_abs_error`.

    `report["jvp"]` is `report.results["jvp"]`; `str(report)` is a readable table;
    `report.raise_if_failed()` raises [`CheckFailure`][] with that table.
    """

    name: str
    results: dict[str, CheckResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())

    @property
    def max_errors(self) -> dict[str, float | None]:
        return {k: r.max_abs_error for k, r in self.results.items()}

    def __getitem__(self, item: str) -> CheckResult:
        return self.results[item]

    def __bool__(self) -> bool:
        return self.ok

    def raise_if_failed(self) -> "CheckReport":
        if not self.ok:
            raise CheckFailure(str(self))
        return self

    def __str__(self) -> str:
        lines = [f"{self.name}: {'OK' if self.ok else 'FAILED'}"]
        for r in self.results.values():
            if r.status == "skipped":
                lines.append(f"  {r.name:<10} skipped  {r.message}")
                continue
            lines.append(
                f"  {r.name:<10} {r.status:<7}  max abs err {r.max_abs_error:.3g}, "
                f"max rel err {r.max_rel_error:.3g} ({r.dtype}, rtol={r.rtol:g}, "
                f"atol={r.atol:g}){'  ' + r.message if r.message else ''}"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Helpers


def _x64_context(enable: bool) -> contextlib.AbstractContextManager:
    if not enable:
        return contextlib.nullcontext()
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    try:  # older JAX
        from jax.experimental import enable_x64  # pyright: ignore

        return enable_x64()
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()


def _is_float(x: Any) -> bool:
    return eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact)


def _cast_up(tree: PyTree) -> PyTree:
    return jtu.tree_map(
        lambda x: jnp.asarray(x, jnp.float64) if _is_float(x) and jnp.issubdtype(x.dtype, jnp.floating) else x,
        tree,
    )


def _dtype_name(tree: PyTree) -> str:
    dtypes = {jnp.dtype(x.dtype).name for x in jtu.tree_leaves(tree) if _is_float(x)}
    if not dtypes:
        return "float32"
    if "float64" in dtypes:
        return "float64"
    if dtypes <= {"float16", "bfloat16"}:
        return "float16"
    return "float32"


def _random_like(rng: np.random.RandomState, tree: PyTree) -> PyTree:
    return jtu.tree_map(
        lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), tree
    )


def _compare(out: PyTree, ref: PyTree, rtol: float, atol: float) -> tuple[bool, float, float]:
    ok, max_abs, max_ref = True, 0.0, 0.0
    for a, b in zip(jtu.tree_leaves(out), jtu.tree_leaves(ref)):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return False, float("inf"), float("inf")
        if a.size == 0:
            continue
        err = np.abs(a - b)
        if not np.all(np.isfinite(a) == np.isfinite(b)):
            return False, float("inf"), float("inf")
        err = np.where(np.isfinite(b), err, 0.0)
        ok = ok and bool(np.all(err <= atol + rtol * np.abs(np.where(np.isfinite(b), b, 0.0))))
        max_abs = max(max_abs, float(err.max()))
        max_ref = max(max_ref, float(np.abs(np.where(np.isfinite(b), b, 0.0)).max()))
    return ok, max_abs, max_abs / max(max_ref, np.finfo(np.float64).tiny)


def _vdot(a: PyTree, b: PyTree) -> jax.Array:
    parts = [jnp.vdot(x, y) for x, y in zip(jtu.tree_leaves(a), jtu.tree_leaves(b))]
    return sum(parts, jnp.zeros(()))


def _norm(a: PyTree) -> jax.Array:
    return jnp.sqrt(sum((jnp.vdot(x, x) for x in jtu.tree_leaves(a)), jnp.zeros(())))


def _tols(dtype: str, eps, rtol, atol) -> tuple[float, float, float]:
    d = _TOLERANCES[dtype]
    return (d["eps"] if eps is None else eps, d["rtol"] if rtol is None else rtol, d["atol"] if atol is None else atol)


class _Split:
    """A function of the floating-point array leaves of `args`, the rest held fixed."""

    def __init__(self, fn: Callable[..., Any], args: tuple):
        self.diff, self.static = eqx.partition(args, _is_float)
        self.fn = fn

    def __call__(self, diff: PyTree) -> PyTree:
        out = self.fn(*eqx.combine(diff, self.static))
        return eqx.filter(out, _is_float)


def _skip(name: str, message: str) -> CheckResult:
    return CheckResult(name, "skipped", message=message)


# ---------------------------------------------------------------------------------------
# The individual checks (run inside the dtype context chosen by the caller).


def _run_jvp(g: _Split, rng, eps, rtol, atol, dtype) -> CheckResult:
    diff = g.diff
    tangent = _random_like(rng, diff)
    _, t_out = eqx.filter_jit(lambda d, t: eqx.filter_jvp(g, (d,), (t,)))(diff, tangent)

    @eqx.filter_jit
    def fd(d, t):
        plus = jtu.tree_map(lambda x, v: x + eps * v, d, t)
        minus = jtu.tree_map(lambda x, v: x - eps * v, d, t)
        return jtu.tree_map(lambda a, b: (a - b) / (2 * eps), g(plus), g(minus))

    ok, max_abs, max_rel = _compare(t_out, fd(diff, tangent), rtol, atol)
    return CheckResult("jvp", "passed" if ok else "failed", max_abs, max_rel, rtol, atol, dtype,
                       "" if ok else "JVP disagrees with central finite differences")


def _run_vjp(g: _Split, rng, eps, rtol, atol, dtype, probes: int = 2) -> CheckResult:
    diff = g.diff
    out, vjp_fn = eqx.filter_vjp(g, diff)
    vjp_fn = eqx.filter_jit(vjp_fn)

    @eqx.filter_jit
    def fd(d, t):
        plus = jtu.tree_map(lambda x, v: x + eps * v, d, t)
        minus = jtu.tree_map(lambda x, v: x - eps * v, d, t)
        return jtu.tree_map(lambda a, b: (a - b) / (2 * eps), g(plus), g(minus))

    ok, max_abs, max_rel = True, 0.0, 0.0
    for _ in range(probes):
        t = _random_like(rng, diff)
        c = _random_like(rng, out)
        fwd = fd(diff, t)
        (ct,) = vjp_fn(c)
        lhs = float(_vdot(c, fwd))  # <c, J t>  (J t by finite differences)
        rhs = float(_vdot(ct, t))  # <J^T c, t>
        scale = float(_norm(c) * _norm(fwd)) + float(_norm(ct) * _norm(t))
        err = abs(lhs - rhs)
        ok = ok and err <= atol + rtol * scale
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(scale, 1e-300))
    return CheckResult("vjp", "passed" if ok else "failed", max_abs, max_rel, rtol, atol, dtype,
                       "" if ok else "<c, J t> (finite differences) != <J^T c, t> (vjp)")


def _resolve_axes(in_axes: Any, args: tuple) -> PyTree:
    def _sub(ax, sub):
        def _leaf(x):
            if callable(ax):
                return ax(x)
            return ax if eqx.is_array(x) else None

        return jtu.tree_map(_leaf, sub)

    if not isinstance(in_axes, tuple):
        in_axes = (in_axes,) * len(args)
    return tuple(
        jtu.tree_map(_sub, a, s, is_leaf=lambda x: x is None or callable(x))
        for a, s in zip(in_axes, args)
    )


def _run_vmap(fn, args, in_axes, rtol, atol, dtype) -> CheckResult:
    axes = _resolve_axes(in_axes, args)
    flat_axes = jtu.tree_leaves(axes, is_leaf=lambda x: x is None)
    flat_args, treedef = jtu.tree_flatten(args, is_leaf=lambda x: x is None)
    sizes = {x.shape[a] for x, a in zip(flat_args, flat_axes) if a is not None}
    if len(sizes) != 1:
        return CheckResult("vmap", "failed", message=f"inconsistent batch sizes {sizes}")
    (size,) = sizes
    batched = eqx.filter_jit(eqx.filter_vmap(fn, in_axes=tuple(axes)))(*args)
    one = eqx.filter_jit(fn)
    outs = []
    for i in range(size):
        sliced = [x if a is None else jnp.take(x, i, axis=a) for x, a in zip(flat_args, flat_axes)]
        outs.append(one(*jtu.tree_unflatten(treedef, sliced)))
    dyn_outs = [eqx.filter(o, eqx.is_array) for o in outs]
    ref = jtu.tree_map(lambda *xs: jnp.stack(xs), *dyn_outs)
    ok, max_abs, max_rel = _compare(eqx.filter(batched, eqx.is_array), ref, rtol, atol)
    return CheckResult("vmap", "passed" if ok else "failed", max_abs, max_rel, rtol, atol, dtype,
                       "" if ok else "vmap disagrees with a Python loop over the batch")


def _with_dtype(x64: bool, args: tuple, body: Callable[[tuple, str], CheckResult]) -> CheckResult:
    if x64:
        try:
            with _x64_context(True):
                up = _cast_up(args)
                return body(up, _dtype_name(up))
        except Exception as e:  # noqa: BLE001 -- fall back to native precision
            first_error = e
        result = body(args, _dtype_name(args))
        note = f"(float64 run failed: {type(first_error).__name__}; ran in native dtype)"
        return dataclasses.replace(result, message=(result.message + " " + note).strip())
    return body(args, _dtype_name(args))


# ---------------------------------------------------------------------------------------
# Public API


def check_jvp(
    fn: Callable[..., Any],
    *args: Any,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    x64: bool = True,
    seed: int = 0,
    raise_on_failure: bool = False,
) -> CheckReport:
    """Check forward-mode AD of `fn` against central finite differences.

    `fn(*args)` may take and return arbitrary PyTrees. Differentiation is with respect
    to every floating-point array leaf of `args` (everything else is held fixed), along
    a random tangent; only the floating-point array leaves of the output are compared.
    Both sides run under `eqx.filter_jit`.

    **Arguments:**

    - `fn`: the function to check.
    - `*args`: example arguments.
    - `eps`: the finite-difference step (default: `1e-6` in float64, `1e-3` in float32).
    - `rtol`, `atol`: tolerances: the check passes iff `|jvp - fd| <= atol + rtol *
      |fd|` elementwise. Defaults: `rtol=1e-5, atol=1e-7` in float64;
      `rtol=2e-2, atol=2e-3` in float32; `rtol=1e-1, atol=5e-2` in float16/bfloat16.
    - `x64`: if `True` (the default), cast floating inputs up to float64 and run both
      sides inside `jax.enable_x64(True)`, so the finite differences are accurate. If
      `fn` fails in float64, the check re-runs in the inputs' own dtype (and says so
      in the result's `message`).
    - `seed`: seeds the random tangent.
    - `raise_on_failure`: raise [`CheckFailure`][] instead of returning a failing report.

    **Returns:**

    A [`CheckReport`][] with one result, `"jvp"`.
    """

    def body(a, dtype):
        e, r, t = _tols(dtype, eps, rtol, atol)
        return _run_jvp(_Split(fn, a), np.random.RandomState(seed), e, r, t, dtype)

    report = CheckReport(f"check_jvp({_name(fn)})", {"jvp": _with_dtype(x64, args, body)})
    return report.raise_if_failed() if raise_on_failure else report


def check_vjp(
    fn: Callable[..., Any],
    *args: Any,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    x64: bool = True,
    seed: int = 0,
    raise_on_failure: bool = False,
) -> CheckReport:
    """Check reverse-mode AD of `fn` by the dot-product test against finite differences:
    `<c, J t>` (with `J t` by central finite differences) must equal `<Jᵀ c, t>` (with
    `Jᵀ c` from `eqx.filter_vjp`) for random tangents `t` and cotangents `c`.

    Arguments, tolerances and float64 handling are as for [`check_jvp`][]; the
    tolerance is applied to the scalar error, scaled by `|c|·|J t| + |Jᵀ c|·|t|`.

    **Returns:**

    A [`CheckReport`][] with one result, `"vjp"`.
    """

    def body(a, dtype):
        e, r, t = _tols(dtype, eps, rtol, atol)
        return _run_vjp(_Split(fn, a), np.random.RandomState(seed), e, r, t, dtype)

    report = CheckReport(f"check_vjp({_name(fn)})", {"vjp": _with_dtype(x64, args, body)})
    return report.raise_if_failed() if raise_on_failure else report


def check_vmap(
    fn: Callable[..., Any],
    *args: Any,
    in_axes: Any = eqx.if_array(0),
    rtol: float | None = None,
    atol: float | None = None,
    raise_on_failure: bool = False,
) -> CheckReport:
    """Check `eqx.filter_vmap(fn, in_axes=in_axes)` against a Python loop over the batch,
    both under `eqx.filter_jit`.

    `check_vmap` does **not** build the batch: `args` are already batched, as for
    `eqx.filter_vmap`. The loop calls `fn` on the `i`-th slice of every mapped array
    leaf (unmapped leaves are passed whole) and stacks the outputs' array leaves along
    axis 0 (so `fn`'s outputs are compared with `out_axes=0`).

    **Arguments:**

    - `fn`: the function to check.
    - `*args`: batched arguments.
    - `in_axes`: as for `eqx.filter_vmap` (a prefix of `args`, with ints, `None` or
      callables such as `eqx.if_array(0)`).
    - `rtol`, `atol`: defaults `rtol=1e-5, atol=1e-6` for float32 (batched and
      unbatched kernels may round differently), `1e-10`/`1e-12` for float64.
    - `raise_on_failure`: raise [`CheckFailure`][] instead of returning a failing report.

    **Returns:**

    A [`CheckReport`][] with one result, `"vmap"`.
    """
    dtype = _dtype_name(args)
    d = _VMAP_TOLERANCES[dtype]
    r = d["rtol"] if rtol is None else rtol
    t = d["atol"] if atol is None else atol
    result = _run_vmap(fn, args, in_axes, r, t, dtype)
    report = CheckReport(f"check_vmap({_name(fn)})", {"vmap": result})
    return report.raise_if_failed() if raise_on_failure else report


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or getattr(fn, "name", None) or repr(fn)


def check_primitive(
    op: Primitive | jax.extend.core.Primitive,
    *example_args: Any,
    batch_size: int = 3,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    x64: bool = True,
    seed: int = 0,
    raise_on_failure: bool = False,
    **params: Any,
) -> CheckReport:
    """Check every rule of a primitive on example arguments, each under `jax.jit`.

    - `"jvp"`: the JVP rule against central finite differences (as [`check_jvp`][]).
    - `"vjp"`: reverse mode by the dot-product test against finite differences (as
      [`check_vjp`][]); this exercises the JVP rule's linearisation and any transpose
      rules it reaches.
    - `"transpose"`: for every argument the primitive is linear in (tested
      numerically: `f(a u + b v) = a f(u) + b f(v)`), the transpose rule by the
      dot-product test `<A x, y> = <x, Aᵀ y>` with `Aᵀ` from `jax.linear_transpose`.
      Skipped if the primitive is linear in no argument or has no transpose rule.
    - `"vmap"`: the batching rule against a Python loop. The batch is **built here**:
      `batch_size` perturbed copies of each example argument, batched along axis 0 all
      at once, one argument at a time (the others unbatched), and along the last axis.

    The differentiation checks are skipped for primitives defined with
    `differentiable=False` (or raw primitives without a JVP rule).

    **Arguments:**

    - `op`: a [`Primitive`][] from [`define_primitive`][], or a raw
      `jax.extend.core.Primitive` (bound with `op.bind`).
    - `*example_args`: example positional arrays.
    - `batch_size`: the batch size of the `"vmap"` check.
    - `eps`, `rtol`, `atol`, `x64`, `seed`: as for [`check_jvp`][] (the `"vmap"` and
      `"transpose"` checks use the tolerances of [`check_vmap`][] unless given).
    - `raise_on_failure`: raise [`CheckFailure`][] instead of returning a failing report.
    - `**params`: the primitive's static keyword parameters.

    **Returns:**

    A [`CheckReport`][] with results `"jvp"`, `"vjp"`, `"transpose"` and `"vmap"`.
    """
    if isinstance(op, Primitive):
        prim = op.primitive
        name = op.name
        differentiable = op.differentiable
        has_transpose = op.linear_transpose
        fn = lambda *a: op(*a, **params)
    elif isinstance(op, jax.extend.core.Primitive):
        prim = op
        name = op.name
        differentiable = prim in ad.primitive_jvps
        has_transpose = prim in ad.primitive_transposes
        fn = lambda *a: op.bind(*a, **params)
    else:
        raise TypeError(f"check_primitive expects a primitive, got {op!r}")
    del prim
    args = tuple(jnp.asarray(a) for a in example_args)
    results: dict[str, CheckResult] = {}
    if differentiable and any(_is_float(a) for a in args):

        def jvp_body(a, dtype):
            e, r, t = _tols(dtype, eps, rtol, atol)
            return _run_jvp(_Split(fn, a), np.random.RandomState(seed), e, r, t, dtype)

        def vjp_body(a, dtype):
            e, r, t = _tols(dtype, eps, rtol, atol)
            return _run_vjp(_Split(fn, a), np.random.RandomState(seed + 1), e, r, t, dtype)

        results["jvp"] = _with_dtype(x64, args, jvp_body)
        results["vjp"] = _with_dtype(x64, args, vjp_body)
    else:
        why = "not differentiable by design" if not differentiable else "no floating-point inputs"
        results["jvp"] = _skip("jvp", why)
        results["vjp"] = _skip("vjp", why)

    def transpose_body(a, dtype):
        return _run_transpose(fn, a, seed, rtol, atol, dtype)

    if not has_transpose:
        results["transpose"] = _skip("transpose", "no transpose rule (transpose=None)")
    else:
        results["transpose"] = _with_dtype(x64, args, transpose_body)

    def vmap_body(a, dtype):
        return _run_vmap_cases(fn, a, batch_size, seed, rtol, atol, dtype)

    results["vmap"] = _with_dtype(x64, args, vmap_body)
    report = CheckReport(f"check_primitive({name!r})", results)
    return report.raise_if_failed() if raise_on_failure else report


def _run_transpose(fn, args, seed, rtol, atol, dtype) -> CheckResult:
    rng = np.random.RandomState(seed + 2)
    d = _VMAP_TOLERANCES[dtype]
    r = (d["rtol"] * 10 if rtol is None else rtol)
    t = (d["atol"] * 10 if atol is None else atol)
    jfn = jax.jit(fn)
    linear_in = []
    ok, max_abs, max_rel, checked = True, 0.0, 0.0, []
    for i, a in enumerate(args):
        if not _is_float(a):
            continue

        def f_i(x, i=i):
            return fn(*args[:i], x, *args[i + 1 :])

        u = _random_like(rng, a)
        v = _random_like(rng, a)
        jf = jax.jit(f_i)
        lhs = jf(2.0 * u - 3.0 * v)
        rhs = jtu.tree_map(lambda p, q: 2.0 * p - 3.0 * q, jf(u), jf(v))
        lin_ok, _, _ = _compare(lhs, rhs, r, t)
        if not lin_ok:
            continue
        linear_in.append(i)
        y = _random_like(rng, jf(u))
        (xt,) = jax.jit(lambda y, u=u, f_i=f_i: jax.linear_transpose(f_i, u)(y))(y)
        lhs_s = float(_vdot(jf(u), y))
        rhs_s = float(_vdot(u, xt))
        scale = float(_norm(jf(u)) * _norm(y)) + float(_norm(u) * _norm(xt))
        err = abs(lhs_s - rhs_s)
        ok = ok and err <= t + r * scale
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(scale, 1e-300))
        checked.append(i)
    del jfn
    if not checked:
        return _skip("transpose", "not linear in any argument")
    return CheckResult("transpose", "passed" if ok else "failed", max_abs, max_rel, r, t, dtype,
                       f"linear in argument(s) {checked}" + ("" if ok else "; <A x, y> != <x, A^T y>"))


def _run_vmap_cases(fn, args, batch_size, seed, rtol, atol, dtype) -> CheckResult:
    rng = np.random.RandomState(seed + 3)
    d = _VMAP_TOLERANCES[dtype]
    r = d["rtol"] if rtol is None else rtol
    t = d["atol"] if atol is None else atol

    def stack(a, axis):
        if _is_float(a):
            copies = [a + 0.1 * i * jnp.asarray(rng.standard_normal(a.shape), a.dtype) for i in range(batch_size)]
        else:
            copies = [a] * batch_size
        return jnp.stack(copies, axis=axis)

    cases: list[tuple[str, tuple, tuple]] = []
    cases.append(("all args on axis 0", tuple(stack(a, 0) for a in args), (0,) * len(args)))
    if len(args) > 1:
        for i in range(len(args)):
            b = tuple(stack(a, 0) if j == i else a for j, a in enumerate(args))
            axes = tuple(0 if j == i else None for j in range(len(args)))
            cases.append((f"only arg {i}", b, axes))
    cases.append(("all args on last axis", tuple(stack(a, a.ndim) for a in args), tuple(a.ndim for a in args)))
    worst_abs, worst_rel, ok, failed = 0.0, 0.0, True, []
    for label, batched, axes in cases:
        res = _run_vmap(fn, batched, axes, r, t, dtype)
        if res.status == "failed":
            ok = False
            failed.append(label)
        worst_abs = max(worst_abs, res.max_abs_error if res.max_abs_error is not None else float("inf"))
        worst_rel = max(worst_rel, res.max_rel_error if res.max_rel_error is not None else float("inf"))
    return CheckResult("vmap", "passed" if ok else "failed", worst_abs, worst_rel, r, t, dtype,
                       f"{len(cases)} batching cases" + (f"; failed: {failed}" if failed else ""))
