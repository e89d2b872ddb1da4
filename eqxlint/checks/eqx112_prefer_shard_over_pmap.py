"""EQX112 prefer-shard-over-pmap: `jax.pmap`/`eqx.filter_pmap` without axis-name collectives."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..project.paths import is_test_path
from ..semantics.tracing import short
from ..semantics.values import FN
from ..syntax.nodes import keyword, positional

PMAPS = frozenset({"jax.pmap", "equinox.filter_pmap"})


class PreferShardOverPmap(Rule):
    code = "EQX112"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self._decorated: dict = {}
        self.skip = is_test_path(ctx.path)  # tests of pmap itself

    def _mapped_ref(self, fn_expr, dec) -> Optional[str]:
        """The project function the map is given (its reference), when it is one."""
        ctx = self.ctx
        if dec is not None:
            scope = ctx.scope_of.get(id(dec))
            return scope.ref if scope is not None else None
        if fn_expr is None:
            return None
        v = ctx.values.of(fn_expr)
        if v.kind == FN and v.ref:
            return v.ref
        if v.raw and "." in v.raw:
            return v.raw  # a function imported from another project file: the index knows it
        return None

    def _check(self, node, qn: str, args_call, fn_expr, kw_pos: int, dec=None) -> None:
        """`args_call`: the call whose arguments configure the map (pmap(...) or partial(...))."""
        if self.skip:
            return
        if args_call is not None:
            if keyword(args_call, "axis_name") is not None:
                return
            if any(a.star for a in args_call.args):
                return  # `**pmap_kwargs` / `*args` may carry the axis name
            pos = positional(args_call)
            if len(pos) > kw_pos:
                return  # axis_name given positionally
        ref = self._mapped_ref(fn_expr, dec)
        eqx = self.ctx.alias_for("equinox") or "eqx"
        name = short(qn)
        what = f"`{ctx_code(self.ctx, fn_expr)}`" if fn_expr is not None else (
            f"`{dec.name.value}`" if dec is not None else "a function")
        if self.ctx.imports_module("equinox"):
            use = (f"Use `{eqx}.filter_jit` on the whole step and shard the batch with "
                   f"`{eqx}.filter_shard(x, NamedSharding(mesh, PartitionSpec(\"batch\")))`")
        else:
            use = ("Use `jax.jit` on the whole step with the batch sharded over a mesh "
                   "(`jax.device_put(x, NamedSharding(mesh, PartitionSpec(\"batch\")))`)")
        self.report(
            node,
            f"`{name}` over {what} with no `axis_name` collective: pmap compiles per device "
            f"count, forces a leading device axis on every input and is the legacy path. {use}; "
            "JAX then partitions the computation for you.",
            requires=("not", ("collective", ref)) if ref else None,
        )

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func) if isinstance(node.func, (cst.Name, cst.Attribute)) else None
        if qn in PMAPS:
            pos = positional(node)
            fn = pos[0].value if pos else None
            if fn is None:
                k = keyword(node, "fun")
                fn = k.value if k is not None else None
            dec = self._decorated.get(id(node)) if fn is None else None
            # eqx.filter_pmap(axis_name=...) as a decorator factory: same checks.
            self._check(node, qn, node, fn, 1, dec)
        elif qn in ("functools.partial", "partial") and node.args:
            inner = ctx.qualname(node.args[0].value)
            if inner in PMAPS:
                dec = self._decorated.get(id(node))
                pos = positional(node)
                fn = pos[1].value if dec is None and len(pos) > 1 else None
                # partial(jax.pmap, f, axis_name) -> positional args shifted by one
                self._check(node, inner, node, fn, 2, dec)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        ctx = self.ctx
        for d in node.decorators:
            expr = d.decorator
            if isinstance(expr, (cst.Name, cst.Attribute)):
                qn = ctx.qualname(expr)
                if qn in PMAPS:
                    self._check(d, qn, None, None, 1, node)
            elif isinstance(expr, cst.Call):
                qn = ctx.qualname(expr.func) if isinstance(expr.func, (cst.Name, cst.Attribute)) else None
                if qn in PMAPS or (qn in ("functools.partial", "partial") and expr.args
                                   and ctx.qualname(expr.args[0].value) in PMAPS):
                    # reported from visit_Call, which needs the function for collectives
                    self._decorated[id(expr)] = node


def ctx_code(ctx, node) -> str:
    text = " ".join(ctx.code(node).split()) if node is not None else "?"
    return text if len(text) <= 40 else text[:37] + "..."
