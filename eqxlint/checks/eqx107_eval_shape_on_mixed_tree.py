"""EQX107 eval-shape-on-mixed-tree: `jax.eval_shape` over Modules / non-array leaves."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import UNSAFE, Rule, RuleFix
from ._modules import iter_local, own_fields


class EvalShapeOnMixedTree(Rule):
    code = "EQX107"

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.qualname(node.func) != "jax.eval_shape":
            return
        pos = [a for a in node.args if a.keyword is None and not a.star]
        fun = pos[0].value if pos else None
        if fun is None:
            for a in node.args:
                if a.keyword is not None and a.keyword.value == "fun":
                    fun = a.value
        if fun is None:
            return
        found = self._module_value(fun)
        reason = None
        requires = None
        if found:
            what, requires = found
            reason = f"the function is {what}"
        if reason is None:
            reason = self._function_reason(fun)
        if reason is None:
            for a in node.args:
                if a.value is fun or a.star:
                    continue
                if isinstance(a.value, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
                    reason = f"the argument `{ctx.code(a.value)}` is a string"
                    break
                m = self._module_value(a.value)
                if m:
                    reason = f"the argument `{ctx.code(a.value)}` is {m[0]}"
                    requires = m[1]
                    break
        if reason is None:
            return
        eqx = ctx.alias_for("equinox")
        imports = []
        if eqx is None:
            eqx, imports = "eqx", [("equinox", "eqx")]
        self.report(
            node,
            f"`jax.eval_shape` on a mixed PyTree: {reason}. jax.eval_shape requires every input "
            "and output leaf to be an array, so non-array leaves (Module config, callables, "
            f"strings) raise or are mangled. Use `{eqx}.filter_eval_shape`, which keeps "
            "non-array leaves static.",
            fix=RuleFix(
                f"Replace with `{eqx}.filter_eval_shape`",
                UNSAFE,  # Python scalars become static instead of weakly typed arrays
                replacements=[(node.func, f"{eqx}.filter_eval_shape")],
                imports=imports,
            ),
            requires=requires,
        )

    # ------------------------------------------------------------------ helpers
    def _module_value(self, expr) -> Optional[tuple]:
        """(description, requires) when `expr` evaluates to an eqx.Module instance."""
        ctx = self.ctx
        fn = ctx.scope.function
        if isinstance(expr, cst.Call):
            mt = ctx.module_type(expr.func)
            if mt and not mt.startswith("?"):
                return f"a `{ctx.code(expr.func)}` Module built inline", None
            return None
        if isinstance(expr, cst.Name) and (fn is None or fn.kind == "lambda"):
            for node, scope in ctx.assigns:
                if scope is ctx.module_scope and isinstance(node.value, cst.Call) and any(
                    isinstance(t.target, cst.Name) and t.target.value == expr.value for t in node.targets
                ):
                    mt = ctx.module_type(node.value.func)
                    if mt and not mt.startswith("?"):
                        return f"`{expr.value}`, a `{ctx.code(node.value.func)}` Module", None
            return None
        if isinstance(expr, cst.Name) and fn is not None and fn.kind == "function":
            name = expr.value
            p = fn.node.params
            for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                if prm.name.value == name:
                    if name == "self" and fn.cls is not None and ctx.is_module_class(fn.cls):
                        return f"`self`, an instance of Module `{fn.cls.name}`", None
                    mt = ctx.module_type(prm.annotation) if prm.annotation else None
                    if mt:
                        req = ("module_class", mt[1:]) if mt.startswith("?") else None
                        return f"`{name}`, a `{ctx.code(prm.annotation.annotation)}` Module", req
                    return None
            for node in iter_local(fn.node.body, (cst.Assign,)):
                if isinstance(node.value, cst.Call) and any(
                    isinstance(t.target, cst.Name) and t.target.value == name for t in node.targets
                ):
                    mt = ctx.module_type(node.value.func)
                    if mt and not mt.startswith("?"):
                        return f"`{name}`, a `{ctx.code(node.value.func)}` Module", None
            return None
        if (isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name)
                and expr.value.value == "self" and fn is not None and fn.cls is not None
                and ctx.is_module_class(fn.cls)):
            f = own_fields(ctx, fn.cls).get(expr.attr.value)
            if f is not None:
                mt = ctx.module_type(f.ann)
                if mt and not mt.startswith("?"):
                    return f"`self.{f.name}`, a `{ctx.code(f.ann.annotation)}` Module", None
        return None

    def _function_reason(self, fun) -> Optional[str]:
        ctx = self.ctx
        if isinstance(fun, cst.Lambda):
            bad = self._mixed_output(fun.body)
            if bad:
                return f"the lambda returns {bad}"
            return None
        for target in ctx.resolve_functions(fun, ctx.scope):
            if target.kind != "function":
                continue
            p = target.node.params
            for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                if prm.annotation is not None:
                    mt = ctx.module_type(prm.annotation)
                    if mt and not mt.startswith("?"):
                        return (f"`{target.name}` takes `{prm.name.value}: "
                                f"{ctx.code(prm.annotation.annotation)}`, a Module")
        return None

    def _mixed_output(self, expr) -> Optional[str]:
        ctx = self.ctx
        if isinstance(expr, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return f"the string {ctx.code(expr)}"
        if isinstance(expr, cst.Call):
            mt = ctx.module_type(expr.func)
            if mt and not mt.startswith("?"):
                return f"a `{ctx.code(expr.func)}` Module"
            return None
        if isinstance(expr, (cst.Tuple, cst.List)):
            for el in expr.elements:
                r = self._mixed_output(el.value)
                if r:
                    return r
        if isinstance(expr, cst.Dict):
            for el in expr.elements:
                if isinstance(el, cst.DictElement):
                    r = self._mixed_output(el.value)
                    if r:
                        return r
        return None
