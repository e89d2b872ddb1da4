"""EQX209 print-under-jit: Python `print` in traced code."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..core.rule import UNSAFE, Rule, RuleFix


class PrintUnderJit(Rule):
    code = "EQX209"
    stack_types = (cst.If, cst.IfExp, cst.ExceptHandler)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Name) or func.value != "print":
            return
        ctx = self.ctx
        if ctx.qualname(func) != "print" or ctx.scope.lookup_def("print"):
            return  # a project function or an import named `print`
        if ctx.scope.function is None or self._deliberate(node):
            return
        jax = ctx.alias_for("jax") or "jax"
        values = ctx.values
        shows = ""
        if any(values.cond(a.value) for a in node.args):
            shows = " Arguments that are traced print as tracers, not as their values."
        self.report_traced(
            node,
            f"Python `print` in traced code ({{trace}}): it runs once per trace, while JAX traces "
            f"the function, not on every call.{shows} Use `{jax}.debug.print(...)`, which prints "
            "the run-time values on every call.",
            fix=self._fix(node, jax),
        )

    def _deliberate(self, node) -> bool:
        """Trace-time output on purpose: under `if debug:`/`if verbose:`/a testing flag, on the
        concrete branch of an `isinstance(x, jax.core.Tracer)` test, or in an `except` handler."""
        for anc in self.ctx.stack:
            if isinstance(anc, (cst.If, cst.IfExp)) and _FLAG.search(self.ctx.code(anc.test)):
                return True
            if isinstance(anc, cst.ExceptHandler):
                return True  # an error-path message, not debug output of values
        return False

    def _fix(self, node: cst.Call, jax: str) -> Optional[RuleFix]:
        args = node.args
        if any(a.keyword is not None or a.star for a in args):
            return None  # sep=/end=/file=/*args: not mechanical
        fmt_parts: list = []
        new_args: list = []
        kw_args: list = []
        for i, arg in enumerate(args):
            val = arg.value
            piece = None
            if isinstance(val, cst.SimpleString) and "b" not in val.prefix.lower():
                text = val.evaluated_value
                if not isinstance(text, str):
                    return None
                piece = text.replace("{", "{{").replace("}", "}}")
            elif isinstance(val, cst.FormattedString):
                piece = self._fstring(val, new_args, kw_args)
                if piece is None:
                    return None
            else:
                piece = "{}"
                new_args.append(val)
            fmt_parts.append(piece)
        fmt = " ".join(fmt_parts)
        code = f"{jax}.debug.print({_literal(fmt)}"
        for v in new_args:
            code += ", " + self.ctx.code(v)
        for name in kw_args:
            code += f", {name}={name}"
        code += ")"
        return RuleFix(
            f"Replace with `{jax}.debug.print`",
            UNSAFE,  # prints on every call instead of once per trace
            replacements=[(node, code)],
            imports=[("jax", None)] if self.ctx.aliases.get(jax) != "jax" else [],
        )

    def _fstring(self, val: cst.FormattedString, new_args: list, kw_args: list) -> Optional[str]:
        if val.prefix.lower() != "f":
            return None
        out = []
        for part in val.parts:
            if isinstance(part, cst.FormattedStringText):
                # Literal text of an f-string already doubles its braces, as str.format expects;
                # only its escapes need evaluating.
                try:
                    out.append(_unescape(part.value))
                except Exception:
                    return None
                continue
            if not isinstance(part, cst.FormattedStringExpression) or part.equal is not None:
                return None
            spec = ""
            if part.format_spec:
                if not all(isinstance(p, cst.FormattedStringText) for p in part.format_spec):
                    return None
                spec = ":" + "".join(p.value for p in part.format_spec)
            conv = f"!{part.conversion}" if part.conversion else ""
            expr = part.expression
            if isinstance(expr, cst.Name):
                if expr.value not in kw_args:
                    kw_args.append(expr.value)
                out.append("{" + expr.value + conv + spec + "}")
            else:
                return None
        return "".join(out)


_FLAG = re.compile(r"(?i)debug|verbose|testing|Tracer\b")


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def _literal(s: str) -> str:
    if '"' not in s:
        return '"' + s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'
    return repr(s)
