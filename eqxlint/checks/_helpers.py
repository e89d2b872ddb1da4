"""Small helpers shared by rule modules: argument access (re-exported from `eqxlint.syntax.nodes`)
and the short form of a qualified name for messages (`eqxlint.semantics.tracing.short`)."""

from __future__ import annotations

from ..semantics.tracing import short as short  # noqa: F401
from ..syntax.nodes import is_false as is_false, is_true as is_true, keyword as keyword, positional as positional  # noqa: F401


def trace_reason(scope) -> str:
    """Why a function is traced, from the per-file `Scope.sites` (deprecated: a finding in traced
    code reports with `report_traced`, whose `{trace}` is the project's call chain). Kept until
    the rules that still import it are migrated."""
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
