"""EQX403 split-by-leaf-count: `jr.split(key, <number of leaves of t>)` paired with the leaves."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from . import _keys as K

# Calls that pair their arguments element by element.
_PAIRING = frozenset({"zip", "map", "itertools.zip_longest", "jax.util.safe_zip", "jax.util.safe_map"})
_ARRAY_ANN = ("Array", "ndarray", "Float[", "Int[", "Shaped[", "Real[", "Num[")


class SplitByLeafCount(Rule):
    code = "EQX403"

    def visit_Module(self, node: cst.Module) -> None:
        self._check(self.ctx.module_scope, list(node.body), None)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        body = node.body.body if isinstance(node.body, (cst.IndentedBlock, cst.SimpleStatementSuite)) else []
        self._check(self.ctx.scope, list(body), node.params)

    def _check(self, scope, stmts: list, params) -> None:
        ctx = self.ctx
        splits = [c for c in scope.calls if ctx.qualname(c.func) == K.SPLIT]
        if not splits:
            return
        arrays = set()
        if params is not None:
            for p in list(params.params) + list(params.kwonly_params) + list(params.posonly_params):
                if p.annotation is not None:
                    ann = ctx.code(p.annotation.annotation)
                    if any(a in ann for a in _ARRAY_ANN) and "PyTree" not in ann:
                        arrays.add(p.name.value)
        # Names bound in this scope: leaf lists, treedefs, leaf counts.
        counts: dict = {"__leaves__": {}, "__treedef__": {}}
        uses: dict = {}  # name -> nodes where it is indexed with a variable
        zipped: list = []
        leaf_loops: list = []
        paired_names: set = set()
        assigned_from: dict = {}  # split call id -> target name
        for stmt in stmts:
            for node in K.iter_pruned(stmt):
                if isinstance(node, cst.Assign) and len(node.targets) == 1:
                    self._bind(node.targets[0].target, node.value, counts, assigned_from)
                elif isinstance(node, cst.Call):
                    qn = ctx.qualname(node.func)
                    if qn in _PAIRING or (qn is None and isinstance(node.func, cst.Name) and node.func.value in ("zip", "safe_zip", "safe_map")):
                        zipped.append(node)
                elif isinstance(node, (cst.For, cst.CompFor)):
                    leaf_loops.append(node.iter)
                elif isinstance(node, cst.Subscript):
                    if isinstance(node.value, cst.Name) and K.literal_index(node) is None:
                        uses.setdefault(node.value.value, []).append(node)
        leaves_names = set(counts["__leaves__"])
        # zip(keys, leaves): the split result and a leaf list side by side.
        for z in zipped:
            args = [a.value for a in z.args if not a.star]
            if not any(self._is_leaves(a, leaves_names) for a in args):
                continue
            for a in args:
                for tok in self._names_in(a):
                    paired_names.add(tok)
        # keys[i] inside a loop over the leaves (`for i, leaf in enumerate(leaves)`).
        if any(self._mentions_leaves(it, leaves_names) for it in leaf_loops):
            for name in uses:
                paired_names.add(name)
        for call in splits:
            num = self._num_arg(call)
            if num is None:
                continue
            tree = K.is_leaf_count(ctx, num, counts)
            if tree is None or tree in arrays:
                continue
            paired = self._paired(call, assigned_from, paired_names)
            if not paired:
                continue
            key_src = ctx.code(K.key_arg(call)) if K.key_arg(call) is not None else "key"
            self.report(
                call,
                f"`{ctx.code(call.func)}` by the leaf count of `{tree}` and paired with its leaves: which key "
                "goes to which leaf depends on the flattening order, so adding, removing or "
                "reordering a field silently reshuffles (and correlates across versions) the "
                "randomness of every leaf. " + (
                    # `eqxlint.runtime` imports Equinox: plain JAX elsewhere.
                    f"Use `eqxlint.runtime.split_by_tree({key_src}, {tree})`"
                    if ctx.imports_module("equinox") else
                    f"Build a key tree: `jax.tree.unflatten(treedef, list(jax.random.split({key_src}, "
                    "treedef.num_leaves)))` with `treedef = jax.tree.structure("
                    f"{tree})`"
                ) + " and `jax.tree_util.tree_map` over the resulting key tree.",
            )

    def _num_arg(self, call: cst.Call) -> Optional[cst.BaseExpression]:
        pos = [a for a in call.args if a.keyword is None and not a.star]
        if len(pos) >= 2:
            return pos[1].value
        for a in call.args:
            if a.keyword is not None and a.keyword.value == "num":
                return a.value
        return None

    def _bind(self, target, value, counts: dict, assigned_from: dict) -> None:
        ctx = self.ctx
        if isinstance(target, cst.Name):
            name = target.value
            tree = K.leaves_of(ctx, value)
            if tree is not None:
                counts["__leaves__"][name] = tree
            if isinstance(value, cst.Call) and ctx.qualname(value.func) in K.TREE_STRUCTURE and value.args:
                counts["__treedef__"][name] = ctx.code(value.args[0].value)
            n = K.is_leaf_count(ctx, value, counts)
            if n is not None:
                counts[name] = n
            if isinstance(value, cst.Call) and ctx.qualname(value.func) == K.SPLIT:
                assigned_from[id(value)] = name
        elif isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, cst.Call):
            qn = ctx.qualname(value.func)
            els = [e.value for e in target.elements]
            if qn in K.TREE_FLATTEN and value.args and len(els) == 2:
                tree = ctx.code(value.args[0].value)
                if isinstance(els[0], cst.Name):
                    counts["__leaves__"][els[0].value] = tree
                if isinstance(els[1], cst.Name):
                    counts["__treedef__"][els[1].value] = tree

    def _names_in(self, expr) -> list:
        out = []
        for node in K.iter_pruned(expr):
            if isinstance(node, cst.Name):
                out.append(node.value)
            elif isinstance(node, cst.Call) and self.ctx.qualname(node.func) == K.SPLIT:
                out.append(("split", id(node)))
        return out

    def _paired(self, call, assigned_from: dict, paired: set) -> bool:
        if ("split", id(call)) in paired:
            return True
        name = assigned_from.get(id(call))
        return name is not None and name in paired

    def _is_leaves(self, expr, leaves_names: set) -> bool:
        if isinstance(expr, cst.Name):
            return expr.value in leaves_names
        return K.leaves_of(self.ctx, expr) is not None

    def _mentions_leaves(self, expr, leaves_names: set) -> bool:
        for node in K.iter_pruned(expr):
            if isinstance(node, cst.Name) and node.value in leaves_names:
                return True
            if isinstance(node, (cst.Call, cst.Subscript)) and K.leaves_of(self.ctx, node) is not None:
                return True
        return False
