"""EQX108 dummy-array-for-shape: dummy arrays built only to read a result's shape/dtype."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..project.paths import is_test_path
from ._modules import iter_local, iter_with_parents

_DUMMIES = frozenset(
    f"{m}.{f}" for m in ("jax.numpy", "numpy")
    for f in ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like")
)
_META = frozenset({"shape", "dtype", "ndim", "size"})
_STRUCTURE = frozenset({"jax.tree_util.tree_structure", "jax.tree.structure"})
_TREE_MAP = frozenset({"jax.tree_util.tree_map", "jax.tree.map", "jax.tree_map"})
_SHAPE_EVAL = frozenset({"jax.eval_shape", "equinox.filter_eval_shape", "jax.make_jaxpr",
                         "equinox.filter_make_jaxpr"})


class DummyArrayForShape(Rule):
    code = "EQX108"

    def end_file(self) -> None:
        ctx = self.ctx
        if is_test_path(ctx.path):
            return
        # Only a function whose own body (nested functions, lambdas and classes are not
        # entered) makes a dummy array can report.
        candidates = set()
        for call, scope in ctx.calls:
            if scope.kind == "function" and ctx.qualname(call.func) in _DUMMIES:
                candidates.add(id(scope))
        if not candidates:
            return
        for fn in ctx.scopes:
            if fn.kind != "function" or id(fn) not in candidates:
                continue
            if any(s.qualname in _SHAPE_EVAL for s in fn.sites):
                continue
            self._check_function(fn)

    def _dummy_names(self, nodes) -> dict:
        ctx = self.ctx
        out = {}
        for node in nodes:
            if (type(node) is cst.Assign and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name)
                    and isinstance(node.value, cst.Call) and ctx.qualname(node.value.func) in _DUMMIES):
                out[node.targets[0].target.value] = node
        return out

    def _fed_dummy(self, call: cst.Call, dummies: dict) -> Optional[str]:
        """The dummy input a call is fed (inline constructor or a dummy-bound name)."""
        ctx = self.ctx
        qn = ctx.qualname(call.func) or ""
        if qn.startswith(("numpy.", "jax.numpy.", "jax.lax.", "jax.ShapeDtypeStruct")) or qn in _SHAPE_EVAL:
            return None
        if qn in _DUMMIES or qn in ("isinstance", "len", "print", "type"):
            return None
        for a in call.args:
            for sub in iter_local(a.value, (cst.Call, cst.Name)):
                if isinstance(sub, cst.Call) and ctx.qualname(sub.func) in _DUMMIES:
                    return _one_line(ctx, sub)
                if isinstance(sub, cst.Name) and sub.value in dummies:
                    return sub.value
        return None

    def _maybe_fed(self, local: list, dummies: dict) -> set:
        """Ids of the calls with a dummy (a dummy constructor call or a dummy-bound name)
        somewhere in an argument: the only calls `_fed_dummy` can accept. Found by walking up
        from each dummy, instead of searching every call's arguments."""
        ctx = self.ctx
        parent_of = {id(node): parent for node, parent in local}
        out: set = set()
        for node, parent in local:
            if isinstance(node, cst.Name):
                if node.value not in dummies:
                    continue
            elif not (isinstance(node, cst.Call) and ctx.qualname(node.func) in _DUMMIES):
                continue
            child = node
            while parent is not None:
                if isinstance(parent, cst.Arg) and parent.value is child:
                    owner = parent_of.get(id(parent))
                    if isinstance(owner, cst.Call):
                        out.add(id(owner))
                child, parent = parent, parent_of.get(id(parent))
        return out

    def _check_function(self, fn) -> None:
        ctx = self.ctx
        body = fn.node.body
        local = list(iter_with_parents(body))
        dummies = self._dummy_names(node for node, _ in local)
        fed = self._maybe_fed(local, dummies)
        if not fed:
            return
        # Each dummy-bound name must be used only as call input (else it is real data).
        reported = set()
        results: dict = {}
        for node, _ in local:
            if (type(node) is cst.Assign and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name)
                    and isinstance(node.value, cst.Call)):
                results.setdefault(node.targets[0].target.value, []).append(node.value)
        uses: dict = {}
        for node, parent in iter_with_parents(body, into_scopes=True):
            if isinstance(node, cst.Name):
                if isinstance(parent, cst.Attribute) and parent.attr is node:
                    continue
                if isinstance(parent, cst.AssignTarget) or (isinstance(parent, cst.Arg) and parent.keyword is node):
                    continue
                uses.setdefault(node.value, []).append(parent)
        for node, parent in local:
            if id(node) not in fed or id(node) in reported:
                continue
            dummy = self._fed_dummy(node, dummies)
            if dummy is None:
                continue
            how = None
            if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in _META:
                how = f"`.{parent.attr.value}`"
            elif isinstance(parent, cst.Arg):
                how = self._structure_use(parent, node)
            else:
                target = None
                for name, calls in results.items():
                    if any(c is node for c in calls):
                        target = name
                if target is not None and len(results[target]) == 1:
                    ps = uses.get(target, [])
                    if ps and all(self._meta_use(p, target) for p in ps):
                        how = f"the shape/dtype/structure (via `{target}`)"
            if how is None:
                continue
            if isinstance(dummy, str) and dummy in dummies:
                if any(not isinstance(p, cst.Arg) for p in uses.get(dummy, [])):
                    continue  # the "dummy" is used as data too
            reported.add(id(node))
            eqx = ctx.alias_for("equinox") or "eqx"
            also = f" (`{eqx}.filter_eval_shape` for Modules / mixed PyTrees)" if ctx.imports_module("equinox") else ""
            head = f"`{_one_line(ctx, node.func)}` is run on a dummy array (`{dummy}`) only to read {how} of its result"
            fix = (f"Use `jax.eval_shape(f, jax.ShapeDtypeStruct(shape, dtype))`{also}, which "
                   "computes shapes and dtypes without running anything.")
            # Eager: it runs. Traced (jitted anywhere in the project): it is only traced, and XLA
            # drops the unused result, so the cost is trace time and clarity, not run time.
            self.report(
                node,
                f"{head}: run eagerly, that allocates the input and executes the computation for "
                "nothing (no trace of this function was found; under `jit` it would be traced and "
                f"dropped as dead code instead). {fix}",
                requires=("not", ("traced", fn.ref, ["*"])),
            )
            self.report_traced(
                node,
                f"{head} ({{trace}}): under tracing the dummy and the call are traced into the "
                "computation only to be dropped as dead code, so nothing runs, but tracing does the "
                f"work and the intent is hidden. {fix}",
                scope=fn,
            )

    def _meta_use(self, parent, name: str) -> bool:
        if isinstance(parent, cst.Attribute):
            return isinstance(parent.value, cst.Name) and parent.attr.value in _META
        if isinstance(parent, cst.Arg):
            return self._structure_use(parent, None) is not None
        return False

    def _structure_use(self, arg: cst.Arg, call) -> Optional[str]:
        """The Arg is an argument of tree_structure(...) or tree_map(lambda a: a.shape, ...)."""
        outer = None
        # Find the Call owning this Arg by scanning the enclosing statement's calls.
        for c in self._calls_with_arg(arg):
            outer = c
            break
        if outer is None:
            return None
        qn = self.ctx.qualname(outer.func)
        if qn in _STRUCTURE:
            return f"the tree structure (`{qn.rsplit('.', 1)[-1]}`)"
        if qn in _TREE_MAP and outer.args and isinstance(outer.args[0].value, cst.Lambda):
            lam = outer.args[0].value
            b = lam.body
            if isinstance(b, cst.Attribute) and b.attr.value in _META and outer.args[0] is not arg:
                return f"the per-leaf `.{b.attr.value}`"
        return None

    def _calls_with_arg(self, arg: cst.Arg):
        owner = getattr(self, "_arg_owner", None)
        if owner is None:
            owner = self._arg_owner = {}
            for c in iter_local(self.ctx.module, (cst.Call,), into_scopes=True):
                for a in c.args:
                    owner[id(a)] = c
        c = owner.get(id(arg))
        return [c] if c is not None else []


def _one_line(ctx, node, limit: int = 50) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
