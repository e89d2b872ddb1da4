"""EQX110 python-control-on-traced: Python `if`/`while`/`for range`/`bool`/`int` on a tracer."""

from __future__ import annotations

import libcst as cst

from ..core.rule import Rule
from ._flow import TaintAnalysis
from ._helpers import trace_reason


def _snippet(ctx, node, limit: int = 60) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PythonControlOnTraced(Rule):
    code = "EQX110"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self._pending = None

    def _analyse(self) -> dict:
        """Analyse every traced function of the file once, before the first report: a callee
        analysed from a caller further down the file needs its findings known up front."""
        ctx = self.ctx
        ta = TaintAnalysis(ctx)
        for scope in ctx.scopes:
            if scope.kind not in ("function", "lambda") or not scope.traced:
                continue
            parent = scope.parent.function if scope.parent is not None else None
            if parent is not None and parent.traced:
                continue  # analysed with its enclosing traced function (closure taint)
            if scope.in_ad_rule():
                continue  # custom JVP/VJP/primitive rules: arguments are not known tracers
            ta.run_function(scope)
        return dict(ta.findings)

    def _emit(self, node) -> None:
        if self._pending is None:
            self._pending = self._analyse()
        f = self._pending.pop(id(node), None)
        if f is None:
            return
        ctx = self.ctx
        why = trace_reason(ctx.scope)
        cond = _snippet(ctx, f.expr)
        if f.kind == "if":
            msg = (
                f"Python `if` on a traced value (`{cond}`) in traced code ({why}): a tracer has no "
                "concrete truth value, so this raises TracerBoolConversionError at trace time. "
                "Use `jnp.where(cond, a, b)` to select values, or `lax.cond(cond, true_fn, "
                "false_fn, *operands)` to select computations."
            )
        elif f.kind == "ifexp":
            msg = (
                f"Conditional expression on a traced value (`{cond}`) in traced code ({why}): it "
                "calls `bool()` on a tracer and raises TracerBoolConversionError. Use "
                "`jnp.where(cond, a, b)` (or `lax.cond`)."
            )
        elif f.kind == "compif":
            msg = (
                f"Comprehension filter on a traced value (`{cond}`) in traced code ({why}): it "
                "calls `bool()` on a tracer and raises TracerBoolConversionError; the number of "
                "kept elements cannot depend on data under JIT. Use a mask with `jnp.where`."
            )
        elif f.kind == "while":
            msg = (
                f"Python `while` whose condition depends on a traced value (`{cond}`) in traced "
                f"code ({why}): it raises TracerBoolConversionError at trace time. Use "
                "`lax.while_loop(cond_fun, body_fun, init_val)` (or `eqxi.while_loop` when it "
                "must be reverse-differentiated)."
            )
        elif f.kind == "range":
            msg = (
                f"`{cond}` with a traced bound in traced code ({why}): `range` needs a concrete "
                "int, so this raises ConcretizationTypeError (or retraces per value). Use "
                "`lax.fori_loop(lower, upper, body_fun, init_val)` for a traced bound, "
                "`lax.scan` for a fixed length, or derive the bound from `.shape` / a static argument."
            )
        elif f.kind == "minmax":
            name = ctx.code(node.func)
            msg = (
                f"Python `{name}(...)` on a traced value (`{cond}`) in traced code ({why}): it "
                "compares with `<`/`>` and calls `bool()` on the result, raising "
                f"TracerBoolConversionError. Use `jnp.{'maximum' if name == 'max' else 'minimum'}"
                "(a, b)`."
            )
        elif f.kind == "conv":
            name = ctx.code(node.func)
            msg = (
                f"`{name}(...)` of a traced value (`{cond}`) in traced code ({why}): converting a "
                "tracer to a Python scalar raises ConcretizationTypeError. Keep it an array "
                "(`jnp.asarray(x, dtype)` / `x.astype(...)`, `jnp.where` for choices), or make "
                "the input static (`static_argnums` / `eqx.field(static=True)`)."
            )
        else:  # item
            attr = node.func.attr.value if isinstance(node.func, cst.Attribute) else "item"
            msg = (
                f"`.{attr}()` on a traced value (`{cond}`) in traced code ({why}): it needs a "
                "concrete value and raises ConcretizationTypeError under JIT. Keep the value as "
                "an array, or read it after the jitted call returns."
            )
        self.report(node, msg)

    def visit_If(self, node: cst.If) -> None:
        self._emit(node)

    def visit_While(self, node: cst.While) -> None:
        self._emit(node)

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self._emit(node)

    def visit_Call(self, node: cst.Call) -> None:
        self._emit(node)

    def visit_CompIf(self, node: cst.CompIf) -> None:
        self._emit(node)
