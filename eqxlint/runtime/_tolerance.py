"""Tolerances chosen from the floating-point dtypes a computation actually runs in."""

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.extend.core
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._primitive import _DEFINED, _split_params, _unflatten_args, _vmapped


@dataclasses.dataclass(frozen=True)
class Precision:
    """The tolerances of one precision.

    - `unit`: the unit roundoff `u` (half the machine epsilon).
    - `eps`: the finite-difference step (a power of two, so the realised step is exact).
    - `fd_rtol`, `fd_atol`: JVP/VJP against finite differences.
    - `rtol`, `atol`: comparisons of two evaluations of the same mathematics (vmap
      against a loop, compositions, the transpose dot-product test).
    - `lowering_rtol`, `lowering_atol`: a `lowering=` against `impl` (a different
      algorithm for the same result).
    """

    name: str
    unit: float
    eps: float
    fd_rtol: float
    fd_atol: float
    rtol: float
    atol: float
    lowering_rtol: float
    lowering_atol: float


PRECISIONS = {
    "float64": Precision("float64", 2.0**-53, 2.0**-20, 1e-5, 1e-12, 1e-10, 1e-13, 1e-8, 1e-12),
    "float32": Precision("float32", 2.0**-24, 2.0**-10, 2e-3, 1e-7, 1e-5, 1e-7, 1e-4, 1e-6),
    "float16": Precision("float16", 2.0**-11, 2.0**-5, 3e-2, 1e-4, 4e-3, 1e-4, 1e-2, 1e-3),
    "bfloat16": Precision("bfloat16", 2.0**-8, 2.0**-3, 8e-2, 1e-3, 3e-2, 1e-3, 5e-2, 1e-2),
}
# TensorFloat-32 (float32 matmuls on recent NVIDIA GPUs by default) has float16's 10-bit
# significand; TPUs compute default-precision float32 matmuls with bfloat16 passes.
PRECISIONS["tf32"] = dataclasses.replace(PRECISIONS["float16"], name="tf32")
_REDUCED_MATMUL = {"gpu": "tf32", "tpu": "bfloat16"}
_FULL_F32_NAMES = ("HIGHEST", "FLOAT32", "F32_F32_F32", "F64_F64_F64")


def precision_of(dtype: Any) -> Precision:
    """The [`Precision`][] of a floating or complex dtype (by its machine epsilon), or of
    a name in `PRECISIONS` ("tf32")."""
    if isinstance(dtype, str) and dtype in PRECISIONS:
        return PRECISIONS[dtype]
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        dtype = jnp.finfo(dtype).dtype
    eps = float(jnp.finfo(dtype).eps)
    if eps <= 2.0**-52:
        return PRECISIONS["float64"]
    if eps <= 2.0**-23:
        return PRECISIONS["float32"]
    if eps <= 2.0**-10:
        return PRECISIONS["float16"]
    return PRECISIONS["bfloat16"]


def _is_inexact_dtype(dtype: Any) -> bool:
    try:
        return jnp.issubdtype(dtype, jnp.inexact)
    except TypeError:  # extended dtypes (keys, float0)
        return False


def _platforms() -> set[str]:
    return {"cpu": {"cpu"}, "gpu": {"cuda", "rocm"}, "tpu": {"tpu"}}.get(
        jax.default_backend(), {jax.default_backend()}
    )


def reduced_matmul_precision(eqn: Any, backend: str) -> str | None:
    """The precision a float32 `dot_general`/`conv_general_dilated` really computes in on
    `backend` ("tf32" on GPU, "bfloat16" on TPU) when its `precision` is the default and
    `jax_default_matmul_precision` does not ask for full float32; `None` otherwise."""
    if eqn.primitive.name not in ("dot_general", "conv_general_dilated"):
        return None
    reduced = _REDUCED_MATMUL.get(backend)
    if reduced is None:
        return None
    for v in eqn.invars:
        dtype = getattr(getattr(v, "aval", None), "dtype", None)
        if dtype is None or jnp.dtype(dtype) not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.complex64)):
            return None
    precision = eqn.params.get("precision")
    given = precision if isinstance(precision, tuple) else (precision,)
    names = [str(getattr(p, "name", p)).upper() for p in given if p is not None]
    names = [n for n in names if n != "DEFAULT"]
    if not names:
        default = jax.config.jax_default_matmul_precision
        names = [] if default is None else [str(default).upper()]
    if not names:
        return reduced
    if all(any(full in n for full in _FULL_F32_NAMES) for n in names):
        return None
    if any("BF16" in n or "BFLOAT16" in n or n == "FASTEST" for n in names):
        return "bfloat16"
    if any("TF32" in n or "TENSORFLOAT32" in n or n == "HIGH" for n in names):
        return "tf32"  # HIGH: TF32 on GPU, 3 bfloat16 passes (about as precise) on TPU
    if any("F16" in n for n in names):
        return "float16"
    return reduced


