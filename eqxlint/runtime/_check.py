"""Finite-difference and loop-reference checks for primitives and PyTree functions."""

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import equinox as eqx
import jax
import jax.extend.core
import jax.interpreters.ad as ad
import jax.interpreters.batching as _batching
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import PyTree

from ._primitive import _DEFINED, Primitive
from ._tolerance import _platforms, choose_precision, Precision, PRECISIONS, real_size


Status = Literal["passed", "failed", "skipped"]

# The finite-difference noise allowance: `_FD_NOISE * u * |f| / eps` elementwise, for
# `u` the unit roundoff of the computed dtype (each of f(x ± eps t) is rounded).
_FD_NOISE = 4.0
# Number of random (tangent, cotangent) pairs of the dot-product tests.
_PROBES = 4

_CHECKS = (
    "lowering",
    "jvp",
    "vjp",
    "transpose",
    "vmap",
    "vmap_of_jvp",
    "jvp_of_vmap",
    "vmap_of_transpose",
)


class CheckFailure(AssertionError):
    """Raised by [`CheckReport.raise_if_failed`][] (and by the `check_*` functions when
    `raise_on_failure=True`)."""


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    **Attributes:**

    - `name`: `"lowering"`, `"jvp"`, `"vjp"`, `"transpose"`, `"vmap"`,
      `"vmap_of_jvp"`, `"jvp_of_vmap"` or `"vmap_of_transpose"`.
    - `status`: `"passed"`, `"failed"` or `"skipped"`.
    - `max_abs_error`: the largest absolute error measured (`None` if none was).
    - `max_rel_error`: the largest error relative to the reference's scale (`None` if
      none was measured).
    - `rtol`, `atol`: the tolerances used.
    - `dtype`: the precision whose tolerances were used: the least precise floating
      dtype the computation runs in.
    - `eps`: the finite-difference step (`None` for checks without one).
    - `message`: details (why it was skipped, which case failed, the error raised).
    """

    name: str
    status: Status
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    rtol: float | None = None
    atol: float | None = None
    dtype: str | None = None
    message: str = ""
    eps: float | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def __str__(self) -> str:
        head = f"  {self.name:<18} {self.status:<7}"
        parts = []
        if self.max_abs_error is not None:
            parts.append(f"max abs err {self.max_abs_error:.3g}")
        if self.max_rel_error is not None:
            parts.append(f"max rel err {self.max_rel_error:.3g}")
        tol = []
        if self.dtype is not None:
            tol.append(self.dtype)
        if self.rtol is not None:
            tol.append(f"rtol={self.rtol:g}")
        if self.atol is not None:
            tol.append(f"atol={self.atol:g}")
        if self.eps is not None:
            exponent = math.log2(self.eps) if self.eps > 0 else 0.5
            shown = f"2^{int(exponent)}" if exponent == int(exponent) else f"{self.eps:g}"
            tol.append(f"eps={shown}")
        body = " ".join(
            piece for piece in (", ".join(parts), f"({', '.join(tol)})" if tol else "") if piece
        )
        if self.message:
            body += ("  " if body else "") + self.message
        return f"{head}  {body}".rstrip()


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
        lines.extend(str(r) for r in self.results.values())
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


def _is_inexact(x: Any) -> bool:
    return eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact)


def _cast_up(tree: PyTree) -> PyTree:
    def up(x):
        if not _is_inexact(x):
            return x
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            return jnp.asarray(x, jnp.complex128)
        return jnp.asarray(x, jnp.float64)

    return jtu.tree_map(up, tree)


def _normal(rng: np.random.RandomState, shape: tuple, dtype: Any) -> np.ndarray:
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    return rng.standard_normal(shape)


def _random_like(rng: np.random.RandomState, tree: PyTree, *, scaled: bool = False) -> PyTree:
    """Standard normal arrays like the leaves of `tree` (complex for complex leaves).
    `scaled`: multiply elementwise by `max(1, |x|)`, so a step along it is relative."""

    def leaf(x):
        v = _normal(rng, np.shape(x), x.dtype)
        if scaled:
            v = v * np.maximum(1.0, np.abs(np.asarray(x, dtype=np.complex128)))
        return jnp.asarray(v, x.dtype)

    return jtu.tree_map(leaf, tree)


def _np(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def _leaves(tree: PyTree) -> list:
    return [x for x in jtu.tree_leaves(tree) if eqx.is_array(x)]


def _rdot(a: PyTree, b: PyTree) -> float:
    """`Re Σ a·b` (bilinear, no conjugate: the pairing JAX's transposes satisfy)."""
    total = 0.0
    for x, y in zip(_leaves(a), _leaves(b)):
        total += float(np.real(np.sum(_np(x) * _np(y))))
    return total


def _norm(a: PyTree) -> float:
    return math.sqrt(sum(float(np.sum(np.abs(_np(x)) ** 2)) for x in _leaves(a)))


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


def _error_result(name: str, e: BaseException, dtype: str | None = None) -> CheckResult:
    text = _first_line(e)
    low = text.lower()
    kind = "missing" if ("not implemented" in low or "not found" in low) else "error"
    return CheckResult(name, "failed", dtype=dtype, message=f"{kind}: {text}")


def _skip(name: str, message: str) -> CheckResult:
    return CheckResult(name, "skipped", message=message)


@dataclasses.dataclass
class _Errors:
    """Accumulates an elementwise comparison over several leaves and cases."""

    ok: bool = True
    max_abs: float = 0.0
    max_rel: float = 0.0
    problems: list = dataclasses.field(default_factory=list)
    measured: bool = False  # whether any error was measured (not just exceptions)

    def fail(self, problem: str) -> None:
        self.ok = False
        if problem not in self.problems:
            self.problems.append(problem)

    def compare(self, out: PyTree, ref: PyTree, rtol: float, atol: float, label: str = "",
                noise: PyTree | None = None) -> bool:
        """`|out - ref| <= atol + rtol (|ref| + max|ref| / 10) + noise`, elementwise,
        per leaf; the structures, shapes and dtypes must agree and non-finite values
        must be in the same places."""
        out_leaves, out_tree = jtu.tree_flatten(out)
        ref_leaves, ref_tree = jtu.tree_flatten(ref)
        where = f"{label}: " if label else ""
        if out_tree != ref_tree:
            self.fail(f"{where}output structure {out_tree} != reference {ref_tree}")
            return False
        noise_leaves = [None] * len(ref_leaves) if noise is None else jtu.tree_leaves(noise)
        good = True
        for i, (a, b, nz) in enumerate(zip(out_leaves, ref_leaves, noise_leaves)):
            if np.shape(a) != np.shape(b):
                self.fail(f"{where}output {i} has shape {np.shape(a)}, reference {np.shape(b)}")
                good = False
                continue
            a, b = _np(a), _np(b)
            if a.size == 0:
                continue
            fa, fb = np.isfinite(a), np.isfinite(b)
            if not np.array_equal(fa, fb) or not np.array_equal(
                np.isnan(a), np.isnan(b)
            ) or not np.array_equal(a[~fa & ~np.isnan(a)], b[~fb & ~np.isnan(b)]):
                self.fail(f"{where}output {i}: non-finite values differ from the reference")
                self.max_abs, self.measured = math.inf, True
                good = False
                continue
            self.measured = True
            err = np.where(fb, np.abs(a - b), 0.0)
            mag = np.where(fb, np.abs(b), 0.0)
            scale = float(mag.max())
            allowed = atol + rtol * (mag + scale / 10)
            if nz is not None:
                allowed = allowed + np.asarray(nz)
            self.max_abs = max(self.max_abs, float(err.max()))
            self.max_rel = max(self.max_rel, float(err.max()) / max(scale, np.finfo(np.float64).tiny))
            if not np.all(err <= allowed):
                bad = int(np.argmax(err - allowed))
                self.fail(
                    f"{where}output {i} off by up to {float(err.max()):.3g} (element {bad}: "
                    f"{complex(a.flat[bad]) if np.iscomplexobj(a) else float(a.flat[bad]):.6g} "
                    f"vs {complex(b.flat[bad]) if np.iscomplexobj(b) else float(b.flat[bad]):.6g})"
                )
                good = False
        return good

    def scalar(self, err: float, scale: float, allowed: float, label: str) -> None:
        self.measured = True
        self.max_abs = max(self.max_abs, err)
        self.max_rel = max(self.max_rel, err / max(scale, np.finfo(np.float64).tiny))
        if not err <= allowed:
            self.fail(label)

    def result(self, name: str, rtol: float, atol: float, precision: Precision, note: str,
               failure: str, eps: float | None = None) -> CheckResult:
        msg = [note] if note else []
        if not self.ok:
            more = f" (+{len(self.problems) - 4} more)" if len(self.problems) > 4 else ""
            msg.append(f"{failure}; failed: " + "; ".join(self.problems[:4]) + more)
        max_abs = self.max_abs if self.measured else None
        max_rel = self.max_rel if self.measured else None
        return CheckResult(name, "passed" if self.ok else "failed", max_abs, max_rel,
                           rtol, atol, precision.name, "; ".join(msg), eps)


def _tol(value: float | None, default: float) -> float:
    return default if value is None else value


# ---------------------------------------------------------------------------------------
# Finite differences


class _Diff:
    """`fn` as a function of the floating/complex array leaves of `args` (the rest held
    fixed), returning the floating/complex array leaves of its output."""

    def __init__(self, fn: Callable[..., Any], args: tuple):
        self.diff, self.static = eqx.partition(args, _is_inexact)
        self.fn = fn

    def __call__(self, diff: PyTree) -> PyTree:
        out = self.fn(*eqx.combine(diff, self.static))
        return eqx.filter(out, _is_inexact)


def _fd(g_jit: Callable, diff: PyTree, t: PyTree, eps: float, unit: float):
    """Central differences along (the realised step of) `t`.

    Returns `(fd, t_eff, noise)`: `t_eff = (x⁺ - x⁻) / 2eps` is the direction actually
    stepped along after rounding `x ± eps t` to the inputs' dtype (exact for a
    power-of-two `eps`), `fd = (f(x⁺) - f(x⁻)) / 2eps` in double precision, and `noise`
    the allowance for the rounding of `f(x±)`."""
    plus = jtu.tree_map(lambda x, v: (x + eps * v).astype(x.dtype), diff, t)
    minus = jtu.tree_map(lambda x, v: (x - eps * v).astype(x.dtype), diff, t)
    t_eff = jtu.tree_map(
        lambda p, m: jnp.asarray((_np(p) - _np(m)) / (2 * eps), p.dtype), plus, minus
    )
    fp, fm = g_jit(plus), g_jit(minus)
    fd = jtu.tree_map(lambda a, b: (_np(a) - _np(b)) / (2 * eps), fp, fm)

    def noise(a, b):
        mag = np.maximum(np.abs(_np(a)), np.abs(_np(b)))
        top = float(mag.max()) if mag.size else 0.0
        return _FD_NOISE * unit * (mag + top / 10) / eps

    return fd, t_eff, jtu.tree_map(noise, fp, fm)


def _fd_tolerances(precision: Precision, eps, rtol, atol) -> tuple[float, float, float]:
    return _tol(eps, precision.eps), _tol(rtol, precision.fd_rtol), _tol(atol, precision.fd_atol)


def _run_jvp(fn, args, seed, eps, rtol, atol, ref=None) -> CheckResult:
    """`ref`: the function whose finite differences are the reference (default `fn`)."""
    g = _Diff(fn, args)
    if not jtu.tree_leaves(g.diff):
        return _skip("jvp", "no floating-point inputs: nothing to differentiate")
    precision, note = choose_precision(g, (g.diff,))
    e, r, a = _fd_tolerances(precision, eps, rtol, atol)
    g_jit = jax.jit(_Diff(ref or fn, args))
    out = jax.eval_shape(g, g.diff)
    if not jtu.tree_leaves(out):
        return _skip("jvp", "no floating-point outputs: nothing to compare")
    rng = np.random.RandomState(seed)
    t = _random_like(rng, g.diff, scaled=True)
    fd, t_eff, noise = _fd(g_jit, g.diff, t, e, precision.unit)
    _, t_out = jax.jit(lambda d, t: jax.jvp(g, (d,), (t,)))(g.diff, t_eff)
    errs = _Errors()
    errs.compare(t_out, fd, r, a, noise=noise)
    return errs.result("jvp", r, a, precision, note,
                       "JVP disagrees with central finite differences", e)


def _run_vjp(fn, args, seed, eps, rtol, atol, ref=None) -> CheckResult:
    g = _Diff(fn, args)
    if not jtu.tree_leaves(g.diff):
        return _skip("vjp", "no floating-point inputs: nothing to differentiate")
    precision, note = choose_precision(g, (g.diff,))
    e, r, a = _fd_tolerances(precision, eps, rtol, atol)
    out = jax.eval_shape(g, g.diff)
    if not jtu.tree_leaves(out):
        return _skip("vjp", "no floating-point outputs: nothing to compare")
    g_jit = jax.jit(_Diff(ref or fn, args))
    vjp = jax.jit(lambda d, c: jax.vjp(g, d)[1](c)[0])
    n_in, n_out = real_size(g.diff), real_size(out)
    rng = np.random.RandomState(seed)
    errs = _Errors()
    for k in range(_PROBES):
        t = _random_like(rng, g.diff, scaled=True)
        c = _random_like(rng, out)
        fd, t_eff, noise = _fd(g_jit, g.diff, t, e, precision.unit)
        v = vjp(g.diff, c)
        lhs = _rdot(c, fd)  # <c, J t>, J t by finite differences
        rhs = _rdot(v, t_eff)  # <Jᵀ c, t>, Jᵀ c by jax.vjp
        # The typical size of a random projection: |u||w| / sqrt(n). Normalising by it
        # (rather than by |u||w|) keeps the test's sensitivity independent of size.
        scale = _norm(v) * _norm(t_eff) / math.sqrt(n_in) + _norm(c) * _norm(fd) / math.sqrt(n_out)
        allowed = a + r * scale + _norm(c) * _norm(noise) / math.sqrt(n_out)
        errs.scalar(abs(lhs - rhs), scale, allowed, f"probe {k}: <c, J t> = {lhs:.6g}, <Jᵀ c, t> = {rhs:.6g}")
    return errs.result("vjp", r, a, precision, note,
                       "<c, J t> (finite differences) != <Jᵀ c, t> (vjp)", e)


# ---------------------------------------------------------------------------------------
# Batching


def _resolve_axes(in_axes: Any, args: tuple) -> tuple:
    """Per-leaf batch axes (`int | None`) from an `eqx.filter_vmap`-style `in_axes`."""

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


def _loop_reference(fn_jit: Callable, flat_args: list, flat_axes: list, treedef, size: int) -> PyTree:
    outs = []
    for i in range(size):
        sliced = [x if ax is None else jnp.take(x, i, axis=ax) for x, ax in zip(flat_args, flat_axes)]
        outs.append(eqx.filter(fn_jit(*jtu.tree_unflatten(treedef, sliced)), eqx.is_array))
    return jtu.tree_map(lambda *xs: jnp.stack(xs), *outs)


def _vmap_case(fn, fn_jit, args, axes, errs: _Errors, rtol, atol, label) -> None:
    flat_axes = jtu.tree_leaves(axes, is_leaf=lambda x: x is None)
    flat_args, treedef = jtu.tree_flatten(args, is_leaf=lambda x: x is None)
    sizes = {x.shape[a] for x, a in zip(flat_args, flat_axes) if a is not None}
    if len(sizes) != 1:
        errs.fail(f"inconsistent batch sizes {sorted(sizes)}{' (' + label + ')' if label else ''}")
        return
    (size,) = sizes
    batched = eqx.filter_jit(eqx.filter_vmap(fn, in_axes=tuple(axes)))(*args)
    ref = _loop_reference(fn_jit, flat_args, flat_axes, treedef, size)
    errs.compare(eqx.filter(batched, eqx.is_array), ref, rtol, atol, label)


def _leaf_precision(fn, args) -> tuple[Precision, str]:
    try:
        return choose_precision(fn, args)
    except Exception:  # noqa: BLE001
        return PRECISIONS["float32"], ""


def _batch_leaf(x: Any, size: int, axis: int, rng: np.random.RandomState) -> Any:
    """`size` *different* versions of `x` (element 0 is `x`), stacked along `axis`.

    Floats and complexes are perturbed; integers are cycled through
    `[min(x.min(), 0), max(x.max(), 1)]` (so indices stay in the range the example
    uses); booleans alternate."""
    x = jnp.asarray(x)
    dtype = x.dtype
    if _is_inexact(x):
        copies = [x] + [
            jnp.asarray(_np(x) + 0.1 * i * _normal(rng, x.shape, dtype), dtype)
            for i in range(1, size)
        ]
    elif jnp.issubdtype(dtype, jnp.bool_):
        copies = [x if i % 2 == 0 else ~x for i in range(size)]
    elif jnp.issubdtype(dtype, jnp.integer):
        v = np.asarray(x).astype(np.int64)
        lo = min(int(v.min()) if v.size else 0, 0)
        hi = max(int(v.max()) if v.size else 1, 1)
        copies = [jnp.asarray(lo + (v - lo + i) % (hi - lo + 1), dtype) for i in range(size)]
    else:
        copies = [x] * size
    return jnp.stack(copies, axis=axis)


def _axis_cases(flat: list) -> list[tuple[str, tuple]]:
    """Per-leaf batch axes to try: all on axis 0, all on the last axis, mixed axes
    per argument (argument `j` on axis `j`, and reversed), and each argument alone
    (even-numbered ones on their last axis, odd-numbered ones on axis 0)."""
    n = len(flat)
    nd = [jnp.ndim(x) for x in flat]
    cases = [
        ("all on axis 0", tuple(0 for _ in flat)),
        ("all on the last axis", tuple(nd)),
        ("mixed axes", tuple(j % (nd[j] + 1) for j in range(n))),
        ("mixed axes, reversed", tuple((n - 1 - j) % (nd[j] + 1) for j in range(n))),
    ]
    if n > 1:
        for j in range(n):
            ax = nd[j] if j % 2 == 0 else 0
            cases.append((f"only argument {j}", tuple(ax if k == j else None for k in range(n))))
    seen, out = set(), []
    for label, axes in cases:
        if axes not in seen:
            seen.add(axes)
            out.append((f"{label} {axes}", axes))
    return out


def _build_batch(flat: list, axes: tuple, size: int, rng) -> list:
    return [x if ax is None else _batch_leaf(x, size, ax, rng) for x, ax in zip(flat, axes)]


def _run_vmap_cases(name: str, fn, args, batch_size, seed, rtol, atol, *, max_cases: int | None = None,
                    precision_fn=None, case_filter: tuple[str, ...] | None = None) -> CheckResult:
    """vmap of `fn` over batches built from `args`, for every case of `_axis_cases`,
    against a loop."""
    flat, treedef = jtu.tree_flatten(args)
    if not flat:
        return _skip(name, "no array arguments to batch")
    precision, note = _leaf_precision(precision_fn or fn, args)
    r, a = _tol(rtol, precision.rtol), _tol(atol, precision.atol)
    rng = np.random.RandomState(seed)
    fn_jit = jax.jit(fn)
    errs = _Errors()
    cases = _axis_cases(flat)
    if case_filter is not None:
        cases = [c for c in cases if c[0].startswith(case_filter)]
    cases = cases[:max_cases]
    for label, axes in cases:
        batched = _build_batch(flat, axes, batch_size, rng)
        b_args = jtu.tree_unflatten(treedef, batched)
        b_axes = jtu.tree_unflatten(treedef, list(axes))
        try:
            _vmap_case(fn, fn_jit, b_args, b_axes, errs, r, a, label)
        except Exception as e:  # noqa: BLE001 -- a broken rule is a failed case
            errs.fail(f"{label}: {_first_line(e)}")
    res = errs.result(name, r, a, precision, note, "vmap disagrees with a loop over the batch")
    extra = f"{len(cases)} batching case{'s' if len(cases) != 1 else ''}"
    return dataclasses.replace(res, message=f"{extra}; {res.message}" if res.message else extra)


# ---------------------------------------------------------------------------------------
# Transpose


def _linear_args(fn, ref, args, rng, precision) -> dict[int, tuple[Callable, Callable]]:
    """The inexact arguments `ref` is (numerically) linear in, the others held fixed,
    each mapped to `(jit(ref_i), fn_i)`: the jitted reference and `fn` as functions of
    that argument."""
    out = {}
    for i, x in enumerate(args):
        if not jtu.tree_leaves(x) or not all(_is_inexact(l) for l in jtu.tree_leaves(x)):
            continue

        def f_i(z, i=i):
            return fn(*args[:i], z, *args[i + 1 :])

        def ref_i(z, i=i):
            return ref(*args[:i], z, *args[i + 1 :])

        u, v = _random_like(rng, x), _random_like(rng, x)
        jf = jax.jit(ref_i)
        try:
            lhs = jf(jtu.tree_map(lambda p, q: 2 * p - 3 * q, u, v))
            fu, fv = jf(u), jf(v)
        except Exception:  # noqa: BLE001 -- a broken primitive is reported elsewhere
            continue
        if not jtu.tree_leaves(lhs):
            continue
        rhs = jtu.tree_map(lambda p, q: 2 * p - 3 * q, fu, fv)
        probe = _Errors()
        lin_rtol = min(0.1, 100 * precision.rtol + 1e3 * precision.unit)
        if probe.compare(lhs, rhs, lin_rtol, 100 * precision.atol):
            out[i] = (jf, f_i)
    return out


def _transpose_probes(jf: Callable, f: Callable, primal: Any, rng, errs: _Errors, r, a, unit, label) -> None:
    """The dot-product test `<A x, y> = <x, Aᵀ y>` for the linear map `A = jf`, with
    `Aᵀ = jax.linear_transpose(f)`, for `_PROBES` random pairs."""
    jt = jax.jit(lambda y: jax.linear_transpose(f, primal)(y)[0])
    for k in range(_PROBES):
        x = _random_like(rng, primal)
        fx = jf(x)
        y = _random_like(rng, fx)
        xt = jt(y)
        lhs, rhs = _rdot(fx, y), _rdot(x, xt)
        n_in, n_out = real_size(x), real_size(fx)
        scale = _norm(fx) * _norm(y) / math.sqrt(n_out) + _norm(x) * _norm(xt) / math.sqrt(n_in)
        # rounding of the two sums grows like sqrt(n) relative to that scale
        allowed = a + (r + 8 * unit * math.sqrt(max(n_in, n_out))) * scale
        errs.scalar(abs(lhs - rhs), scale, allowed,
                    f"{label}, probe {k}: <A x, y> = {lhs:.6g}, <x, Aᵀ y> = {rhs:.6g}")


# ---------------------------------------------------------------------------------------
# Running a check in float64 (falling back to the native dtype)


def _entry(name: str, x64: bool, args: tuple, body: Callable[[tuple], CheckResult]) -> CheckResult:
    first_error = None
    if x64:
        try:
            with _x64_context(True):
                return body(_cast_up(args))
        except Exception as e:  # noqa: BLE001 -- fall back to native precision
            first_error = e
    try:
        result = body(args)
    except Exception as e:  # noqa: BLE001 -- a missing/broken rule is a failed entry
        return _error_result(name, e)
    if first_error is not None:
        note = f"(float64 run failed: {_first_line(first_error)[:200]}; ran in the native dtype)"
        result = dataclasses.replace(result, message=(result.message + " " + note).strip())
    return result


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or getattr(fn, "name", None) or repr(fn)


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
    to every floating-point or complex array leaf of `args` (everything else is held
    fixed), along a random tangent (complex for complex leaves); only the
    floating-point/complex array leaves of the output are compared. Both sides run
    under `jax.jit`.

    The tolerances are those of the **least precise floating dtype the computation
    runs in**, read from its jaxpr (so checking in float64 a function that computes
    in float32 inside uses float32 tolerances). The check passes iff, elementwise,
    `|jvp - fd| <= atol + rtol (|fd| + max|fd| / 10) + noise`, where `noise` allows
    for the rounding of `f(x ± eps t)` (`4 u |f| / eps`, `u` the unit roundoff).

    **Arguments:**

    - `fn`: the function to check.
    - `*args`: example arguments.
    - `eps`: the finite-difference step (default: `2**-20` in float64, `2**-10` in
      float32, `2**-5` in float16, `2**-3` in bfloat16). The step is taken relative
      to `max(1, |x|)` elementwise.
    - `rtol`, `atol`: defaults `1e-5, 1e-12` (float64), `2e-3, 1e-7` (float32),
      `3e-2, 1e-4` (float16), `8e-2, 1e-3` (bfloat16).
    - `x64`: if `True` (the default), cast floating inputs up to float64 and run both
      sides inside `jax.enable_x64(True)`, so the finite differences are accurate. If
      `fn` fails in float64, the check re-runs in the inputs' own dtype (and says so
      in the result's `message`).
    - `seed`: seeds the random tangent.
    - `raise_on_failure`: raise [`CheckFailure`][] instead of returning a failing report.

    **Returns:**

    A [`CheckReport`][] with one result, `"jvp"` (`"skipped"` if `args` has no
    floating-point leaves).
    """
    result = _entry("jvp", x64, args, lambda a: _run_jvp(fn, a, seed, eps, rtol, atol))
    report = CheckReport(f"check_jvp({_name(fn)})", {"jvp": result})
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
    `Re <c, J t>` (with `J t` by central finite differences) must equal `Re <Jᵀ c, t>`
    (with `Jᵀ c` from `jax.vjp`) for 4 random tangents `t` and cotangents `c`
    (complex for complex leaves; `<a, b> = Σ a·b` without conjugation, the pairing
    JAX's transposes satisfy).

    Each error is measured relative to `|Jᵀc|·|t|/√n_in + |c|·|Jt|/√n_out`, the typical
    size of a random projection, so a wrong VJP is caught equally at every size.
    Arguments, tolerances and float64 handling are as for [`check_jvp`][].

    **Returns:**

    A [`CheckReport`][] with one result, `"vjp"`.
    """
    result = _entry("vjp", x64, args, lambda a: _run_vjp(fn, a, seed, eps, rtol, atol))
    report = CheckReport(f"check_vjp({_name(fn)})", {"vjp": result})
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
    - `rtol`, `atol`: the check passes iff `|batched - loop| <= atol + rtol (|loop| +
      max|loop| / 10)` elementwise. Defaults from the least precise floating dtype
      computed in: `1e-10, 1e-13` (float64), `1e-5, 1e-7` (float32), `4e-3, 1e-4`
      (float16), `3e-2, 1e-3` (bfloat16).
    - `raise_on_failure`: raise [`CheckFailure`][] instead of returning a failing report.

    **Returns:**

    A [`CheckReport`][] with one result, `"vmap"` (`"skipped"` if `in_axes` maps no
    array).
    """
    axes = _resolve_axes(in_axes, args)
    flat_axes = jtu.tree_leaves(axes, is_leaf=lambda x: x is None)
    if all(a is None for a in flat_axes):
        result = _skip("vmap", "in_axes maps no array: nothing is batched")
    else:
        flat_args, treedef = jtu.tree_flatten(args, is_leaf=lambda x: x is None)
        sliced = [x if a is None else jnp.take(x, 0, axis=a) for x, a in zip(flat_args, flat_axes)]
        precision, note = _leaf_precision(fn, jtu.tree_unflatten(treedef, sliced)) if all(
            a is None or (eqx.is_array(x) and x.shape[a] > 0) for x, a in zip(flat_args, flat_axes)
        ) else (PRECISIONS["float32"], "")
        r, t = _tol(rtol, precision.rtol), _tol(atol, precision.atol)
        errs = _Errors()
        try:
            _vmap_case(fn, eqx.filter_jit(fn), args, axes, errs, r, t, "")
            result = errs.result("vmap", r, t, precision, note, "vmap disagrees with a loop over the batch")
        except Exception as e:  # noqa: BLE001
            result = _error_result("vmap", e, precision.name)
    report = CheckReport(f"check_vmap({_name(fn)})", {"vmap": result})
    return report.raise_if_failed() if raise_on_failure else report


def _has_batching_rule(prim) -> bool:
    for table_name in ("fancy_primitive_batchers", "axis_primitive_batchers", "primitive_batchers"):
        try:
            if prim in getattr(_batching, table_name, {}):
                return True
        except TypeError:  # a write-only proxy (newer JAX's primitive_batchers)
            continue
    return False


def check_primitive(
    op: Primitive | jax.extend.core.Primitive,
    *example_args: Any,
    params: Mapping[str, Any] | None = None,
    batch_size: int = 3,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    x64: bool = True,
    seed: int = 0,
    skip: Iterable[str] = (),
    raise_on_failure: bool = False,
    **unexpected: Any,
) -> CheckReport:
    """Check every rule of a primitive on example arguments, each under `jax.jit`.
    A missing or broken rule (one that raises) is a failed entry, never an exception.

    - `"lowering"`: `jax.jit` of the primitive (abstract eval + lowering) against a
      reference evaluated without it: `impl` for a `define_primitive` op with a
      `lowering=` for this platform; the eager `impl` rule for a raw primitive.
      Structure, shapes and dtypes must be equal; values agree to the lowering
      tolerances. Runs in the arguments' own dtype. Skipped for a `define_primitive`
      op without a lowering for this platform (its HLO is `impl`'s).
    - `"jvp"`: the JVP rule against central finite differences (as [`check_jvp`][]).
    - `"vjp"`: reverse mode by the dot-product test against finite differences (as
      [`check_vjp`][]); this exercises the JVP rule's linearisation and any transpose
      rules it reaches.
    - `"transpose"`: for every argument the primitive is linear in (tested
      numerically: `f(2u - 3v) = 2 f(u) - 3 f(v)`), the transpose rule by the
      dot-product test `<A x, y> = <x, Aᵀ y>` with `Aᵀ` from `jax.linear_transpose`.
      A raw primitive that is linear in an argument but has no transpose rule fails
      ("missing"). Skipped if the primitive is linear in no argument, or was defined
      with `transpose=None`.
    - `"vmap"`: the batching rule against a loop. The batch is **built here**, with
      `batch_size` different values per argument (floats perturbed, integers cycled,
      booleans flipped), for: all arguments on axis 0; all on the last axis; mixed
      axes per argument (argument `j` on axis `j`, and reversed); each argument alone
      on its first and its last axis.
    - `"vmap_of_jvp"`, `"jvp_of_vmap"`: `vmap(jvp(op))` and `jvp(vmap(op))` against a
      loop of `jvp(op)` (all arguments on axis 0, and mixed axes).
    - `"vmap_of_transpose"`: `vmap(linear_transpose(op))` against a loop, for every
      argument the primitive is linear in.

    Differentiation checks are skipped for `differentiable=False` primitives; a raw
    primitive without a JVP rule fails them ("missing") unless they are in `skip`.

    **Arguments:**

    - `op`: a [`Primitive`][] from [`define_primitive`][], or a raw
      `jax.extend.core.Primitive` (bound with `op.bind`; one made by
      `define_primitive` is recognised).
    - `*example_args`: example positional arguments (PyTrees of arrays for a
      `define_primitive` op).
    - `params`: the primitive's static keyword parameters, as a dict (for a raw
      primitive met in a jaxpr: `params=eqn.params`). They are kept apart from the
      checker's own options, so a primitive may have a parameter called `eps`.
    - `batch_size`: the batch size of the batching checks.
    - `eps`, `rtol`, `atol`, `x64`, `seed`: as for [`check_jvp`][]; by default every
      check takes its tolerances from the least precise floating dtype computed in.
    - `skip`: names of checks not to run (reported as skipped), for rules a primitive
      lacks by design.
    - `raise_on_failure`: raise [`CheckFailure`][] instead of returning a failing report.

    **Returns:**

    A [`CheckReport`][] with results `"lowering"`, `"jvp"`, `"vjp"`, `"transpose"`,
    `"vmap"`, `"vmap_of_jvp"`, `"jvp_of_vmap"` and `"vmap_of_transpose"`.
    """
    if unexpected:
        shown = ", ".join(f"{k}={v!r}" for k, v in unexpected.items())
        raise TypeError(
            f"check_primitive got unexpected keyword argument(s) {shown}. A primitive's "
            f"own parameters are passed as a dict: params={dict(unexpected)!r} (the "
            "checker's options eps, rtol, atol, x64, seed, batch_size, skip stay "
            "keyword arguments)."
        )
    params = dict(params or {})
    skip = set(skip)
    unknown = skip - set(_CHECKS)
    if unknown:
        raise ValueError(f"unknown check name(s) in skip: {sorted(unknown)}; known: {list(_CHECKS)}")
    if isinstance(op, jax.extend.core.Primitive) and op in _DEFINED:
        op = _DEFINED[op]
    if isinstance(op, Primitive):
        prim = op.primitive
        name = op.name
        differentiable = op.differentiable
        transpose_note = None if op.linear_transpose else "defined with transpose=None"
        lowering = {p: f for p, f in op.lowering.items() if p in _platforms()}
        fn = lambda *a: op(*a, **params)
        impl = op.impl
        # With a lowering on this platform, the op computes with it: every check that
        # needs a reference value takes it from impl, so that a wrong lowering fails
        # "lowering" only, and a wrong rule fails its own check only.
        ref = (lambda *a: impl(*a, **params)) if lowering else fn
    elif isinstance(op, jax.extend.core.Primitive):
        prim = op
        name = op.name
        differentiable = True
        transpose_note = None
        lowering = None
        fn = lambda *a: op.bind(*a, **params)
        impl = None
        ref = fn
    else:
        raise TypeError(f"check_primitive expects a primitive, got {op!r}")
    args = tuple(
        jtu.tree_map(lambda x: x if isinstance(x, jax.Array) else jnp.asarray(x), a)
        for a in example_args
    )
    results: dict[str, CheckResult] = {}
    has_float = any(_is_inexact(x) for x in jtu.tree_leaves(args))

    def run(check: str, x64_: bool, body: Callable[[tuple], CheckResult], *, why: str | None = None) -> None:
        if check in skip:
            results[check] = _skip(check, "skipped on request (skip=)")
        elif why is not None:
            results[check] = _skip(check, why)
        else:
            results[check] = _entry(check, x64_, args, body)

    # ---- lowering ----
    def lowering_body(a):
        precision, note = _leaf_precision(fn, a)
        r = _tol(rtol, precision.lowering_rtol)
        t = _tol(atol, precision.lowering_atol)
        got = jax.jit(fn)(*a)
        if impl is not None:
            ref = impl(*a, **params)
            what = "impl"
        else:
            ref = prim.impl(*a, **params)
            what = "the eager impl rule"
        errs = _Errors()
        got_l, got_t = jtu.tree_flatten(got)
        ref_l, ref_t = jtu.tree_flatten(ref)
        if got_t != ref_t and not (len(got_l) == len(ref_l) and impl is None):
            errs.fail(f"jit returns structure {got_t}, {what} {ref_t}")
        else:
            for i, (g, rr) in enumerate(zip(got_l, ref_l)):
                if np.shape(g) != np.shape(rr) or jnp.result_type(g) != jnp.result_type(rr):
                    errs.fail(
                        f"output {i}: jit gives {jnp.result_type(g).name}{list(np.shape(g))}, "
                        f"{what} {jnp.result_type(rr).name}{list(np.shape(rr))}"
                    )
            if errs.ok:
                errs.compare(got_l, ref_l, r, t)
        note = f"{note}; " if note else ""
        platform = jax.default_backend()
        return errs.result("lowering", r, t, precision, f"{note}jit on {platform} vs {what}",
                           "the compiled primitive disagrees with the reference")

    lowering_why = None
    if lowering is not None and not lowering:
        lowering_why = f"no lowering= for platform {jax.default_backend()!r}: jit lowers impl itself"
    run("lowering", False, lowering_body, why=lowering_why)

    # ---- differentiation ----
    diff_why = None
    if not differentiable:
        diff_why = "not differentiable by design (differentiable=False)"
    elif not has_float:
        diff_why = "no floating-point inputs: nothing to differentiate"
    jvp_missing = impl is None and prim not in ad.primitive_jvps
    for check, runner, offset in (("jvp", _run_jvp, 0), ("vjp", _run_vjp, 1)):
        if jvp_missing and diff_why is None and check not in skip:
            results[check] = CheckResult(
                check, "failed",
                message=f"missing: no JVP rule registered for {name!r} (ad.primitive_jvps)",
            )
            continue
        run(check, x64, lambda a, runner=runner, offset=offset: runner(fn, a, seed + offset, eps, rtol, atol, ref),
            why=diff_why)

    # ---- transpose ----
    linear_cache: dict[Any, dict[int, Callable]] = {}

    def linear_in(a) -> tuple[dict[int, Callable], Precision]:
        precision, _ = _leaf_precision(fn, a)
        key = tuple(jnp.result_type(x).name for x in jtu.tree_leaves(a))
        if key not in linear_cache:
            linear_cache[key] = _linear_args(fn, ref, a, np.random.RandomState(seed + 2), precision)
        return linear_cache[key], precision

    def transpose_body(a):
        lin, precision = linear_in(a)
        if not lin:
            return _skip("transpose", "not linear in any argument")
        if impl is None and prim not in ad.primitive_transposes:
            return CheckResult(
                "transpose", "failed", dtype=precision.name,
                message=f"missing: linear in argument(s) {sorted(lin)} but no transpose rule "
                f"is registered for {name!r} (ad.primitive_transposes)",
            )
        r = _tol(rtol, 10 * precision.rtol)
        t = _tol(atol, 10 * precision.atol)
        errs = _Errors()
        rng = np.random.RandomState(seed + 3)
        for i, (jf, f_i) in lin.items():
            try:
                _transpose_probes(jf, f_i, a[i], rng, errs, r, t, precision.unit, f"argument {i}")
            except Exception as e:  # noqa: BLE001 -- a broken rule is a failed case
                errs.fail(f"argument {i}: {_first_line(e)}")
        return errs.result("transpose", r, t, precision, f"linear in argument(s) {sorted(lin)}",
                           "<A x, y> != <x, Aᵀ y>")

    run("transpose", x64, transpose_body, why=None if transpose_note is None else f"no transpose rule ({transpose_note})")

    # ---- batching ----
    vmap_missing = impl is None and not _has_batching_rule(prim)
    if vmap_missing and "vmap" not in skip:
        results["vmap"] = CheckResult(
            "vmap", "failed", message=f"missing: no batching rule registered for {name!r}"
        )
    else:
        run("vmap", x64, lambda a: _run_vmap_cases("vmap", fn, a, batch_size, seed + 4, rtol, atol))

    # ---- compositions ----
    diff_ok = results["jvp"].status != "skipped" or "jvp" in skip
    comp_why = diff_why or (None if diff_ok else results["jvp"].message)
    if comp_why is None and jvp_missing:
        comp_why = f"no JVP rule registered for {name!r} (see jvp)"

    def vmap_of_jvp_body(a):
        g = _Diff(fn, a)
        t = _random_like(np.random.RandomState(seed + 5), g.diff)

        def jvp_fn(d, t):
            return jax.jvp(g, (d,), (t,))

        return _run_vmap_cases("vmap_of_jvp", jvp_fn, (g.diff, t), batch_size, seed + 6, rtol, atol,
                               max_cases=1 if len(jtu.tree_leaves(g.diff)) == 1 else 3,
                               case_filter=("all on axis 0", "mixed axes ("))

    def jvp_of_vmap_body(a):
        flat, treedef = jtu.tree_flatten(a)
        rng = np.random.RandomState(seed + 7)
        precision, note = _leaf_precision(fn, a)
        r, t_ = _tol(rtol, precision.rtol), _tol(atol, precision.atol)
        errs = _Errors()
        cases = [c for c in _axis_cases(flat) if c[0].startswith(("all on axis 0", "mixed axes ("))]

        @jax.jit
        def one(args, tans):
            g = _Diff(fn, args)
            return jax.jvp(g, (g.diff,), (tans,))[1]

        for label, axes in cases:
            b_flat = _build_batch(flat, axes, batch_size, rng)
            b_args = jtu.tree_unflatten(treedef, b_flat)
            b_axes = tuple(jtu.tree_unflatten(treedef, list(axes)))
            g_b = _Diff(lambda *xs: jax.vmap(fn, in_axes=b_axes)(*xs), b_args)
            tans = _random_like(rng, g_b.diff)
            # the tangent of each inexact leaf is batched like that leaf
            t_axes = [ax for x, ax in zip(b_flat, axes) if _is_inexact(x)]
            t_flat = jtu.tree_leaves(tans)
            try:
                _, t_out = jax.jit(lambda d, tt: jax.jvp(g_b, (d,), (tt,)))(g_b.diff, tans)
                refs = []
                for i in range(batch_size):
                    sl = [x if ax is None else jnp.take(x, i, axis=ax) for x, ax in zip(b_flat, axes)]
                    t_sl = [v if ax is None else jnp.take(v, i, axis=ax) for v, ax in zip(t_flat, t_axes)]
                    s_args = jtu.tree_unflatten(treedef, sl)
                    s_tans = jtu.tree_unflatten(jtu.tree_structure(eqx.filter(s_args, _is_inexact)), t_sl)
                    refs.append(one(s_args, s_tans))
                ref = jtu.tree_map(lambda *xs: jnp.stack(xs), *refs)
                errs.compare(t_out, ref, r, t_, label)
            except Exception as e:  # noqa: BLE001 -- a broken rule is a failed case
                errs.fail(f"{label}: {_first_line(e)}")
        res = errs.result("jvp_of_vmap", r, t_, precision, note, "jvp of vmap disagrees with a loop of jvp")
        extra = f"{len(cases)} batching case{'s' if len(cases) != 1 else ''}"
        return dataclasses.replace(res, message=f"{extra}; {res.message}" if res.message else extra)

    run("vmap_of_jvp", x64, vmap_of_jvp_body, why=comp_why)
    run("jvp_of_vmap", x64, jvp_of_vmap_body, why=comp_why)

    def vmap_of_transpose_body(a):
        lin, precision = linear_in(a)
        if not lin:
            return _skip("vmap_of_transpose", "not linear in any argument")
        if impl is None and prim not in ad.primitive_transposes:
            return _skip("vmap_of_transpose", "no transpose rule (see transpose)")
        r, t_ = _tol(rtol, precision.rtol), _tol(atol, precision.atol)
        errs = _Errors()
        rng = np.random.RandomState(seed + 8)
        n_cases = 0
        for i in lin:

            def transposed(y, rest, i=i):
                full = rest[:i] + (a[i],) + rest[i:]

                def f_i(z):
                    return fn(*full[:i], z, *full[i + 1 :])

                return jax.linear_transpose(f_i, a[i])(y)[0]

            rest = a[:i] + a[i + 1 :]
            y = _random_like(rng, jax.eval_shape(lambda z: fn(*a[:i], z, *a[i + 1 :]), a[i]))
            res = _run_vmap_cases("vmap_of_transpose", transposed, (y, rest), batch_size, seed + 9 + i,
                                  r, t_, case_filter=("all on axis 0", "mixed axes ("))
            n_cases += 1
            if res.status == "failed":
                errs.fail(f"argument {i}: {res.message}")
            if res.max_abs_error is not None:
                errs.measured = True
                errs.max_abs = max(errs.max_abs, res.max_abs_error)
                errs.max_rel = max(errs.max_rel, res.max_rel_error or 0.0)
        return errs.result("vmap_of_transpose", r, t_, precision, f"linear in argument(s) {sorted(lin)}",
                           "vmap of the transpose disagrees with a loop")

    run("vmap_of_transpose", x64, vmap_of_transpose_body,
        why=None if transpose_note is None else f"no transpose rule ({transpose_note})")

    report = CheckReport(f"check_primitive({name!r})", {k: results[k] for k in _CHECKS if k in results})
    return report.raise_if_failed() if raise_on_failure else report
