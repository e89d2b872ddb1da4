"""Rule-family logic shared by the AD/callback rules (EQX201, EQX202, EQX207): which arguments of
a call are Equinox Modules, worded for messages. The meaning comes from the semantic layer
(`ctx.values`, `semantics.types`); this only words it and walks literal containers."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..semantics import types as TY
from ..semantics.values import BOX, INST


def module_value(ctx, expr) -> Optional[tuple]:
    """If `expr` holds an `eqx.Module` (or, for a tuple/list/dict literal or a name bound to a
    tuple, contains one): `(description, requires)`, `requires` being the project condition
    that decides Module-ness of a class from another file (None when this file decides)."""
    if type(expr) in (cst.Tuple, cst.List):
        for el in expr.elements:
            found = module_value(ctx, el.value)
            if found:
                return found
        return None
    if type(expr) is cst.Dict:
        for el in expr.elements:
            if type(el) is cst.DictElement:
                found = module_value(ctx, el.value)
                if found:
                    return found
        return None
    v = ctx.values.of(expr)
    if v.kind == BOX and v.items:
        for item in v.items:
            found = _instance(ctx, item, ctx.code(expr))
            if found:
                return found
        return None
    return _instance(ctx, v, ctx.code(expr))


def _instance(ctx, v, text: str) -> Optional[tuple]:
    if v.kind != INST or not v.ref:
        return None
    is_module, requires = TY.module_of_ref(ctx, v.ref)
    if is_module is False:
        return None
    cls = v.ref.lstrip("?").replace("equinox.", "eqx.")
    if not cls.startswith("eqx."):
        cls = cls.rsplit(".", 1)[-1]
    text = " ".join(text.split())
    if len(text) > 40:
        text = text[:37] + "..."
    return f"`{text}`, a `{cls}` Module", requires
