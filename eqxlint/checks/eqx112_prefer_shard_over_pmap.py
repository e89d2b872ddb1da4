"""EQX112 prefer-shard-over-pmap: `jax.pmap`/`eqx.filter_pmap` without axis-name collectives."""

from __future__ import annotations

import libcst as cst

from ..core.rule import Rule
from ._helpers import keyword, positional, short

PMAPS = frozenset({"jax.pmap", "equinox.filter_pmap"})
COLLECTIVES = frozenset(
    {
        "psum", "pmean", "pmax", "pmin", "all_gather", "ppermute", "pshuffle", "axis_index",
        "psum_scatter", "all_to_all", "pswapaxes", "pbroadcast", "pdot", "axis_size",
    }
)


class PreferShardOverPmap(Rule):
    code = "EQX112"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self._decorated: dict = {}

    def _uses_collectives(self, fn_expr) -> bool:
        """The mapped function (or a same-module function it calls, or a nested one) uses a
        named-axis collective."""
        ctx = self.ctx
        todo = list(ctx.resolve_functions(fn_expr, ctx.scope)) if fn_expr is not None else []
        seen: set = set()
        while todo:
            s = todo.pop()
            if id(s) in seen or len(seen) > 50:
                continue
            seen.add(id(s))
            for call in s.calls:
                qn = ctx.qualname(call.func) or ""
                if qn.startswith("jax.lax.") and qn.rsplit(".", 1)[-1] in COLLECTIVES:
                    return True
                if keyword(call, "axis_name") is not None:
                    return True  # passes an axis name on (e.g. to a batch-norm layer)
                todo.extend(ctx.resolve_functions(call.func, s))
            todo.extend(c for c in s.children if c.kind in ("function", "lambda"))
        return False

    def _check(self, node, qn: str, args_call, fn_expr, kw_pos: int) -> None:
        """`args_call`: the call whose arguments configure the map (pmap(...) or partial(...))."""
        if args_call is not None:
            if keyword(args_call, "axis_name") is not None:
                return
            if any(a.star for a in args_call.args):
                return  # `**pmap_kwargs` / `*args` may carry the axis name
            pos = positional(args_call)
            if len(pos) > kw_pos:
                return  # axis_name given positionally
        if self._uses_collectives(fn_expr):
            return
        eqx = self.ctx.alias_for("equinox") or "eqx"
        name = short(qn)
        what = f"`{ctx_code(self.ctx, fn_expr)}`" if fn_expr is not None else "a function"
        self.report(
            node,
            f"`{name}` over {what} with no `axis_name` collective: pmap compiles per device "
            "count, forces a leading device axis on every input and is the legacy path. Use "
            f"`{eqx}.filter_jit` on the whole step and shard the batch with "
            f"`{eqx}.filter_shard(x, NamedSharding(mesh, PartitionSpec(\"batch\")))`; JAX then "
            "partitions the computation for you.",
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
            if fn is None and id(node) in self._decorated:
                fn = cst.Name(self._decorated[id(node)].name.value)
            # eqx.filter_pmap(axis_name=...) as a decorator factory: same checks.
            self._check(node, qn, node, fn, 1)
        elif qn in ("functools.partial", "partial") and node.args:
            inner = ctx.qualname(node.args[0].value)
            if inner in PMAPS:
                dec = self._decorated.get(id(node))
                fn = cst.Name(dec.name.value) if dec is not None else None
                # partial(jax.pmap, f, axis_name) -> positional args shifted by one
                self._check(node, inner, node, fn, 2)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        ctx = self.ctx
        for d in node.decorators:
            expr = d.decorator
            if isinstance(expr, (cst.Name, cst.Attribute)):
                qn = ctx.qualname(expr)
                if qn in PMAPS:
                    self._check(d, qn, None, cst.Name(node.name.value), 1)
            elif isinstance(expr, cst.Call):
                qn = ctx.qualname(expr.func) if isinstance(expr.func, (cst.Name, cst.Attribute)) else None
                if qn in PMAPS or (qn in ("functools.partial", "partial") and expr.args
                                   and ctx.qualname(expr.args[0].value) in PMAPS):
                    # reported from visit_Call, which needs the function for collectives
                    self._decorated[id(expr)] = node


def ctx_code(ctx, node) -> str:
    text = " ".join(ctx.code(node).split()) if node is not None else "?"
    return text if len(text) <= 40 else text[:37] + "..."
