"""EQX101 raw-jit-on-module: `jax.jit` applied to code that takes or is an Equinox Module."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import SAFE, UNSAFE, Rule, RuleFix
from ..semantics import types as TY
from ..semantics.values import FN, INST, RAW
from ..syntax.nodes import positional

TAKES = "takes"  # the Module is an argument: jax.jit traces every leaf
CLOSES = "closes"  # the Module is the function (or its `self`): its arrays become constants


class RawJitOnModule(Rule):
    code = "EQX101"

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self.ctx.scope
        for site in scope.sites:
            if site.kind != "decorator" or site.qualname != "jax.jit":
                continue
            dec: cst.Decorator = site.node
            expr = dec.decorator
            jit_expr, fix_kind = expr, "plain"
            if type(expr) is cst.Call:
                fq = self.ctx.qualname(expr.func)
                if fq in ("functools.partial", "partial"):
                    jit_expr, fix_kind = expr.args[0].value, "partial"
                else:
                    jit_expr, fix_kind = expr.func, "called"
            for how, reason, requires in _alternatives(self._why(scope, skip=0, bound_kw=())):
                self.report(
                    jit_expr,
                    self._message(f"`{scope.name}`", how, reason),
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
        what = " ".join(ctx.code(target).split())
        what = what if len(what) <= 40 else what[:37] + "..."
        found = self._target(target)
        if found is None:
            return
        alts, name = found
        only_fun = len(node.args) == 1 and node.args[0].keyword is None
        for how, reason, requires in _alternatives(alts):
            fix = self._replace_jit(node.func, SAFE) if only_fun else None
            self.report(node.func, self._message(name or f"`{what}`", how, reason), fix=fix, requires=requires)

    # ------------------------------------------------------------------
    def _target(self, target) -> Optional[tuple]:
        """(alternatives, name) for what `jax.jit` is given, from its value; an alternative is
        (how, reason, requires) (see `_why`)."""
        ctx = self.ctx
        if type(target) is cst.Attribute and target.attr.value == "__call__":
            target = target.value  # `jax.jit(model.__call__)`: the Module's own call
        v = ctx.values.of(target)
        if v.kind == FN and v.ref:
            scope = ctx.refs.get(v.ref)
            if scope is not None and scope.kind in ("function", "lambda"):
                found = self._why(scope, v.skip, tuple(k for k, _ in v.bound if isinstance(k, str)))
                if found is None:
                    return None
                name = f"`{scope.name}`" if scope.name else "this lambda"
                return found, name
            if v.skip == 1 and scope is None and "." in v.ref:
                # a method of a class of another file, bound to an instance: `jax.jit(obj.m)`
                owner = v.ref.rpartition(".")[0]
                is_mod, req = TY.module_of_ref(ctx, owner)
                if is_mod is not False:
                    cls = owner.rsplit(".", 1)[-1]
                    return (CLOSES, f"is a method of `{cls}`, an Equinox Module", req), None
            return None
        if v.kind == INST:
            is_mod, req = TY.module_of_ref(ctx, v.ref)
            if is_mod is False:
                return None
            cls = v.ref.lstrip("?")
            shown = cls.replace("equinox.", "eqx.") if cls.startswith("equinox.") else cls.rsplit(".", 1)[-1]
            return (CLOSES, f"is an instance of `{shown}`, an Equinox Module", req), None
        if v.kind == RAW and v.src is not None and type(target) is cst.Name:
            fn = ctx.scope.function
            if fn is not None and v.src in fn.params:
                req = ("param_module", fn.ref, [v.src])
                return (CLOSES, f"is the parameter `{v.src}`, to which callers pass an Equinox Module", req), None
        return None

    def _why(self, fn, skip: int, bound_kw: tuple):
        """(how, reason, requires) when the function handles Modules, a list of such
        alternatives, or None. `skip`: leading positional parameters bound already (a bound
        method's `self`, `partial` arguments)."""
        ctx = self.ctx
        params = _params(fn.node)
        is_method = fn.cls is not None and fn.kind == "function" and params and not _static(ctx, fn.node)
        if is_method:
            is_mod, req = TY.module_of_class(ctx, fn.cls)
            if is_mod is not False:
                if skip:
                    return CLOSES, f"is a method of `{fn.cls.name}`, an Equinox Module", req
                return TAKES, f"is a method of the Module `{fn.cls.name}` (its `self` is a Module)", req
            params = params[1:]
            skip = max(skip - 1, 0)
        free = [p for p in params[skip:] if p.name.value not in bound_kw]
        later = None
        for p in free:
            if p.annotation is None:
                continue
            kind, ref = TY.annotation_kind(ctx, p.annotation)
            if kind != "class":
                continue
            is_mod, req = TY.module_of_ref(ctx, ref)
            if is_mod is False:
                continue
            ann = " ".join(ctx.code(p.annotation.annotation).split())
            reason = f"takes `{p.name.value}: {ann}`, an Equinox Module"
            if req is None:
                return TAKES, reason, None
            later = later or (TAKES, reason, req)
        if later is not None:
            return later
        # Unannotated parameters: a Module where some caller in the project passes one. One
        # alternative per parameter, each holding only where no earlier one does, so that the
        # finding names the parameter and is reported once.
        names = [p.name.value for p in free if p.annotation is None and not _star(fn.node, p)]
        alts = []
        for i, n in enumerate(names):
            req = (("param_module", fn.ref, [n]),) + tuple(("not", ("param_module", fn.ref, [m])) for m in names[:i])
            alts.append((TAKES, f"is called with an Equinox Module as `{n}`", req))
        return alts or None

    def _message(self, what: str, how: str, reason: str) -> str:
        eqx = self.ctx.alias_for("equinox") or "eqx"
        if how == CLOSES:
            return (
                f"`jax.jit` applied to {what}, which {reason}: `jax.jit` treats the callable it "
                "wraps as fixed code, not as an input, so the Module's arrays are compiled in as constants (one "
                f"compilation per Module value). Use `{eqx}.filter_jit`, which traces the "
                "Module's arrays as inputs and keeps its other fields static."
            )
        return (
            f"`jax.jit` applied to {what}, which {reason}: `jax.jit` traces every leaf of its "
            "arguments, so a Module's non-array fields (functions, ints, strings) fail or must "
            f"be threaded through `static_argnums` by hand. Use `{eqx}.filter_jit`, which traces "
            "arrays and keeps everything else static."
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
                return self._replace_jit(call, UNSAFE)
        return None


def _alternatives(found) -> list:
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def _star(fn, p) -> bool:
    return p is fn.params.star_arg or p is fn.params.star_kwarg


def _params(fn) -> list:
    p = fn.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]


def _static(ctx, node) -> bool:
    return any((ctx.qualname(d.decorator) or "") in ("staticmethod", "classmethod") for d in node.decorators)
