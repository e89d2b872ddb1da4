"""EQX210 python-debug-under-jit: `breakpoint()`, `pdb.set_trace()`, `assert <traced>` and
`raise` under a traced condition, in traced code."""

from __future__ import annotations

import libcst as cst

from ..core.rule import UNSAFE, Rule, RuleFix
from . import _ad
from ._helpers import trace_reason

DEBUGGERS = frozenset(
    {"pdb.set_trace", "ipdb.set_trace", "pudb.set_trace", "pdb.post_mortem", "ipdb.post_mortem"}
)


class PythonDebugUnderJit(Rule):
    code = "EQX210"

    def visit_With(self, node: cst.With) -> None:  # records `with` blocks on ctx.stack
        pass

    def _active(self) -> bool:
        ctx = self.ctx
        return ctx.in_traced() and not ctx.scope.function.host and not _ad.in_compile_time_eval(ctx)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        qn = ctx.qualname(func)
        if qn == "breakpoint":
            if ctx.scope.lookup_def("breakpoint"):
                return
        elif qn not in DEBUGGERS:
            return
        if not self._active():
            return
        jax = ctx.alias_for("jax") or "jax"
        fix = None
        if not node.args:
            fix = RuleFix(
                f"Replace with `{jax}.debug.breakpoint()`",
                UNSAFE,  # stops at run time, on every call, instead of once at trace time
                replacements=[(node, f"{jax}.debug.breakpoint()")],
                imports=[("jax", None)] if ctx.aliases.get(jax) != "jax" else [],
            )
        self.report(
            node,
            f"`{ctx.code(func)}()` in traced code ({trace_reason(ctx.scope)}): it stops once, at "
            "trace time, where every array is an abstract tracer with no value. Use "
            f"`{jax}.debug.breakpoint()` (stops at run time with the values) or run with "
            "`EQX_ON_ERROR=breakpoint` and `eqx.error_if`.",
            fix=fix,
        )

    def visit_Assert(self, node: cst.Assert) -> None:
        ctx = self.ctx
        if not self._active():
            return
        names = _ad.traced_names(ctx, ctx.scope)
        if not _ad.is_traced_expr(ctx, node.test, names):
            return
        eqx = ctx.alias_for("equinox") or "eqx"
        self.report(
            node,
            f"`assert` on a traced value in traced code ({trace_reason(ctx.scope)}): "
            "`bool()` of a tracer raises a TracerBoolConversionError (and under `python -O` the "
            f"check vanishes). Use `x = {eqx}.error_if(x, jnp.logical_not(cond), \"message\")`, "
            "which checks the run-time values; keep `assert` for static facts (`.shape`, "
            "`isinstance`).",
        )

    def visit_If(self, node: cst.If) -> None:
        ctx = self.ctx
        if not self._active():
            return
        names = _ad.traced_names(ctx, ctx.scope)
        if not _ad.is_traced_expr(ctx, node.test, names):
            return
        raises = list(_direct_raises(node.body))
        if isinstance(node.orelse, cst.Else):  # `else: raise` is guarded by the same test
            raises += list(_direct_raises(node.orelse.body))
        if not raises:
            return
        eqx = ctx.alias_for("equinox") or "eqx"
        for r in raises:
            self.report(
                r,
                f"`raise` guarded by a traced condition (`{ctx.code(node.test)}`) in traced code "
                f"({trace_reason(ctx.scope)}): the `if` cannot be decided while tracing and "
                "fails with a concretization error instead of your message. Use "
                f"`x = {eqx}.error_if(x, cond, \"message\")` (or `eqx.branched_error_if`), which "
                "raises at run time.",
            )


def _direct_raises(block):
    """`raise` statements in a block, not inside nested functions/classes or nested `if`s
    with their own conditions (those are judged on their own)."""
    stack = list(getattr(block, "body", ()))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Raise):
                    yield small
        elif isinstance(stmt, (cst.With, cst.For, cst.While, cst.Try)):
            stack.extend(getattr(stmt.body, "body", ()))
