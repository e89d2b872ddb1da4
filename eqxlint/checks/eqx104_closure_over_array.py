"""EQX104 closure-over-array: a closure over local JAX arrays passed to a solver or operator."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ._helpers import short
from ._modules import (
    bound_in, free_names, is_array_annotation, is_scalar_annotation, iter_local, iter_with_parents,
)

# package -> {callable name: ((position, keyword), ...)} of function arguments.
_F = ((0, "fn"),)
CONSUMERS = {
    "lineax": {"JacobianLinearOperator": _F, "FunctionLinearOperator": _F},
    "optimistix": {"root_find": _F, "minimise": _F, "least_squares": _F, "fixed_point": _F},
    "diffrax": {"ODETerm": ((0, "vector_field"),)},
    "jax": {
        "custom_root": ((0, "f"), (2, "solve"), (3, "tangent_solve")),
        "custom_linear_solve": ((0, "matvec"), (2, "solve"), (3, "transpose_solve")),
    },
}
_ARRAY_CALL_PREFIXES = ("jax.numpy.", "jax.random.", "jax.lax.", "jax.nn.", "jax.scipy.")
_PARAM_NAMES = frozenset({"params", "theta", "weights", "model", "parameters"})
_CONVERT = frozenset({"equinox.filter_closure_convert", "jax.closure_convert"})


def consumer(qn: Optional[str]):
    if not qn:
        return None
    top, _, rest = qn.partition(".")
    table = CONSUMERS.get(top)
    if table is None:
        return None
    last = qn.rsplit(".", 1)[-1]
    if top == "jax" and not qn.startswith("jax.lax."):
        return None
    return table.get(last)


def _display(qn: str) -> str:
    if qn.startswith("jax."):
        return short(qn)
    return qn.split(".", 1)[0] + "." + qn.rsplit(".", 1)[-1]


class ClosureOverArray(Rule):
    code = "EQX104"

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        spec = consumer(qn)
        if spec is None:
            return
        scope = ctx.scope
        if scope.function is None:
            return  # module level: closes over globals, not locals
        for arg in ctx.function_args(node, spec):
            self._check_arg(node, qn, arg, scope)

    def _check_arg(self, call, qn: str, arg, scope) -> None:
        ctx = self.ctx
        if isinstance(arg, cst.Call) and ctx.qualname(arg.func) in _CONVERT:
            return
        targets = []
        if isinstance(arg, cst.Lambda):
            s = ctx.scope_of.get(id(arg))
            if s is not None:
                targets.append(s)
        elif isinstance(arg, cst.Name):
            if self._converted(scope.function, arg.value):
                return
            targets = [
                d for d in ctx.resolve_functions(arg, scope)
                if d.parent is not None and d.parent.kind in ("function", "lambda")
            ]
            fn = scope.function
            if not targets and fn is not None:
                for node in iter_local(fn.node.body, (cst.Assign,)):
                    if isinstance(node.value, cst.Lambda) and any(
                        isinstance(t.target, cst.Name) and t.target.value == arg.value for t in node.targets
                    ):
                        s = ctx.scope_of.get(id(node.value))
                        if s is not None:
                            targets = [s]
        for target in targets:
            captured = self._captured_arrays(target)
            if not captured:
                continue
            what = "lambda" if target.kind == "lambda" else f"`{target.name}`"
            names = ", ".join(f"`{n}` ({why})" for n, why in captured[:3])
            eqx = ctx.alias_for("equinox") or "eqx"
            self.report(
                arg,
                f"The {what} passed to `{_display(qn)}` closes over {names}: closed-over arrays are "
                "invisible to the solver's PyTree handling, so under jit/AD they leak as tracers "
                "or are silently treated as constants (no gradient). Convert it first: "
                f"`fn = {eqx}.filter_closure_convert(fn, *example_args)`, or pass the values "
                "through `args`.",
            )

    def _converted(self, fn, name: str) -> bool:
        if fn is None:
            return False
        for node in iter_local(fn.node.body, (cst.Assign,)):
            if (isinstance(node.value, cst.Call) and self.ctx.qualname(node.value.func) in _CONVERT
                    and any(isinstance(t.target, cst.Name) and t.target.value == name for t in node.targets)):
                return True
        return False

    def _captured_arrays(self, target) -> list:
        free = free_names(target.node)
        out = []
        s = target.parent
        while s is not None and s.kind in ("function", "lambda") and free:
            here = set(s.params) | bound_in(s.node.body)
            for name in sorted(free & here):
                why = self._is_array(s, name)
                if why:
                    out.append((name, why))
            free = free - here
            s = s.parent
        return out

    def _is_array(self, fn, name: str, depth: int = 0) -> Optional[str]:
        ctx = self.ctx
        if name in fn.params and fn.kind == "function":
            p = fn.node.params
            for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                if prm.name.value != name:
                    continue
                if prm.annotation is not None:
                    if is_scalar_annotation(ctx, prm.annotation):
                        return None
                    if is_array_annotation(ctx, prm.annotation):
                        return f"an array parameter of `{fn.name}`"
                    return None
                if fn.traced and name not in ("self", "cls") and not self._static_param(fn, name):
                    return f"a traced parameter of `{fn.name}`"
                if prm.default is None and self._array_evidence(fn, name):
                    return f"a parameter of `{fn.name}` used as an array"
            return None
        for node in iter_local(fn.node.body, (cst.Assign,)):
            if not any(isinstance(t.target, cst.Name) and t.target.value == name for t in node.targets):
                continue
            if self._array_expr(node.value, fn, depth):
                return f"a JAX array computed in `{fn.name}`"
        return None

    def _array_expr(self, expr, fn, depth: int) -> bool:
        ctx = self.ctx
        if isinstance(expr, cst.Call):
            qn = ctx.qualname(expr.func) or ""
            return qn.startswith(_ARRAY_CALL_PREFIXES) and not qn.startswith("jax.numpy.dtype")
        if isinstance(expr, cst.BinaryOperation):
            return self._array_expr(expr.left, fn, depth) or self._array_expr(expr.right, fn, depth)
        if isinstance(expr, cst.Name) and depth < 3:
            return bool(self._is_array(fn, expr.value, depth + 1))
        return False

    def _array_evidence(self, fn, name: str) -> bool:
        """An unannotated parameter the function itself treats as JAX data: passed to a
        jax.numpy/jax.random/lax/nn call, or read for `.shape`/`.dtype`/`.ndim`/`.T`, or named
        like model parameters (`params`, `theta`, `weights`, `model`)."""
        if name in _PARAM_NAMES:
            return True
        ctx = self.ctx
        for node, parent in iter_with_parents(fn.node.body, into_scopes=True):
            if not (isinstance(node, cst.Name) and node.value == name):
                continue
            if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in (
                "shape", "dtype", "ndim", "T", "at", "astype"
            ):
                return True
        for call in iter_local(fn.node.body, (cst.Call,), into_scopes=True):
            qn = ctx.qualname(call.func) or ""
            if qn.startswith(_ARRAY_CALL_PREFIXES):
                for a in call.args:
                    if isinstance(a.value, cst.Name) and a.value.value == name:
                        return True
        return False

    def _static_param(self, fn, name: str) -> bool:
        for site in fn.sites:
            for kw in ("static_argnames", "static_argnums"):
                if site.keyword(kw) is not None:
                    return True  # be conservative: any static spec
        return False
