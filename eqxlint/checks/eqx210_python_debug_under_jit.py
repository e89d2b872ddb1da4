"""EQX210 python-debug-under-jit: `breakpoint()`, `pdb.set_trace()`, `assert <traced>` and
`raise` under a traced condition, in traced code."""

from __future__ import annotations

import libcst as cst

from ..core.rule import UNSAFE, Rule, RuleFix

DEBUGGERS = frozenset(
    {"pdb.set_trace", "ipdb.set_trace", "pudb.set_trace", "pdb.post_mortem", "ipdb.post_mortem"}
)


class PythonDebugUnderJit(Rule):
    code = "EQX210"

    def _active(self, node) -> bool:
        """In a function (JAX never traces module code), outside `jax.ensure_compile_time_eval()`
        and tracer-guarded branches. Whether the function is traced is the project's call."""
        ctx = self.ctx
        return ctx.scope.function is not None and not ctx.values.is_quiet(node)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        qn = ctx.qualname(func)
        if qn == "breakpoint":
            if ctx.scope.lookup_def("breakpoint"):
                return
        elif qn not in DEBUGGERS:
            return
        if not self._active(node):
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
        if ctx.imports_module("equinox"):
            alt = " or run with `EQX_ON_ERROR=breakpoint` and `eqx.error_if`"
        else:
            alt = ""
        self.report_traced(
            node,
            f"`{ctx.code(func)}()` in traced code ({{trace}}): it stops once, at trace time, where "
            f"the arrays are abstract tracers with no values. Use `{jax}.debug.breakpoint()` "
            f"(stops at run time with the values){alt}.",
            fix=fix,
        )

    def _error_if(self) -> str:
        ctx = self.ctx
        if ctx.imports_module("equinox"):
            eqx = ctx.alias_for("equinox") or "eqx"
            return f"`x = {eqx}.error_if(x, bad, \"message\")`"
        return "`jax.experimental.checkify.check(ok, \"message\")` (with `checkify.checkify`)"

    def visit_Assert(self, node: cst.Assert) -> None:
        ctx = self.ctx
        if not self._active(node.test):
            return
        cond = ctx.values.truth(node.test)
        if not cond:
            return
        self.report_traced(
            node,
            "`assert` on a traced value in traced code ({trace}): `bool()` of a tracer raises a "
            "TracerBoolConversionError (and under `python -O` the check vanishes). Use "
            f"{self._error_if()}, which checks the run-time values; keep `assert` for static "
            "facts (`.shape`, `isinstance`).",
            cond=cond,
        )

    def visit_If(self, node: cst.If) -> None:
        ctx = self.ctx
        if not self._active(node.test):
            return
        raises = list(_direct_raises(node.body))
        if isinstance(node.orelse, cst.Else):  # `else: raise` is guarded by the same test
            raises += list(_direct_raises(node.orelse.body))
        if not raises:
            return
        cond = ctx.values.truth(node.test)
        if not cond:
            return
        test = " ".join(ctx.code(node.test).split())
        if len(test) > 60:
            test = test[:57] + "..."
        for r in raises:
            self.report_traced(
                r,
                f"`raise` guarded by a traced condition (`{test}`) in traced code ({{trace}}): the "
                "`if` cannot be decided while tracing and fails with a TracerBoolConversionError "
                f"instead of your message. Use {self._error_if()}, which raises at run time.",
                cond=cond,
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
