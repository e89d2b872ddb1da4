"""EQX203 missing-throw: a tangent solve inside a custom JVP/VJP/transpose rule (or code a rule
calls, in any module) that turns errors off with `throw=False`."""

from __future__ import annotations

import libcst as cst

from ..core.rule import UNSAFE, Rule, RuleFix
from ._helpers import keyword, short

# The custom rules whose outputs are tangents or cotangents: no result channel there.
TANGENT_RULES = ("jvp", "vjp", "transpose")


class MissingThrow(Rule):
    code = "EQX203"

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        if qn not in ctx.solvers:
            return
        fn = ctx.scope.function
        if fn is None:
            return
        arg = keyword(node, "throw")
        if arg is None:
            return  # the solvers default to `throw=True`
        val = arg.value
        if ctx.values.of(val).lit is not False:
            return  # `throw=True`, or a user's own option passed through
        what = "`throw=False`" if type(val) is cst.Name and val.value == "False" else (
            f"`throw={ctx.code(val)}` (bound to `False`)"
        )
        self.report(
            arg,
            f"`{short(qn)}` with {what} in code that runs inside a custom JVP/VJP or transpose "
            "rule: a tangent or cotangent has no result channel, so when this solve fails (a "
            "singular operator, no convergence) nothing reports it and the derivative comes out "
            "wrong or non-finite, silently. Pass `throw=True` (the solvers' default), so that a "
            "failed solve raises.",
            fix=RuleFix("Use `throw=True`", UNSAFE, replacements=[(val, cst.Name("True"))]),
            requires=("rule", fn.ref, list(TANGENT_RULES)),
        )
