"""EQX305 hand-rolled-primitive: rules registered by hand on a primitive bound with non-array
(static) leaves.

A primitive created in this file with `Primitive("name")` (module level or a class attribute), with
at least one rule registered by hand in this file (`def_abstract_eval`, `def_impl`,
`ad.primitive_jvps[p] = ...`, `ad.defjvp`, `batching.primitive_batchers[p] = ...`,
`mlir.register_lowering`, ...), and a `p.bind(...)` in this file that passes non-array leaves:

- a PyTree structure: `treedef=`/`in_tree=`/`static=` parameters, or a value that comes from
  `jax.tree_util.tree_flatten(...)[1]`, `tree_structure(...)`, `eqx.partition(...)[1]`;
- a callable: a lambda, a function of this module, `functools.partial(...)`;
- a non-array operand: a string, `None`, a lambda in the positional operands.

Silent on pure array primitives: operands are arrays and parameters are the usual hashable
scalars/tuples (`axis=0`, `dimension_numbers=...`) — the seed's allowed break.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..semantics import names as S
from ..core.rule import Rule
from ..syntax.walker import iter_subtree

_TREE_PARAM_NAMES = ("treedef", "in_tree", "out_tree", "tree_def", "in_treedef", "out_treedef", "static", "static_args", "statics")
_FLATTEN = {
    "jax.tree_util.tree_flatten", "jax.tree.flatten", "jax.tree_flatten",
    "equinox.partition", "jax.tree_util.tree_flatten_with_path",
}
_STRUCTURE = {"jax.tree_util.tree_structure", "jax.tree.structure", "jax.tree_structure"}
_TABLE_SUFFIX = {".".join(q.rsplit(".", 2)[-2:]): k for q, k in S.REGISTRATION_TABLES.items()}
_CALL_SUFFIX = {".".join(q.rsplit(".", 2)[-2:]): k for q, k in S.REGISTRATION_CALLS.items()}
_KIND_LABEL = {"abstract_eval": "abstract eval", "impl": "impl", "jvp": "JVP", "transpose": "transpose",
               "batching": "batching", "lowering": "lowering"}


def _suffix_kind(qn: Optional[str], exact: dict, suffix: dict):
    if not qn:
        return None
    got = exact.get(qn)
    if got is None and "." in qn:
        got = suffix.get(".".join(qn.rsplit(".", 2)[-2:]))
    return got


class HandRolledPrimitive(Rule):
    code = "EQX305"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self.prims: dict = {}  # key -> (target node, display)
        self.regs: dict = {}  # key -> [kind, ...]
        self.binds: dict = {}  # key -> [(bind call, reason)]
        self.trees: dict = {}  # (id(function scope), name) -> origin text
        self.enabled = "bind" in ctx.source
        self._locals: dict = {}

    # -- primitive expressions -------------------------------------------------------------
    def _is_ctor(self, call: cst.Call) -> bool:
        ctx = self.ctx
        qn = ctx.qualname(call.func)
        if qn in S.PRIMITIVE_CLASSES:
            return True
        if qn and qn.rsplit(".", 1)[-1] == "Primitive" and "compat" in qn:
            return True  # `from mypkg._compat import Primitive` (a re-export of jax's)
        if isinstance(call.func, cst.Name):
            for d in ctx.module_scope.lookup_def(call.func.value):
                if d.kind == "class":
                    for b in d.node.bases:
                        if ctx.qualname(b.value) in S.PRIMITIVE_CLASSES:
                            return True
        return False

    def _key(self, expr) -> Optional[str]:
        ctx = self.ctx
        if isinstance(expr, cst.Name):
            fn = ctx.scope.function
            if fn is not None and expr.value in fn.params:
                return None
            return expr.value
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            head = expr.value.value
            if head in ("cls", "self"):
                fn = ctx.scope.function
                owner = fn.cls if fn is not None else None
                if owner is None:
                    return None
                return f"{owner.name}.{expr.attr.value}"
            return f"{head}.{expr.attr.value}"
        return None

    # -- definitions and registrations -----------------------------------------------------
    def _assignment(self, targets: list, value, node) -> None:
        ctx = self.ctx
        scope = ctx.scope
        fn = scope.function
        if isinstance(value, cst.Call) and fn is None and self._is_ctor(value):
            for t in targets:
                if isinstance(t, cst.Name):
                    key = t.value if scope.kind == "module" else f"{scope.name}.{t.value}"
                    self.prims[key] = t
        if isinstance(value, cst.Name) and fn is None and scope.kind == "class":
            # class Plugin: _PRIM = FOO_P  -> Plugin._PRIM is FOO_P
            for t in targets:
                if isinstance(t, cst.Name):
                    self.prims.setdefault(f"{scope.name}.{t.value}", ("alias", value.value))
        for t in targets:
            if isinstance(t, cst.Subscript):
                kind = _suffix_kind(ctx.qualname(t.value), S.REGISTRATION_TABLES, _TABLE_SUFFIX)
                if kind and t.slice and isinstance(t.slice[0].slice, cst.Index):
                    self._reg(t.slice[0].slice.value, (kind,))
        # Tree structures / static partitions bound to names in a function.
        if fn is not None and isinstance(value, cst.Call):
            qn = ctx.qualname(value.func)
            if qn in _FLATTEN and len(targets) == 1 and isinstance(targets[0], (cst.Tuple, cst.List)):
                els = targets[0].elements
                if len(els) == 2 and isinstance(els[1].value, cst.Name):
                    self.trees[(id(fn), els[1].value.value)] = f"`{ctx.code(value.func)}(...)`"
            elif qn in _STRUCTURE:
                for t in targets:
                    if isinstance(t, cst.Name):
                        self.trees[(id(fn), t.value)] = f"`{ctx.code(value.func)}(...)`"

    def visit_Assign(self, node: cst.Assign) -> None:
        if self.enabled:
            self._assignment([t.target for t in node.targets], node.value, node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if self.enabled and node.value is not None:
            self._assignment([node.target], node.value, node)

    def _reg(self, expr, kinds) -> None:
        key = self._key(expr)
        if key is not None:
            lst = self.regs.setdefault(key, [])
            lst.extend(k for k in kinds if k not in lst)

    def visit_Decorator(self, node: cst.Decorator) -> None:
        if not self.enabled:
            return
        dec = node.decorator
        if isinstance(dec, cst.Attribute) and dec.attr.value in S.REGISTRATION_METHODS:
            self._reg(dec.value, (S.REGISTRATION_METHODS[dec.attr.value],))

    def visit_Call(self, node: cst.Call) -> None:
        if not self.enabled:
            return
        ctx = self.ctx
        func = node.func
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            if attr in S.REGISTRATION_METHODS:
                self._reg(func.value, (S.REGISTRATION_METHODS[attr],))
                return
            if attr == "bind":
                key = self._key(func.value)
                if key is not None:
                    reason = self._static_leaf(node)
                    if reason is not None:
                        self.binds.setdefault(key, []).append((node, reason))
                return
        kinds = _suffix_kind(ctx.qualname(func), S.REGISTRATION_CALLS, _CALL_SUFFIX)
        if kinds:
            pos = [a for a in node.args if a.keyword is None and not a.star]
            if pos:
                self._reg(pos[0].value, kinds)

    # -- what is a non-array leaf ----------------------------------------------------------
    def _static_leaf(self, call: cst.Call) -> Optional[str]:
        ctx = self.ctx
        fn = ctx.scope.function
        for arg in call.args:
            if arg.star:
                continue
            val = arg.value
            code = ctx.code(val)
            if arg.keyword is None:
                if isinstance(val, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
                    return f"a string operand `{code}`"
                if isinstance(val, cst.Name) and val.value == "None":
                    return "a `None` operand"
                if isinstance(val, cst.Lambda):
                    return "a function operand"
                continue
            kw = arg.keyword.value
            if kw in _TREE_PARAM_NAMES:
                return f"a PyTree structure/static part `{kw}={code}`"
            if isinstance(val, cst.Name) and fn is not None and (id(fn), val.value) in self.trees:
                return f"`{kw}={code}` from {self.trees[(id(fn), val.value)]}"
            if isinstance(val, cst.Call) and ctx.qualname(val.func) in _STRUCTURE:
                return f"a PyTree structure `{kw}={code}`"
            if isinstance(val, cst.Lambda):
                return f"a function `{kw}=lambda ...`"
            if isinstance(val, cst.Call) and ctx.qualname(val.func) in ("functools.partial", "partial"):
                return f"a function `{kw}={code}`"
            if isinstance(val, cst.Name) and not self._shadowed(val.value):
                for d in ctx.scope.lookup_def(val.value):
                    if d.kind == "function":
                        return f"a function `{kw}={code}`"
        return None

    def _shadowed(self, name: str) -> bool:
        """A parameter of an enclosing function hides a module-level function of that name."""
        s = self.ctx.scope
        while s is not None and s.kind != "module":
            if s.kind in ("function", "lambda") and name in s.params:
                return True
            if s.kind == "function":
                local = self._locals.get(id(s))
                if local is None:
                    local = set()
                    for a in iter_subtree(s.node.body, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
                        targets = [t.target for t in a.targets] if isinstance(a, cst.Assign) else [a.target]
                        for t in targets:
                            for n in iter_subtree(t, (cst.Name,)):
                                local.add(n.value)
                    self._locals[id(s)] = local
                if name in local:
                    return True
            s = s.parent
        return False

    def end_file(self) -> None:
        if not self.prims:
            return
        # Resolve class-attribute aliases to the primitive they name.
        canon: dict = {}
        for key, val in self.prims.items():
            if isinstance(val, tuple):
                if val[1] in self.prims and not isinstance(self.prims[val[1]], tuple):
                    canon[key] = val[1]
            else:
                canon[key] = key
        regs: dict = {}
        binds: dict = {}
        for key, kinds in self.regs.items():
            if key in canon:
                lst = regs.setdefault(canon[key], [])
                lst.extend(k for k in kinds if k not in lst)
        for key, found in self.binds.items():
            if key in canon:
                binds.setdefault(canon[key], []).extend(found)
        for key, kinds in regs.items():
            if key not in binds:
                continue
            node, reason = binds[key][0]
            pos = self.ctx.position(node)
            where = f" (line {pos[0]})" if pos else ""
            labels = ", ".join(_KIND_LABEL.get(k, k) for k in kinds)
            if self.ctx.imports_module("equinox"):
                advice = (
                    "Define it with `eqxi.filter_primitive_def` / `filter_primitive_jvp` / "
                    "`filter_primitive_transpose` / `filter_primitive_batching` and bind with "
                    "`eqxi.filter_primitive_bind`, or use `eqxlint.runtime.define_primitive(...)`, "
                    "which keep static leaves static."
                )
            else:
                # Plain JAX (JAX itself cannot depend on Equinox, nor on the Equinox-based
                # `eqxlint.runtime`).
                advice = (
                    "Bind only arrays as operands and pass the static data (a treedef, "
                    "callables, config) as hashable keyword parameters of `bind`, which JAX hands "
                    "to every rule as `**params`."
                )
            self.report(
                self.prims[key],
                f"Primitive `{key}` has rules registered by hand ({labels}) and is bound with a "
                f"non-array static leaf: {reason}{where}. Every hand-written rule (abstract eval, "
                "JVP, transpose, batching, lowering) must then thread that static data through "
                "itself, and one that forgets breaks only under `grad`/`vmap`. " + advice,
                refs=(pos[0],) if pos else (),
            )
