"""EQX110 python-control-on-traced: Python `if`/`while`/`for range`/`bool`/`int` on a tracer."""

from __future__ import annotations

import libcst as cst

from ..core.rule import Rule
from ..semantics import cond as C
from ..semantics.values import ARR, KEY, RAW


def _snippet(ctx, node, limit: int = 60) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PythonControlOnTraced(Rule):
    code = "EQX110"

    def _emit(self, node, kind: str, expr, cond=None) -> None:
        ctx = self.ctx
        values = ctx.values
        if ctx.scope.function is None or values.is_quiet(expr):
            return
        if cond is not None:
            pass
        elif kind in ("if", "while", "ifexp", "compif"):
            cond = values.truth(expr)
        else:
            v = values.of(expr)
            cond = v.cond if v.kind in (ARR, RAW, KEY) else None
        if not cond:
            return
        why = "{trace}"
        cond_text = _snippet(ctx, expr)
        if kind == "if":
            msg = (
                f"Python `if` on a traced value (`{cond_text}`) in traced code ({why}): a tracer has no "
                "concrete truth value, so this raises TracerBoolConversionError at trace time. "
                "Use `jnp.where(cond, a, b)` to select values, or `lax.cond(cond, true_fn, "
                "false_fn, *operands)` to select computations."
            )
        elif kind == "ifexp":
            msg = (
                f"Conditional expression on a traced value (`{cond_text}`) in traced code ({why}): it "
                "calls `bool()` on a tracer and raises TracerBoolConversionError. Use "
                "`jnp.where(cond, a, b)` (or `lax.cond`)."
            )
        elif kind == "compif":
            msg = (
                f"Comprehension filter on a traced value (`{cond_text}`) in traced code ({why}): it "
                "calls `bool()` on a tracer and raises TracerBoolConversionError; the number of "
                "kept elements cannot depend on data under JIT. Use a mask with `jnp.where`."
            )
        elif kind == "while":
            msg = (
                f"Python `while` whose condition depends on a traced value (`{cond_text}`) in traced "
                f"code ({why}): it raises TracerBoolConversionError at trace time. Use "
                "`lax.while_loop(cond_fun, body_fun, init_val)` (or `eqxi.while_loop` when it "
                "must be reverse-differentiated)."
            )
        elif kind == "range":
            msg = (
                f"`{cond_text}` with a traced bound in traced code ({why}): `range` needs a concrete "
                "int, so this raises ConcretizationTypeError (or retraces per value). Use "
                "`lax.fori_loop(lower, upper, body_fun, init_val)` for a traced bound, "
                "`lax.scan` for a fixed length, or derive the bound from `.shape` / a static argument."
            )
        elif kind == "minmax":
            name = ctx.code(node.func)
            msg = (
                f"Python `{name}(...)` on a traced value (`{cond_text}`) in traced code ({why}): it "
                "compares with `<`/`>` and calls `bool()` on the result, raising "
                f"TracerBoolConversionError. Use `jnp.{'maximum' if name == 'max' else 'minimum'}"
                "(a, b)`."
            )
        elif kind == "conv":
            name = ctx.code(node.func)
            static = (
                f"`static_argnums` / `{ctx.alias_for('equinox') or 'eqx'}.field(static=True)`"
                if ctx.imports_module("equinox") else "`static_argnames=` / `static_argnums=` of `jax.jit`"
            )
            msg = (
                f"`{name}(...)` of a traced value (`{cond_text}`) in traced code ({why}): converting a "
                "tracer to a Python scalar raises ConcretizationTypeError. Keep it an array "
                "(`jnp.asarray(x, dtype)` / `x.astype(...)`, `jnp.where` for choices), or make "
                f"the input static ({static})."
            )
        else:  # item
            attr = node.func.attr.value if isinstance(node.func, cst.Attribute) else "item"
            msg = (
                f"`.{attr}()` on a traced value (`{cond_text}`) in traced code ({why}): it needs a "
                "concrete value and raises ConcretizationTypeError under JIT. Keep the value as "
                "an array, or read it after the jitted call returns."
            )
        self.report_traced(node, msg, cond=cond)

    def visit_If(self, node: cst.If) -> None:
        if not _raise_only(self.ctx, node.body):  # `if traced: raise` is EQX210's
            self._emit(node, "if", node.test)

    def visit_While(self, node: cst.While) -> None:
        self._emit(node, "while", node.test)

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self._emit(node, "ifexp", node.test)

    def visit_CompIf(self, node: cst.CompIf) -> None:
        self._emit(node, "compif", node.test)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        pos = [a for a in node.args if a.keyword is None and not a.star]
        if isinstance(func, cst.Attribute) and func.attr.value in ("item", "tolist") and not node.args:
            if ctx.values.of(func.value).kind in (ARR, RAW):
                self._emit(node, "item", func.value)
            return
        if not isinstance(func, cst.Name) or ctx.scope.lookup_def(func.value):
            return
        qn = ctx.qualname(func)
        if qn in ("bool", "int", "float", "complex") and len(pos) == 1 and len(node.args) == 1:
            self._emit(node, "conv", pos[0].value)
        elif qn == "range":
            vals = [ctx.values.of(a.value) for a in pos]
            cond = C.join(*(v.cond for v in vals if v.kind in (ARR, RAW, KEY)))
            if cond:
                self._emit(node, "range", node, cond)
        elif qn in ("max", "min") and len(pos) >= 2 and len(pos) == len(node.args):
            vals = [ctx.values.of(a.value) for a in pos]
            cond = C.join(*(v.cond for v in vals if v.kind in (ARR, RAW, KEY)))
            if cond:
                self._emit(node, "minmax", pos[0].value, cond)


def _raise_only(ctx, body) -> bool:
    stmts = body.body if isinstance(body, cst.IndentedBlock) else [body]
    seen_raise = False
    for st in stmts:
        if not isinstance(st, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            return False
        for small in st.body:
            if isinstance(small, cst.Raise):
                seen_raise = True
                continue
            if not isinstance(small, cst.Pass) and not (
                isinstance(small, cst.Expr) and isinstance(small.value, cst.Call)
                and (ctx.qualname(small.value.func) or "").startswith(("warnings.", "logging."))
            ):
                return False
    return seen_raise
