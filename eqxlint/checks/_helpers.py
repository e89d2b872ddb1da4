"""Small helpers shared by rule modules (message fragments, argument access)."""

from __future__ import annotations

from typing import Optional

import libcst as cst  # noqa: F401

from ..syntax.nodes import is_false as is_false, is_true as is_true, keyword as keyword, positional as positional  # noqa: F401


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
