"""EQX111 vmap-implicit-axes: `jax.vmap`/`eqx.filter_vmap` over a function taking Modules or
configuration, with no explicit `in_axes`."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ._flow import static_annotation
from ._helpers import keyword, positional

VMAPS = frozenset({"jax.vmap", "equinox.filter_vmap", "equinox.internal.filter_vmap"})
_ENSEMBLE = re.compile(r"(ensemble|models|modules|nets|networks|members|population|stacked|batched)", re.I)


class VmapImplicitAxes(Rule):
    code = "EQX111"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self._decorated: dict = {}

    # ------------------------------------------------------------ analysis
    def _applied_modules(self, call: cst.Call) -> set:
        """Positions of arguments that are Modules at an immediate application
        `jax.vmap(f)(model, xs)`: a Module-annotated parameter of an enclosing function, or a
        variable named exactly `model`/`net`/`network`."""
        ctx = self.ctx
        stack = ctx.stack
        if len(stack) < 2 or stack[-1] is not call:
            return set()
        outer = stack[-2]
        if not isinstance(outer, cst.Call) or outer.func is not call:
            return set()
        out = set()
        for i, a in enumerate(outer.args):
            if a.keyword is not None or a.star:
                break
            v = a.value
            if isinstance(v, cst.Name):
                if v.value in ("model", "net", "network") or self._module_annotated(v.value):
                    out.add(i)
            elif isinstance(v, cst.Attribute) and isinstance(v.value, cst.Name) and v.value.value == "self" \
                    and v.attr.value in ("model", "net", "network"):
                out.add(i)
        return out

    def _module_annotated(self, name: str) -> bool:
        s = self.ctx.scope
        while s is not None:
            if s.kind in ("function", "lambda"):
                p = s.node.params
                for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                    if prm.name.value == name:
                        return bool(prm.annotation is not None and self.ctx.module_type(prm.annotation))
            s = s.parent
        return False

    def _offenders(self, fn, qn: str, bound: bool, applied: frozenset = frozenset(),
                   partial_bound: tuple = (0, frozenset())) -> Optional[list]:
        """(param, kind) pairs that should not be mapped over axis 0; None when the whole
        function is intentionally batched (ensembles) or nothing is wrong."""
        ctx = self.ctx
        node = fn.node
        p = node.params
        params = list(p.posonly_params) + list(p.params)
        # Arguments bound by functools.partial are closed over, not mapped.
        npos, kws = partial_bound
        if npos or kws:
            start = 1 if params and params[0].name.value in ("self", "cls") and bound else 0
            params = params[:start] + [x for x in params[start + npos:] if x.name.value not in kws]
        out = []
        kinds = []
        shift = 1 if bound and params and params[0].name.value in ("self", "cls") else 0
        for i, prm in enumerate(params):
            name = prm.name.value
            if i - shift in applied and prm.annotation is None and prm.default is None:
                kinds.append("module")
                out.append((name, "module", f"`{name}` (called with a Module)"))
                continue
            if i == 0 and name in ("self", "cls") and fn.cls is not None:
                if bound:
                    continue  # `jax.vmap(self.method)`: self is closed over, not mapped
                if ctx.is_module_class(fn.cls):
                    kinds.append("module")
                    out.append((name, "module", f"`{name}` (the `{fn.cls.name}` Module)"))
                    continue
                kinds.append("other")
                continue
            if prm.default is not None:
                kinds.append("default")
                continue
            mt = ctx.module_type(prm.annotation) if prm.annotation is not None else None
            if mt:
                kinds.append("module")
                out.append((name, "module", f"`{name}: {mt.lstrip('?').rsplit('.', 1)[-1]}`", mt))
                continue
            if qn == "jax.vmap" and prm.annotation is not None and static_annotation(ctx, prm.annotation):
                kinds.append("config")
                ann = " ".join(ctx.code(prm.annotation.annotation).split())
                out.append((name, "config", f"`{name}: {ann}`"))
                continue
            kinds.append("array")
        if not out:
            return None
        mods = [o for o in out if o[1] == "module"]
        if mods and all(k in ("module", "default") for k in kinds):
            return None  # every argument is a Module: the whole module is batched (ensemble)
        if any(_ENSEMBLE.search(o[0]) for o in mods):
            return None
        return out

    def _check(self, report_node, qn: str, fn_expr, axes_call: Optional[cst.Call],
               applied: frozenset = frozenset(), fn_scope=None) -> None:
        ctx = self.ctx
        if axes_call is not None:
            if keyword(axes_call, "in_axes") is not None or any(a.star for a in axes_call.args):
                return
            pos = positional(axes_call)
            first = pos[0].value if pos else None
            fq = ctx.qualname(first) if isinstance(first, (cst.Name, cst.Attribute)) else None
            shift = 1 if fq in VMAPS else 0  # partial(jax.vmap, f, in_axes)
            if len(pos) > 1 + shift:
                return  # in_axes given positionally
        if fn_expr is None and fn_scope is None:
            return
        bound = isinstance(fn_expr, cst.Attribute)
        if fn_scope is not None:
            targets = [fn_scope]
        else:
            targets = [s for s in ctx.resolve_functions(fn_expr, ctx.scope) if s.kind in ("function", "lambda")]
        if len(targets) != 1:
            # A class (Module constructor), a Module instance, or unknown: silent, unless the
            # map is applied on the spot to a Module (`jax.vmap(loss_fn)(model, xs)`).
            if applied and not targets and isinstance(fn_expr, (cst.Name, cst.Attribute)) \
                    and not (isinstance(fn_expr, cst.Name) and fn_expr.value in ctx.classes):
                eqx = ctx.alias_for("equinox") or "eqx"
                name = "jax.vmap" if qn == "jax.vmap" else f"{eqx}.filter_vmap"
                self.report(
                    report_node,
                    f"`{name}({ctx.code(fn_expr)})` is applied to a Module (argument "
                    f"{', '.join(str(i + 1) for i in sorted(applied))}) with no explicit `in_axes`: "
                    "the default maps every array leaf of the Module over axis 0, batching the "
                    "weights as if they were data. Say what is batched, e.g. "
                    f"`{eqx}.filter_vmap(f, in_axes=(None, {eqx}.if_array(0)))`.",
                )
            return
        fn = targets[0]
        pb = (0, frozenset())
        if isinstance(fn_expr, cst.Call) and ctx.qualname(fn_expr.func) in ("functools.partial", "partial"):
            pb = (len([a for a in fn_expr.args[1:] if a.keyword is None and not a.star]),
                  frozenset(a.keyword.value for a in fn_expr.args if a.keyword is not None))
            if any(a.star for a in fn_expr.args):
                return
            applied = frozenset()
        offenders = self._offenders(fn, qn, bound, applied, pb)
        if not offenders:
            return
        node = fn.node
        p = node.params
        params = [x for x in list(p.posonly_params) + list(p.params)
                  if not (bound and x.name.value in ("self", "cls"))]
        if pb[0] or pb[1]:
            params = [x for x in params[pb[0]:] if x.name.value not in pb[1]]
        bad = {o[0] for o in offenders}
        eqx = ctx.alias_for("equinox") or "eqx"
        if qn == "jax.vmap":
            axes = ", ".join("None" if x.name.value in bad else "0" for x in params if x.default is None)
        else:
            axes = ", ".join("None" if x.name.value in bad else f"{eqx}.if_array(0)" for x in params if x.default is None)
        if axes.count(",") == 0 and axes:
            axes += ","
        what = ", ".join(o[2] for o in offenders)
        name = "jax.vmap" if qn == "jax.vmap" else f"{eqx}.filter_vmap"
        if any(o[1] == "module" for o in offenders):
            why = ("the default `in_axes` maps every array leaf of the Module over axis 0, so "
                   "weights are batched as if they were data (a shape error, or silently a "
                   "per-example model)")
        else:
            why = ("the default `in_axes=0` tries to map configuration values over axis 0, which "
                   "fails for Python scalars and callables")
        requires = None
        for o in offenders:
            if len(o) > 3 and o[3].startswith("?"):
                requires = ("module_class", o[3][1:])
        self.report(
            report_node,
            f"`{name}` over `{fn.name or 'lambda'}`, which takes {what}, with no explicit "
            f"`in_axes`: {why}. Say what is batched: `in_axes=({axes})`"
            + ("" if qn != "jax.vmap" else f", or use `{eqx}.filter_vmap` with `eqx.if_array(0)`")
            + ".",
            requires=requires,
        )

    # ------------------------------------------------------------ visit
    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if not isinstance(node.func, (cst.Name, cst.Attribute)):
            return
        qn = ctx.qualname(node.func)
        if qn in VMAPS:
            pos = positional(node)
            fn = pos[0].value if pos else None
            if fn is None:
                k = keyword(node, "fun")
                fn = k.value if k is not None else None
            dec = self._decorated.get(id(node))
            if fn is None and dec is not None:
                self._check(node, qn, None, node, fn_scope=ctx.scope_of.get(id(dec)))
                return
            self._check(node, qn, fn, node, frozenset(self._applied_modules(node)))
        elif qn in ("functools.partial", "partial") and node.args:
            inner = ctx.qualname(node.args[0].value)
            if inner in VMAPS:
                dec = self._decorated.get(id(node))
                pos = positional(node)
                fn = pos[1].value if len(pos) > 1 else (cst.Name(dec.name.value) if dec is not None else None)
                if dec is not None:
                    if keyword(node, "in_axes") is None and len(pos) <= 1 and not any(a.star for a in node.args):
                        self._check(node, inner, None, None, fn_scope=ctx.scope_of.get(id(dec)))
                    return
                self._check(node, inner, fn, node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        ctx = self.ctx
        for d in node.decorators:
            expr = d.decorator
            if isinstance(expr, (cst.Name, cst.Attribute)):
                qn = ctx.qualname(expr)
                if qn in VMAPS:
                    self._check(d, qn, None, None, fn_scope=ctx.scope_of.get(id(node)))
            elif isinstance(expr, cst.Call):
                self._decorated[id(expr)] = node
