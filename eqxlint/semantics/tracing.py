"""How a transform traces the function it is given: which parameters hold tracers, whether
operations on constants are staged, whether reverse-mode AD runs through it; and the words
messages use for it.

A *wrap spec* records one application of a transform to a function (a decorator or a call such
as `jax.jit(f, static_argnums=1)`), as plain JSON so that it can travel in a file's facts to
the project phase: `{"t": qualname, "sn": static_argnums, "sa": static_argnames,
"ax": in_axes, "an": argnums}` (a list, or None when the source does not say it literally, or
"*" for the default). `traced_params` turns a spec and the callee's parameters into the set of
parameters that hold tracers; the same function serves one file and the whole project.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from . import names as S

def _int_list(expr):
    if expr is None:
        return []
    if isinstance(expr, cst.Integer):
        return [int(expr.evaluated_value)]
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) and isinstance(expr.expression, cst.Integer):
        return [-int(expr.expression.evaluated_value)]
    if isinstance(expr, (cst.Tuple, cst.List)):
        out = []
        for el in expr.elements:
            sub = _int_list(el.value)
            if sub is None:
                return None
            out.extend(sub)
        return out
    return None


def _str_list(expr):
    if expr is None:
        return []
    if isinstance(expr, cst.SimpleString):
        v = expr.evaluated_value
        return [v] if isinstance(v, str) else None
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        out = []
        for el in expr.elements:
            sub = _str_list(el.value)
            if sub is None:
                return None
            out.extend(sub)
        return out
    return None


def _axes(expr):
    """in_axes as a per-position list (0 mapped, None not mapped), "*" for all mapped, None
    when not literal."""
    if expr is None:
        return "*"
    if isinstance(expr, cst.Integer) or (isinstance(expr, cst.UnaryOperation) and isinstance(expr.expression, cst.Integer)):
        return "*"
    if isinstance(expr, cst.Name) and expr.value == "None":
        return []  # nothing mapped
    if isinstance(expr, (cst.Tuple, cst.List)):
        out = []
        for el in expr.elements:
            v = el.value
            out.append(None if isinstance(v, cst.Name) and v.value == "None" else 0)
        return out
    return None


def _kw(call, name):
    if isinstance(call, cst.Call):
        for a in call.args:
            if a.keyword is not None and a.keyword.value == name:
                return a.value
    return None


def wrap_spec(qn: str, call: Optional[cst.Call], extra_pos: Optional[list] = None) -> dict:
    """The spec of transform `qn` applied by `call` (the transform call itself, or the
    `functools.partial(qn, ...)` / `qn(...)` of a decorator; None for a bare decorator).
    `extra_pos`: positional arguments after the function (`jax.vmap(f, in_axes)`)."""
    spec: dict = {"t": qn}
    kind = S.TRANSFORM_KIND.get(qn)
    if kind in ("jit", "fjit"):
        sn = _int_list(_kw(call, "static_argnums"))
        if qn == "jax.pmap" and sn is not None:
            more = _int_list(_kw(call, "static_broadcasted_argnums"))
            sn = None if more is None else sn + more
        spec["sn"] = sn
        spec["sa"] = _str_list(_kw(call, "static_argnames"))
    if kind == "vmap":
        ax = _kw(call, "in_axes")
        if ax is None and extra_pos:
            ax = extra_pos[0]
        spec["ax"] = _axes(ax)
    if kind == "ad":
        spec["an"] = _int_list(_kw(call, "argnums"))
    return spec


def custom_spec(qn: str, call: Optional[cst.Call]) -> dict:
    """The spec of a custom-derivative decorator (`jax.custom_jvp`, `eqx.filter_custom_vjp`, ...)
    applied by `call` (the call itself, its `functools.partial`, or None for a bare decorator):
    `{"t": qualname, "nd": nondiff_argnums}` (a list, or None when not literal)."""
    return {"t": qn, "nd": _int_list(_kw(call, "nondiff_argnums"))}


def kind(spec_or_qn) -> Optional[str]:
    qn = spec_or_qn["t"] if isinstance(spec_or_qn, dict) else spec_or_qn
    return S.TRANSFORM_KIND.get(qn)


def staged(spec) -> bool:
    return kind(spec) in ("jit", "fjit")


def reverse(spec) -> bool:
    qn = spec["t"] if isinstance(spec, dict) else spec
    return qn in S.REVERSE_AD


def traced_params(spec: dict, params: list, skip: int = 0, skip_kw: frozenset = frozenset()) -> set:
    """Names of the parameters that hold tracers when `spec`'s transform traces a function with
    `params` (its parameter facts: `{"n": name, "k": annotation kind, "d": literal default,
    "a": used as an array, "kw": keyword-only, "st": "*"/"**" for star parameters}`), the first
    `skip` positional parameters and the keywords `skip_kw` being bound already (a bound
    method's `self`, `functools.partial` arguments)."""
    k = kind(spec)
    if k in (None, "ad", "pass"):
        return set()
    positional = [p for p in params if not p.get("kw") and not p.get("st")]
    # `partial(f, **kwargs)` (skip_kw holds "**") may bind any keyword-only parameter.
    keyword_only = [p for p in params if p.get("kw")] if "**" not in skip_kw else []
    positional = positional[skip:]
    arity = S.LAX_BODY_ARITY.get(spec["t"])
    if arity is not None:  # a lax loop passes its carry (and x) only: the rest keep their defaults
        positional, keyword_only = positional[:arity], []
    out: set = set()
    if k == "jit":
        sn, sa = spec.get("sn", []), spec.get("sa", [])
        if sn is None or sa is None:
            return set()  # which arguments are static is not known: claim nothing
        n = len(positional)
        static = {i % n if i < 0 and n else i for i in sn}
        for i, p in enumerate(positional):
            name = p["n"]
            if i in static or name in sa or name in skip_kw:
                continue
            if p.get("d") or p.get("k") == "callable":
                continue  # a defaulted flag or a function: a Python value in practice
            out.add(name)
        if spec["t"] in ("jax.jit", "jax.pmap"):
            for p in keyword_only:
                if p["n"] not in sa and p["n"] not in skip_kw and not p.get("d") and p.get("k") != "callable":
                    out.add(p["n"])
        return out
    if k == "vmap":
        axes = spec.get("ax", "*")
        if axes is None:
            return set()
        for i, p in enumerate(positional):
            if axes != "*" and (i >= len(axes) or axes[i] is None):
                continue
            if p["n"] in skip_kw or p.get("d") or p.get("k") == "callable":
                continue
            out.add(p["n"])
        return out
    # Equinox-filtered transforms: arrays are traced, everything else is static.
    for i, p in enumerate(positional + keyword_only):
        name = p["n"]
        if name in skip_kw:
            continue
        ak = p.get("k")
        if ak in ("array", "key", "module", "self") or (ak is None and p.get("a") and not p.get("d")):
            out.add(name)
    return out


# ---------------------------------------------------------------------------- words
_VERBS = {"jit": "jitted", "fjit": "jitted", "vmap": "vmapped", "fvmap": "vmapped", "ad": "differentiated"}


def short(qualname: str) -> str:
    return (
        qualname.replace("equinox.internal.", "eqxi.")
        .replace("equinox.", "eqx.")
        .replace("jax.random.", "jr.")
        .replace("jax.numpy.", "jnp.")
    )


def describe(qn: str) -> str:
    """"jitted by `jax.jit`", "the body of `jax.lax.scan`", ..."""
    if qn.startswith(("jax.lax.", "equinox.internal.")) and kind(qn) == "jit":
        return f"traced as the body of `{short(qn)}`"
    if qn in ("jax.checkpoint", "equinox.filter_checkpoint"):
        return f"rematerialised by `{short(qn)}`"
    if qn in ("jax.eval_shape", "equinox.filter_eval_shape", "jax.make_jaxpr", "equinox.filter_make_jaxpr"):
        return f"traced by `{short(qn)}`"
    verb = _VERBS.get(kind(qn) or "", "traced")
    return f"{verb} by `{short(qn)}`"
