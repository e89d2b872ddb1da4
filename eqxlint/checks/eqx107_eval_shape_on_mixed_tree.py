"""EQX107 eval-shape-on-mixed-tree: `jax.eval_shape` over Modules / non-array leaves."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import UNSAFE, Rule, RuleFix
from ..semantics import types as TY
from ..semantics.values import INST, RAW


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
            found = self._function_reason(fun)
            if found:
                reason, requires = found
        if reason is None:
            for a in node.args:
                if a.value is fun or a.star:
                    continue
                if isinstance(a.value, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
                    reason = f"the argument `{_short(ctx, a.value)}` is a string"
                    break
                m = self._module_value(a.value)
                if m:
                    reason = f"the argument {m[0]}"
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
        """(description, requires) when `expr` evaluates to an eqx.Module instance: from its
        value (a Module built here, a parameter annotated with a Module class, `self` of a
        Module, a Module field), or a parameter to which callers pass one."""
        ctx = self.ctx
        v = ctx.values.of(expr)
        code = _short(ctx, expr)
        if v.kind == INST:
            is_mod, req = TY.module_of_ref(ctx, v.ref)
            if is_mod is False:
                return None
            cls = _cls_name(v.ref)
            if type(expr) is cst.Call:
                return f"a `{cls}` Module built inline", req
            return f"`{code}`, a `{cls}` Module", req
        if v.kind == RAW and v.src is not None and type(expr) is cst.Name:
            fn = ctx.scope.function
            if fn is not None and v.src in fn.params:
                return f"`{code}`, an Equinox Module passed by callers", ("param_module", fn.ref, [v.src])
        return None

    def _function_reason(self, fun) -> Optional[tuple]:
        """(reason, requires) when the function takes a Module (an annotated parameter) or the
        lambda visibly returns a non-array."""
        ctx = self.ctx
        if isinstance(fun, cst.Lambda):
            bad = self._mixed_output(fun.body)
            return (f"the lambda returns {bad[0]}", bad[1]) if bad else None
        for target in ctx.resolve_functions(fun, ctx.scope):
            if target.kind != "function":
                continue
            p = target.node.params
            for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                if prm.annotation is None:
                    continue
                kind, ref = TY.annotation_kind(ctx, prm.annotation)
                if kind != "class":
                    continue
                is_mod, req = TY.module_of_ref(ctx, ref)
                if is_mod is not False:
                    ann = " ".join(ctx.code(prm.annotation.annotation).split())
                    return f"`{target.name}` takes `{prm.name.value}: {ann}`, a Module", req
        return None

    def _mixed_output(self, expr) -> Optional[tuple]:
        ctx = self.ctx
        if isinstance(expr, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return f"the string {_short(ctx, expr)}", None
        if isinstance(expr, cst.Call):
            v = ctx.values.of(expr)
            if v.kind == INST:
                is_mod, req = TY.module_of_ref(ctx, v.ref)
                if is_mod is not False:
                    return f"a `{_cls_name(v.ref)}` Module", req
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


def _cls_name(ref) -> str:
    ref = (ref or "").lstrip("?")
    return ref.replace("equinox.", "eqx.") if ref.startswith("equinox.") else ref.rsplit(".", 1)[-1]


def _short(ctx, node, limit: int = 40) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
