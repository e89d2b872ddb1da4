"""EQX206 enum-without-compile-time-eval: Python branching on an Equinox `Enumeration`
comparison in traced code."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..semantics import cond as C
from ..semantics.values import ARR, KEY, RAW
from ..syntax.walker import iter_subtree

ENUM_BASES = frozenset({"equinox.Enumeration", "equinox.internal.Enumeration", "equinox._enum.Enumeration"})
KNOWN_ENUMS = frozenset(
    f"{pkg}.{mod}RESULTS"
    for pkg in ("optimistix", "lineax", "diffrax")
    for mod in ("", "_solution.")
)
# Class attributes of an Enumeration that are not members.
NON_MEMBERS = frozenset({"where", "promote", "error_if", "branched_error_if", "items"})


class EnumWithoutCompileTimeEval(Rule):
    code = "EQX206"

    # ------------------------------------------------------------------ enumeration facts
    def _enums(self) -> tuple[frozenset, frozenset]:
        """(qualnames of Enumeration classes, local class names that are Enumerations)."""
        ctx = self.ctx
        cached = ctx.facts.get("eqx206.enums")
        if cached is not None:
            return cached
        quals = set(KNOWN_ENUMS)
        local: set = set()
        changed = True
        classes = [s for s in ctx.scopes if s.kind == "class"]
        while changed:
            changed = False
            for s in classes:
                if s.name in local:
                    continue
                for b in s.node.bases:
                    if b.keyword is not None:
                        continue
                    qn = ctx.qualname(b.value)
                    if qn in ENUM_BASES or qn in quals or (
                        isinstance(b.value, cst.Name) and b.value.value in local
                    ):
                        local.add(s.name)
                        if s.parent is ctx.module_scope and ctx.module_name:
                            quals.add(f"{ctx.module_name}.{s.name}")
                        changed = True
                        break
        result = (frozenset(quals), frozenset(local))
        ctx.facts["eqx206.enums"] = result
        return result

    def _member(self, expr) -> Optional[str]:
        """`RESULTS.successful` -> its source text, if `expr` is an Enumeration member."""
        if not isinstance(expr, cst.Attribute) or expr.attr.value.startswith("_") \
                or expr.attr.value in NON_MEMBERS:
            return None
        quals, local = self._enums()
        owner = expr.value
        if isinstance(owner, cst.Name) and owner.value in local:
            return self.ctx.code(expr)
        qn = self.ctx.qualname(owner)
        if qn is not None and qn in quals:
            return self.ctx.code(expr)
        return None

    def _enum_comparison(self, expr) -> Optional[cst.Comparison]:
        if not isinstance(expr, cst.Comparison):
            return None
        if not all(isinstance(c.operator, (cst.Equal, cst.NotEqual)) for c in expr.comparisons):
            return None
        sides = [expr.left] + [c.comparator for c in expr.comparisons]
        if any(self._member(s) for s in sides):
            return expr
        return None

    def _predicates(self) -> frozenset:
        """Module-level functions that return an Enumeration comparison (`is_successful`)."""
        ctx = self.ctx
        cached = ctx.facts.get("eqx206.enumpreds")
        if cached is not None:
            return cached
        out = set()
        for name, defs in ctx.module_scope.defs.items():
            for d in defs:
                if d.kind != "function":
                    continue
                for ret in iter_subtree(d.node.body, (cst.Return,)):
                    if ret.value is not None and any(
                        self._enum_comparison(c) for c in iter_subtree(ret.value, (cst.Comparison,))
                    ):
                        out.add(name)
        result = frozenset(out)
        ctx.facts["eqx206.enumpreds"] = result
        return result

    def _find(self, test) -> Optional[cst.CSTNode]:
        for node in iter_subtree(test, (cst.Comparison, cst.Call, cst.Lambda)):
            if isinstance(node, cst.Comparison) and self._enum_comparison(node):
                return node
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) \
                    and node.func.value in self._predicates() \
                    and self.ctx.scope.lookup_def(node.func.value) \
                    == self.ctx.module_scope.defs.get(node.func.value):
                return node
        return None

    # ------------------------------------------------------------------ handlers
    def _check(self, test, construct: str) -> None:
        ctx = self.ctx
        if ctx.scope.function is None or ctx.values.is_quiet(test):
            return  # module level, or under `jax.ensure_compile_time_eval()` / a tracer guard
        found = self._find(test)
        if found is None:
            return
        # An Enumeration comparison is a `jnp` operation on the members' integer values: staged
        # under a jaxpr trace even between constants, and traced wherever the other side is.
        if type(found) is cst.Comparison:
            sides = [found.left] + [c.comparator for c in found.comparisons]
        else:
            sides = [a.value for a in found.args]
        vals = [ctx.values.of(s) for s in sides]
        cond = C.join(C.STAGED_ONLY, *(v.cond for v in vals if v.kind in (ARR, RAW, KEY)))
        self.report_traced(
            found,
            f"Python {construct} on the Enumeration comparison `{ctx.code(found)}` in traced code "
            "({trace}): under JIT an Enumeration item is a traced integer, so `==` gives a traced "
            "boolean and Python control flow on it raises a concretization error. If the value "
            "is static, wrap the logic in `with jax.ensure_compile_time_eval():`; if it is a "
            "run-time value, use `jnp.where`/`lax.cond`, `RESULTS.where(...)` or "
            "`result.error_if(...)`.",
            cond=cond,
        )

    def visit_If(self, node: cst.If) -> None:
        self._check(node.test, "`if`")

    def visit_While(self, node: cst.While) -> None:
        self._check(node.test, "`while`")

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self._check(node.test, "conditional expression")

    def visit_Assert(self, node: cst.Assert) -> None:
        self._check(node.test, "`assert`")

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "bool" and node.args \
                and self.ctx.qualname(node.func) == "bool":
            self._check(node.args[0].value, "`bool(...)`")
