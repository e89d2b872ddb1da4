"""EQX201 raw-custom-ad: `jax.custom_jvp`/`jax.custom_vjp` on functions of Modules/PyTrees."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..semantics import types as TY
from ..syntax.walker import iter_subtree

RAW_CUSTOM_AD = frozenset({"jax.custom_jvp", "jax.custom_vjp"})
PARTITION = frozenset({"equinox.partition", "equinox.combine", "equinox.filter"})


class RawCustomAd(Rule):
    code = "EQX201"

    def end_file(self) -> None:
        ctx = self.ctx
        if not ctx.imports_module("equinox"):
            return  # plain-JAX code: raw custom_jvp/vjp is the documented idiom
        for ref, spec, node in ctx.values.custom_functions():
            qn = spec.get("t")
            scope = ctx.refs.get(ref)
            if qn not in RAW_CUSTOM_AD or scope is None or scope.kind != "function":
                continue
            reason = self._reason(scope, spec.get("nd") or [])
            if reason is None:
                continue
            text, requires = reason
            kind = qn.rsplit(".", 1)[-1]
            eqx = ctx.alias_for("equinox") or "eqx"
            self.report(
                node,
                f"`jax.{kind}` on `{scope.name}`, which {text}: raw custom AD treats every leaf "
                "as differentiable and needs `nondiff_argnums` plus hand-written partitioning "
                "for non-array leaves, which breaks when the PyTree changes. Use "
                f"`{eqx}.filter_{kind}`, which differentiates the array leaves and passes the "
                "rest through.",
                requires=requires,
            )

    def _reason(self, scope, nondiff: list) -> Optional[tuple]:
        ctx = self.ctx
        summ = ctx.values.summary(scope)
        facts = summ.params if summ is not None else []
        if scope.cls is not None and facts and facts[0].get("k") == "self":
            is_module, requires = TY.module_of_class(ctx, scope.cls)
            if is_module is not False:
                return f"is a method of the Module `{scope.cls.name}` (`self` is a PyTree argument)", requires
        params = {p.name.value: p for p in _params(scope.node)}
        positional = [f["n"] for f in facts if not f.get("kw") and not f.get("st")]
        nondiff_names = {positional[i] for i in nondiff if 0 <= i < len(positional)}
        for fact in facts:
            name, k = fact["n"], fact.get("k")
            param = params.get(name)
            ann = param.annotation if param is not None else None
            if k == "class":
                is_module, requires = TY.module_of_ref(ctx, fact.get("c"))
                if is_module is not False:
                    cls = ctx.code(ann.annotation) if ann is not None else fact["c"].rsplit(".", 1)[-1]
                    where = " (passed through `nondiff_argnums`)" if name in nondiff_names else ""
                    return f"takes a Module (`{name}: {cls}`){where}", requires
            if k == "pytree" and ann is not None and not _array_leaves(ctx, ann.annotation):
                return f"takes a PyTree (`{name}: {ctx.code(ann.annotation)}`)", None
        for fact in facts:
            if fact["n"] in nondiff_names and fact.get("k") == "class" and ctx.class_by_ref(fact.get("c", "")):
                cls = fact["c"].rsplit(".", 1)[-1]
                return f"passes the config object `{fact['n']}: {cls}` through `nondiff_argnums`", None
        if not ctx.module_name.startswith("equinox"):
            for call in iter_subtree(scope.node.body, (cst.Call,)):
                if ctx.qualname(call.func) in PARTITION:
                    return f"partitions PyTrees by hand (`{ctx.code(call.func)}` in its body)", None
        return None


def _params(node) -> list:
    p = node.params
    out = list(p.posonly_params) + list(p.params) + list(p.kwonly_params)
    if isinstance(p.star_arg, cst.Param):
        out.append(p.star_arg)
    return out


def _array_leaves(ctx, ann) -> bool:
    """`PyTree[Array]`, `PyTree[Float[Array, "n"]]`, `PyTree[ArrayLike]`: array-only trees."""
    expr = TY.annotation_expr(ann)
    if type(expr) is not cst.Subscript or not expr.slice:
        return False
    first = expr.slice[0].slice
    return type(first) is cst.Index and TY.annotation_kind(ctx, first.value)[0] == "array"
