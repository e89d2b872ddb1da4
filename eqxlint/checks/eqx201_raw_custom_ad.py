"""EQX201 raw-custom-ad: `jax.custom_jvp`/`jax.custom_vjp` on functions of Modules/PyTrees."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..syntax.walker import iter_subtree
from . import _ad

PARTITION = frozenset({"equinox.partition", "equinox.combine", "equinox.filter"})


class RawCustomAd(Rule):
    code = "EQX201"

    def end_file(self) -> None:
        ctx = self.ctx
        if not _ad.equinox_in_use(ctx):
            return  # plain-JAX code: raw custom_jvp/vjp is the documented idiom
        for scope in ctx.scopes:
            entry = _ad.custom_ad_scopes(ctx).get(id(scope))
            if entry is None:
                continue
            qn, node, nondiff = entry
            if qn not in _ad.RAW_CUSTOM_AD:
                continue
            reason = self._reason(scope, nondiff)
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

    def _reason(self, scope, nondiff) -> Optional[tuple]:
        ctx = self.ctx
        if scope.cls is not None and ctx.is_module_class(scope.cls) and scope.params \
                and scope.params[0] == "self":
            return f"is a method of the Module `{scope.cls.name}` (`self` is a PyTree argument)", None
        params = _ad.param_annotations(scope)
        nondiff_names = self._nondiff_names(scope, nondiff)
        for name, param in params.items():
            mt = ctx.module_type(param.annotation)
            if mt:
                cls = mt.lstrip("?").rsplit(".", 1)[-1]
                req = ("module_class", mt[1:]) if mt.startswith("?") else None
                where = " (passed through `nondiff_argnums`)" if name in nondiff_names else ""
                return f"takes a Module (`{name}: {cls}`){where}", req
            if _ad.is_pytree_annotation(ctx, param.annotation) and not _array_leaves(
                param.annotation.annotation
            ):
                return f"takes a PyTree (`{name}: {ctx.code(param.annotation.annotation)}`)", None
        for name in nondiff_names:
            param = params.get(name)
            if param is None or param.annotation is None:
                continue
            ann = param.annotation.annotation
            if isinstance(ann, cst.Name):
                for d in ctx.module_scope.lookup_def(ann.value):
                    if d.kind == "class":
                        return (
                            f"passes the config object `{name}: {ann.value}` through "
                            "`nondiff_argnums`",
                            None,
                        )
        if not ctx.module_name.startswith("equinox"):
            for call in iter_subtree(scope.node.body, (cst.Call,)):
                q = ctx.qualname(call.func)
                if q in PARTITION:
                    return (
                        f"partitions PyTrees by hand (`{ctx.code(call.func)}` in its body)",
                        None,
                    )
        return None

    def _nondiff_names(self, scope, nondiff) -> set:
        if nondiff is None:
            return set()
        items = nondiff.elements if isinstance(nondiff, (cst.Tuple, cst.List)) else [nondiff]
        out = set()
        for it in items:
            val = it.value if isinstance(it, cst.Element) else it
            if isinstance(val, cst.Integer):
                i = int(val.evaluated_value)
                if 0 <= i < len(scope.params):
                    out.add(scope.params[i])
        return out


def _array_leaves(ann) -> bool:
    """`PyTree[Array]`, `PyTree[Float[Array, "n"]]`, `PyTree[ArrayLike]`: array-only trees."""
    if not isinstance(ann, cst.Subscript) or not ann.slice:
        return False
    first = ann.slice[0].slice
    if not isinstance(first, cst.Index):
        return False
    names = {n.value for n in iter_subtree(first.value, (cst.Name,))}
    names |= {a.attr.value for a in iter_subtree(first.value, (cst.Attribute,))}
    return bool(names & {"Array", "ArrayLike", "ndarray", "Shaped", "Float", "Inexact", "Real"})