def _walk(jaxpr: Any, dtypes: set, depth: int = 0) -> None:
    if depth > 32:
        return
    for v in list(jaxpr.invars) + list(jaxpr.constvars) + list(jaxpr.outvars):
        dtype = getattr(getattr(v, "aval", None), "dtype", None)
        if dtype is not None and _is_inexact_dtype(dtype):
            dtypes.add(jnp.dtype(dtype))
    for eqn in jaxpr.eqns:
        for v in list(eqn.invars) + list(eqn.outvars):
            dtype = getattr(getattr(v, "aval", None), "dtype", None)
            if dtype is not None and _is_inexact_dtype(dtype):
                dtypes.add(jnp.dtype(dtype))
        reduced = reduced_matmul_precision(eqn, jax.default_backend())
        if reduced is not None:
            dtypes.add(reduced)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            _walk(sub, dtypes, depth + 1)
        op = _DEFINED.get(eqn.primitive)
        if op is not None:
            # A define_primitive op hides its computation: look inside impl and the
            # lowering used on this platform.
            user, in_tree, levels = _split_params(eqn.params)
            fns = [op.impl] + [fn for p, fn in op.lowering.items() if p in _platforms()]
            avals = [v.aval for v in eqn.invars]
            for fn in fns:

                def flat(*leaves, fn=fn):
                    return jtu.tree_leaves(fn(*_unflatten_args(in_tree, leaves), **user))

                try:
                    sub = jax.make_jaxpr(_vmapped(flat, levels))(*avals)
                except Exception:  # noqa: BLE001 -- best effort only
                    continue
                _walk(sub.jaxpr, dtypes, depth + 1)


def computed_dtypes(fn: Callable[..., Any], args: tuple) -> set:
    """The floating/complex dtypes of every value in the jaxpr of `fn(*args)`, looking
    into sub-jaxprs and into the `impl` (and lowering) of `define_primitive` ops."""
    dtypes: set = set()
    jaxpr = eqx.filter_make_jaxpr(fn)(*args)[0]
    _walk(jaxpr.jaxpr, dtypes)
    return dtypes


def lowest_precision(dtypes: set) -> Precision | None:
    """The least precise of `dtypes` (`None` if empty)."""
    if not dtypes:
        return None
    return max((precision_of(d) for d in dtypes), key=lambda p: p.unit)


def choose_precision(fn: Callable[..., Any], args: tuple) -> tuple[Precision, str]:
    """The precision to check `fn(*args)` at: that of the least precise floating dtype
    it computes in (inputs and outputs included). Also returns a note for the report
    when that is lower than the inputs' precision."""
    leaves = [x for x in jtu.tree_leaves(args) if eqx.is_array(x) and _is_inexact_dtype(x.dtype)]
    inputs = lowest_precision({jnp.dtype(x.dtype) for x in leaves})
    try:
        computed = lowest_precision(computed_dtypes(fn, args))
    except Exception:  # noqa: BLE001 -- fall back to the inputs' dtype
        computed = None
    if computed is None:
        return inputs or PRECISIONS["float32"], ""
    if inputs is not None and computed.unit > inputs.unit:
        return computed, f"inputs {inputs.name}, computes in {computed.name}"
    return computed, ""


def real_size(tree: Any) -> int:
    """The number of real degrees of freedom of the array leaves of `tree`."""
    n = 0
    for x in jtu.tree_leaves(tree):
        size = int(np.prod(np.shape(x), dtype=np.int64))
        n += size * (2 if jnp.issubdtype(jnp.result_type(x.dtype), jnp.complexfloating) else 1)
    return max(n, 1)
