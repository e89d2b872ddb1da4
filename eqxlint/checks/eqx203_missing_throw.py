"""EQX203 missing-throw: solves inside custom JVP/VJP/transpose rules without `throw=True`."""

from __future__ import annotations

import libcst as cst

from ..core.rule import SAFE, UNSAFE, Rule, RuleFix
from ._helpers import is_false, is_true, keyword, short

TANGENT_RULES = frozenset({"jvp", "vjp", "transpose"})
RULE_NAMES = {"jvp": "custom JVP rule", "vjp": "custom VJP rule", "transpose": "transpose rule"}


class MissingThrow(Rule):
    code = "EQX203"

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        if qn not in ctx.solvers:
            return
        kind = ctx.scope.in_ad_rule()
        if kind not in TANGENT_RULES:
            return
        arg = keyword(node, "throw")
        where = RULE_NAMES[kind]
        name = short(qn)
        if arg is None:
            if any(a.star == "**" for a in node.args):
                return  # throw may arrive through **kwargs: not decidable statically
            self.report(
                node,
                f"`{name}` inside a {where} without `throw=True`: a tangent or cotangent "
                "computation has no result channel, so a failed solve must raise rather than "
                "return garbage silently. Pass `throw=True` explicitly.",
                fix=RuleFix("Add `throw=True`", SAFE, replacements=[(node, _add_throw(node))]),
            )
        elif is_false(arg.value):
            self.report(
                arg,
                f"`{name}` inside a {where} with `throw=False`: a failed solve here returns "
                "garbage tangents with no result channel to report it. Use `throw=True`.",
                fix=RuleFix(
                    "Use `throw=True`", UNSAFE,
                    replacements=[(arg.value, cst.Name("True"))],
                ),
            )
        elif not is_true(arg.value):
            return  # throw=<expression>: decided at run time


def _add_throw(node: cst.Call) -> cst.Call:
    args = list(node.args)
    new = cst.Arg(
        keyword=cst.Name("throw"),
        value=cst.Name("True"),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )
    if not args:
        return node.with_changes(args=[new])
    last = args[-1]
    if isinstance(last.comma, cst.Comma):
        # multi-line call with a trailing comma: keep the layout
        new = new.with_changes(comma=last.comma)
        sep = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" ")
        )
        args[-1] = last.with_changes(comma=sep)
    else:
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return node.with_changes(args=[*args, new])
