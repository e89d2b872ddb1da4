"""EQX208 grad-through-while-loop: reverse-mode AD through `lax.while_loop`."""

from __future__ import annotations

import libcst as cst

from ..core.rule import Rule
from . import _ad
from ._helpers import keyword

WHILE = "jax.lax.while_loop"
FORI = "jax.lax.fori_loop"
EQXI_WHILE = "equinox.internal.while_loop"


class GradThroughWhileLoop(Rule):
    code = "EQX208"

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        if qn not in (WHILE, FORI, EQXI_WHILE):
            return
        reach = _ad.reverse_ad_of(ctx, ctx.scope)
        if reach is None:
            return
        why = reach[1]
        if qn in (WHILE, EQXI_WHILE) and _integer_only(_ad.arg_at(node, 2, "init_val")):
            return  # an integer carry has no tangent: reverse mode passes it through

        eqxi = ctx.alias_for("equinox.internal") or "eqxi"
        if qn == WHILE:
            what = "`lax.while_loop`"
        elif qn == EQXI_WHILE:
            kind = keyword(node, "kind")
            if kind is None or not (
                isinstance(kind.value, cst.SimpleString) and kind.value.evaluated_value == "lax"
            ):
                return  # "checkpointed" / "bounded" loops are reverse-differentiable
            what = f'`{eqxi}.while_loop(..., kind="lax")`'
        else:
            bounds = [_ad.arg_at(node, 0, "lower"), _ad.arg_at(node, 1, "upper")]
            names = _ad.traced_names(ctx, ctx.scope)
            if not any(b is not None and _ad.is_traced_expr(ctx, b, names) for b in bounds):
                return  # concrete bounds: fori_loop lowers to scan, which is differentiable
            what = "`lax.fori_loop` with traced bounds (it lowers to `lax.while_loop`)"
        self.report(
            node,
            f"{what} in code that reverse-mode AD differentiates ({why}): JAX raises "
            "\"Reverse-mode differentiation does not work for lax.while_loop\" at run time. "
            f"Give the loop a custom VJP (`eqx.filter_custom_vjp`, implicit differentiation via "
            f"`lax.custom_root`/`optimistix`), or use `{eqxi}.while_loop(..., max_steps=N, "
            'kind="checkpointed")` or a `lax.scan`/`fori_loop` with static bounds.',
        )


def _integer_only(expr) -> bool:
    """An init value made only of int/bool literals (a counter): its carry cannot hold tangents."""
    if expr is None:
        return False
    if isinstance(expr, (cst.Tuple, cst.List)):
        return bool(expr.elements) and all(_integer_only(e.value) for e in expr.elements)
    if isinstance(expr, cst.UnaryOperation):
        return _integer_only(expr.expression)
    if isinstance(expr, cst.Name):
        return expr.value in ("True", "False")
    return isinstance(expr, cst.Integer)
