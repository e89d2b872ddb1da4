"""Small helpers shared by rule modules (message fragments, argument access)."""

from __future__ import annotations

from typing import Optional

import libcst as cst


def trace_reason(scope) -> str:
    """Why a function is traced, for messages: "`step` is traced by `jax.jit`"."""
    fn = scope.function if scope is not None else None
    if fn is None:
        return "traced code"
    seen = set()
    s = fn
    while s is not None and id(s) not in seen:
        seen.add(id(s))
        name = f"`{s.name}`" if s.name else "this lambda"
        for site in s.sites:
            if site.kind in ("decorator", "call") and site.qualname:
                return f"{name} is traced by `{short(site.qualname)}`"
            if site.kind == "rule":
                return f"{name} is a custom differentiation/primitive rule, traced by JAX"
        nxt = None
        for site in s.sites:
            if site.kind in ("callee", "nested") and site.via is not None:
                nxt = site.via
                break
        if nxt is None:
            break
        s = nxt
    return f"`{fn.name}` runs under a JAX trace" if fn.name else "this lambda runs under a JAX trace"


def short(qualname: str) -> str:
    return (
        qualname.replace("equinox.internal.", "eqxi.")
        .replace("equinox.", "eqx.")
        .replace("jax.random.", "jr.")
    )


def keyword(call: cst.Call, name: str) -> Optional[cst.Arg]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def positional(call: cst.Call) -> list:
    return [a for a in call.args if a.keyword is None and not a.star]


def is_true(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


def is_false(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"
