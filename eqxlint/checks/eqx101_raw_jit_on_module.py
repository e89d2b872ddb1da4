"""EQX101 raw-jit-on-module: `jax.jit` applied to code that takes or is an Equinox Module."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import SAFE, UNSAFE, Rule, RuleFix
from ..semantics.values import INST
from ._helpers import positional

# Unannotated parameter names that, in a file using Equinox, hold a Module.
MODEL_NAMES = frozenset({"model", "module", "net", "network"})


class RawJitOnModule(Rule):
    code = "EQX101"

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self.ctx.scope
        for site in scope.sites:
            if site.kind != "decorator" or site.qualname != "jax.jit":
                continue
            dec: cst.Decorator = site.node
            reason, requires = self._why(scope)
            if reason is None:
                continue
            expr = dec.decorator
            jit_expr, fix_kind = expr, "plain"
            if isinstance(expr, cst.Call):
                fq = self.ctx.qualname(expr.func)
                if fq in ("functools.partial", "partial"):
                    jit_expr, fix_kind = expr.args[0].value, "partial"
                else:
                    jit_expr, fix_kind = expr.func, "called"
            self.report(
                jit_expr,
                self._message(f"`{scope.name}`", reason),
                fix=self._fix(dec, expr, fix_kind),
                requires=requires,
            )

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.qualname(node.func) != "jax.jit":
            return
        args = positional(node)
        target = args[0].value if args else None
        if target is None:
            for a in node.args:
                if a.keyword is not None and a.keyword.value == "fun":
                    target = a.value
        if target is None:
            return
        reason, requires, what = None, None, ctx.code(target)
        # jax.jit(jax.grad(loss)), jax.jit(jax.vmap(f)): look through nested transforms
        while isinstance(target, cst.Call) and ctx.qualname(target.func) in ctx.transforms and positional(target):
            target = positional(target)[0].value
        fns = ctx.resolve_functions(target, ctx.scope)
        if fns:
            reason, requires = self._why(fns[0])
            what = f"`{fns[0].name}`" if fns[0].name else "this lambda"
        else:
            reason = self._instance_reason(target)
            if isinstance(reason, tuple):
                reason, requires = reason
            what = f"`{what}`"
        if reason is None:
            return
        only_fun = len(node.args) == 1 and node.args[0].keyword is None
        fix = None
        if only_fun:
            fix = self._replace_jit(node.func, SAFE)
        self.report(node.func, self._message(what, reason), fix=fix, requires=requires)

    # ------------------------------------------------------------------
    def _why(self, scope):
        """Why the function handles Modules (a message fragment), or (None, None)."""
        ctx = self.ctx
        fn = scope
        if fn.cls is not None and ctx.is_module_class(fn.cls) and fn.params and fn.params[0] == "self":
            return f"is a method of the Module `{fn.cls.name}` (its `self` is a Module)", None
        params = _params(fn.node) if fn.kind == "function" else []
        for p in params:
            mt = ctx.module_type(p.annotation)
            if mt is None:
                continue
            if mt.startswith("?"):
                return (
                    f"takes `{p.name.value}: {ctx.code(p.annotation.annotation)}`, an Equinox Module",
                    ("module_class", mt[1:]),
                )
            return f"takes `{p.name.value}: {ctx.code(p.annotation.annotation)}`, an Equinox Module", None
        if ctx.imports_module("equinox"):
            for p in params:
                if p.annotation is None and p.name.value in MODEL_NAMES:
                    return f"takes `{p.name.value}`, an Equinox Module in this codebase", None
        return None, None

    def _instance_reason(self, target) -> Optional[str]:
        """`jax.jit(model)` / `jax.jit(model.__call__)` where `model = SomeModule(...)` in the
        same scope chain, or `jax.jit(eqx.nn.MLP(...))`."""
        ctx = self.ctx
        if isinstance(target, cst.Attribute) and target.attr.value == "__call__":
            target = target.value
        if isinstance(target, cst.Call):
            return self._constructor_reason(target)
        v = ctx.values.of(target)
        if v.kind != INST or not v.ref:
            return None
        ref = v.ref
        if ref.startswith("equinox.nn."):
            return f"is an `{ref.replace('equinox.', 'eqx.')}` Module"
        local = ctx.class_by_ref(ref)
        name = ref.rsplit(".", 1)[-1]
        if local is not None:
            return f"is an instance of the Module `{name}`" if ctx.is_module_class(local) else None
        if ref.startswith(("jax.", "numpy.", "equinox.")):
            return None
        return f"is an instance of `{name}`, an Equinox Module", ("module_class", ref)

    def _constructor_reason(self, call: cst.Call) -> Optional[str]:
        ctx = self.ctx
        qn = ctx.qualname(call.func) or ""
        if qn.startswith("equinox.nn."):
            return f"is an `{qn.replace('equinox.', 'eqx.')}` Module"
        if isinstance(call.func, cst.Name):
            for d in ctx.scope.lookup_def(call.func.value):
                if d.kind == "class" and ctx.is_module_class(d):
                    return f"is an instance of the Module `{d.name}`"
        return None

    def _message(self, what: str, reason: str) -> str:
        eqx = self.ctx.alias_for("equinox") or "eqx"
        return (
            f"`jax.jit` applied to {what}, which {reason}: `jax.jit` traces every leaf, so "
            "non-array fields (functions, ints, strings) fail or must be threaded through "
            f"`static_argnums` by hand. Use `{eqx}.filter_jit`, which traces arrays and keeps "
            "everything else static."
        )

    def _replace_jit(self, jit_expr, applicability) -> RuleFix:
        eqx = self.ctx.alias_for("equinox")
        imports = [] if eqx else [("equinox", "eqx")]
        eqx = eqx or "eqx"
        return RuleFix(
            f"Replace with `{eqx}.filter_jit`",
            applicability,
            replacements=[(jit_expr, f"{eqx}.filter_jit")],
            imports=imports,
        )

    def _fix(self, dec: cst.Decorator, expr, kind: str) -> Optional[RuleFix]:
        if kind == "plain":
            return self._replace_jit(expr, SAFE)
        if kind == "partial":
            # partial(jax.jit, static_argnums=...) -> eqx.filter_jit: non-array arguments become
            # static automatically; arrays passed as static change meaning. Unsafe.
            call = expr
            if all(a.keyword is not None and a.keyword.value in ("static_argnums", "static_argnames") for a in call.args[1:]):
                fix = self._replace_jit(call, UNSAFE)
                return fix
        return None


def _params(fn: cst.FunctionDef) -> list:
    p = fn.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]
