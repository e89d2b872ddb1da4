"""EQX208 grad-through-while-loop: reverse-mode AD through `lax.while_loop`."""

from __future__ import annotations

import libcst as cst

from ..core.rule import Rule
from ..semantics import cond as C
from ..semantics.values import ARR, KEY, RAW
from ._helpers import argument, keyword, positional

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
        fn = ctx.scope.function
        if fn is None:
            return
        if qn in (WHILE, EQXI_WHILE) and _integer_only(argument(node, 2, "init_val")):
            return  # an integer carry has no tangent: reverse mode passes it through
        requires = [("reverse", fn.ref)]
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
            # Concrete bounds: fori_loop lowers to scan, which is differentiable. Traced ones
            # (where the function is traced with them holding tracers) make it a while loop.
            vals = [ctx.values.of(b) for b in (argument(node, 0, "lower"), argument(node, 1, "upper")) if b is not None]
            cond = C.join(*(v.cond for v in vals if v.kind in (ARR, RAW, KEY)))
            if not cond:
                return
            requires.append(ctx.traced_requirement(cond))
            what = "`lax.fori_loop` with traced bounds (it lowers to `lax.while_loop`)"
        if ctx.imports_module("equinox"):
            fix = (
                f"Give the loop a custom VJP (`{ctx.alias_for('equinox') or 'eqx'}.filter_custom_vjp`, "
                "implicit differentiation via `lax.custom_root`/`optimistix`), or use "
                f'`{eqxi}.while_loop(..., max_steps=N, kind="checkpointed")` or a '
                "`lax.scan`/`fori_loop` with static bounds."
            )
        else:
            fix = (
                "Give the loop a custom VJP (`jax.custom_vjp`, implicit differentiation via "
                "`lax.custom_root`), or use a `lax.scan`/`fori_loop` with static bounds (a bounded "
                "number of steps)."
            )
        self.report(
            node,
            f"{what} in code that reverse-mode AD differentiates ({{trace}}): JAX raises "
            "\"Reverse-mode differentiation does not work for lax.while_loop\" when it "
            f"differentiates through it. {fix}",
            requires=tuple(requires),
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
