"""EQX104 closure-over-array: a closure over local arrays or parameters passed where the callee
does not closure-convert it: a function argument of a custom JVP/VJP function, the vector field
of a `diffrax.diffeqsolve` with `BacksolveAdjoint`, a lineax operator built with
`closure_convert=False`. (lineax operators by default, optimistix solvers and
`lax.custom_root`/`custom_linear_solve` convert closures themselves: silent there.)"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..semantics import cond as C
from ..semantics import names as S
from ..semantics.values import ARR, FN, Q, RAW
from ._helpers import keyword, positional, short

LINEAX_OPERATORS = frozenset({"lineax.FunctionLinearOperator", "lineax.JacobianLinearOperator"})
DIFFEQSOLVE = "diffrax.diffeqsolve"
BACKSOLVE = "BacksolveAdjoint"
# Libraries whose functions are never custom-derivative functions of the project.
_LIBRARIES = ("jax.", "equinox.", "numpy.", "lineax.", "optimistix.", "diffrax.", "optax.", "flax.")


class ClosureOverArray(Rule):
    code = "EQX104"

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.scope.function is None:
            return  # module level: closures there capture globals, not per-call values
        func = ctx.values.of(node.func)
        if func.kind == FN and any(s.get("t") in S.CUSTOM_JVP | S.CUSTOM_VJP for s in func.via):
            kind = next(s["t"] for s in func.via if s.get("t") in S.CUSTOM_JVP | S.CUSTOM_VJP)
            for a in node.args:
                self._check(a.value, ("custom", f"`{ctx.code(node.func)}` (a `{short(kind)}` function)"), None)
            return
        if func.kind == Q and func.raw and "." in func.raw and not (func.ref or func.raw).startswith(_LIBRARIES):
            # A project function of another module: the project decides whether it is custom.
            for a in node.args:
                self._check(a.value, ("custom", f"`{ctx.code(node.func)}` (a custom JVP/VJP function)"),
                            ("custom", func.raw))
            return
        qn = ctx.qualname(node.func)
        if qn in LINEAX_OPERATORS:
            conv = keyword(node, "closure_convert")
            if conv is None or ctx.values.of(conv.value).lit is not False:
                return  # lineax closure-converts by default
            pos = positional(node)
            fn = pos[0].value if pos else (keyword(node, "fn").value if keyword(node, "fn") else None)
            if fn is not None:
                self._check(fn, ("lineax", f"`lx.{qn.rsplit('.', 1)[-1]}`"), None)
        elif qn == DIFFEQSOLVE:
            adjoint = keyword(node, "adjoint")
            if adjoint is None:
                return
            av = ctx.values.of(adjoint.value)
            if not (av.ref or "").startswith("diffrax.") or not (av.ref or "").endswith(BACKSOLVE):
                return
            pos = positional(node)
            terms = pos[0].value if pos else (keyword(node, "terms").value if keyword(node, "terms") else None)
            for fn in self._vector_fields(terms):
                self._check(fn, ("backsolve", "`diffrax.diffeqsolve` with `BacksolveAdjoint`"), None)

    # ------------------------------------------------------------------ the closure
    def _check(self, expr, what: tuple, requires: Optional[tuple]) -> None:
        ctx = self.ctx
        v = ctx.values.of(expr)
        if v.kind != FN or v.via or not v.ref:
            return  # not a plain function (closure-converted, transformed, unknown)
        scope = ctx.refs.get(v.ref)
        if scope is None or scope.kind not in ("function", "lambda"):
            return
        captured = self._captured_arrays(scope)
        if not captured:
            return
        names = ", ".join(f"`{n}` ({why})" for n, why, _ in captured[:3])
        fn_text = "lambda" if scope.kind == "lambda" else f"`{scope.name}`"
        eqx = ctx.alias_for("equinox") if ctx.imports_module("equinox") else None
        convert = (
            f"`{eqx}.filter_closure_convert(fn, *example_args)`" if eqx
            else "`jax.closure_convert(fn, *example_args)` (it returns the function and its constants)"
        )
        first = captured[0][0]
        kind, callee = what
        if kind == "custom":
            msg = (
                f"The {fn_text} passed to {callee} closes over {names}: a custom JVP/VJP rule only "
                f"sees the function's arguments, so when `{first}` is differentiated its tracer "
                "reaches the rule through the closure and JAX raises an UnexpectedTracerError "
                "(JAX's `nondiff_argnums` caveat). Pass the values as arguments, or convert the "
                f"function first: {convert}."
            )
        elif kind == "backsolve":
            msg = (
                f"The vector field given to {callee} closes over {names}: `BacksolveAdjoint` "
                "computes gradients only with respect to `terms`, `y0` and `args`, so "
                f"differentiating with respect to `{first}` through this closure raises a "
                f"CustomVJPException. Pass `{first}` through `args=` (the vector field's third "
                "argument) instead."
            )
        else:
            msg = (
                f"The {fn_text} given to {callee} with `closure_convert=False` closes over {names}: "
                "the operator then does not see these arrays as its leaves, so under jit or AD "
                "they can leak out of lineax's solves as tracers or get no derivative. Drop "
                "`closure_convert=False` (lineax converts the closure for you), or pass the "
                "arrays through `args`."
            )
        if requires is None:
            self.report(expr, msg)
        else:
            self.report(expr, msg, requires=requires)

    def _captured_arrays(self, scope) -> list:
        """[(name, why, owner)] of the closed-over values that depend on the enclosing function's
        inputs and are (or may be) arrays: arrays computed from parameters, array (or PyTree)
        parameters, parameters used as arrays."""
        ctx = self.ctx
        out = []
        for name, (w, owner, uses) in sorted(ctx.values.captures(scope).items()):
            if w.kind not in (ARR, RAW) or not (w.cond - C.STAGED_ONLY):
                continue  # static values, functions, constants computed in place
            who = f"`{owner.name}`" if owner.name else "the enclosing lambda"
            if w.src is not None and w.src == name:
                fact = _param_fact(ctx, owner, name)
                k = fact.get("k")
                if k in ("static", "callable", "self", "class", "keyname", "key", "container"):
                    continue
                if k == "array" or w.kind == ARR:
                    out.append((name, f"an array parameter of {who}", owner))
                elif "call" in uses:
                    continue  # a function the closure calls
                elif k == "pytree" or fact.get("a") or "array" in uses:
                    out.append((name, f"a parameter of {who} used as an array", owner))
            elif w.kind == ARR:
                out.append((name, f"an array computed in {who} from its arguments", owner))
        return out

    def _vector_fields(self, terms) -> list:
        """The vector fields of `ODETerm(f)` (also inside `MultiTerm(...)`), written in the call
        or bound to a name in the enclosing function."""
        ctx = self.ctx
        if terms is None:
            return []
        if type(terms) is cst.Name:
            fn = ctx.scope.function
            for assign, s in ctx.assigns:
                if s is fn and any(type(t.target) is cst.Name and t.target.value == terms.value for t in assign.targets):
                    terms = assign.value
                    break
        if type(terms) is not cst.Call:
            return []
        qn = ctx.qualname(terms.func)
        if qn == "diffrax.ODETerm":
            pos = positional(terms)
            kw = keyword(terms, "vector_field")
            return [pos[0].value] if pos else [kw.value] if kw else []
        if qn == "diffrax.MultiTerm":
            out = []
            for a in terms.args:
                out.extend(self._vector_fields(a.value))
            return out
        return []


def _param_fact(ctx, owner, name: str) -> dict:
    summ = ctx.values.summary(owner)
    for fact in (summ.params if summ is not None else ()):
        if fact["n"] == name:
            return fact
    return {}
