"""EQX102 jit-in-loop: a jit wrapper built inside a loop, or built and called per call."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..project.paths import is_test_path
from ..semantics import names as S
from ..semantics.tracing import short
from ..semantics.values import FN
from ..syntax.nodes import positional
from ._modules import bound_in, free_names, iter_local, names_in

JITS = frozenset({"jax.jit", "equinox.filter_jit"})
_COMPS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_BOUNDARY = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def _contains(root: cst.CSTNode, node: cst.CSTNode) -> bool:
    from ..syntax.walker import iter_subtree

    return any(n is node for n in iter_subtree(root))


class JitInLoop(Rule):
    code = "EQX102"

    # No-op handlers so that loops and comprehensions are recorded in ctx.stack.
    def visit_For(self, node: cst.For) -> None:
        pass

    def visit_While(self, node: cst.While) -> None:
        pass

    def visit_ListComp(self, node) -> None:
        pass

    def visit_SetComp(self, node) -> None:
        pass

    def visit_GeneratorExp(self, node) -> None:
        pass

    def visit_DictComp(self, node) -> None:
        pass

    # ------------------------------------------------------------------ helpers
    def _loop(self, node: cst.CSTNode) -> Optional[tuple]:
        """The innermost loop (in the current function) whose body re-evaluates `node`, and the
        names that loop binds per iteration."""
        stack = self.ctx.stack
        # stack[-1] is `node` itself (for visit_Call) or the def being visited.
        for anc in reversed(stack[:-1]):
            if isinstance(anc, _BOUNDARY):
                return None
            if isinstance(anc, cst.For):
                if _contains(anc.iter, node) or (anc.orelse is not None and _contains(anc.orelse, node)):
                    continue
                return anc, bound_in(anc.body) | names_in(anc.target)
            if isinstance(anc, cst.While):
                if anc.orelse is not None and _contains(anc.orelse, node):
                    continue
                return anc, bound_in(anc.body)
            if isinstance(anc, _COMPS):
                comp = anc.for_in
                if _contains(comp.iter, node):
                    continue
                bound = set()
                c = comp
                while c is not None:
                    bound |= names_in(c.target)
                    c = c.inner_for_in
                return anc, bound
        return None

    def _fun_arg(self, call: cst.Call) -> Optional[cst.BaseExpression]:
        pos = positional(call)
        if pos:
            return pos[0].value
        for a in call.args:
            if a.keyword is not None and a.keyword.value == "fun":
                return a.value
        return None

    def _varies(self, call: cst.Call, fun: cst.BaseExpression, bound: set) -> bool:
        """Does the wrapper (function or jit options) change from one iteration to the next?"""
        for a in call.args:
            if a.value is fun:
                if isinstance(fun, cst.Lambda):
                    if free_names(fun) & bound:
                        return True
                elif names_in(fun) & bound:
                    return True
            elif names_in(a.value) & bound:
                return True
        return False

    def _assigned_from_call(self, fn_node, name: str) -> Optional[cst.Call]:
        for node in iter_local(fn_node.body, (cst.Assign,)):
            if isinstance(node.value, cst.Call) and any(
                isinstance(t.target, cst.Name) and t.target.value == name for t in node.targets
            ):
                return node.value
        return None

    def _fresh_call(self, call: cst.Call) -> Optional[str]:
        """`functools.partial(...)` or a JAX/Equinox transform (`jax.grad(f)`, `jax.vmap(f)`):
        a new callable object each time it is evaluated (no equality, so no cache hit). Other
        calls are unknown: `HashablePartial(f, n)` is built per call precisely to compare equal."""
        qn = self.ctx.qualname(call.func)
        if qn in ("functools.partial", "partial"):
            return "a new `functools.partial` object"
        if qn in S.TRANSFORM_KIND:
            return f"a new `{short(qn)}(...)` function"
        return None

    def _fresh(self, fun, fn, jit: str) -> Optional[str]:
        """What makes the wrapped callable a new object each time the expression is evaluated
        (so jit's cache, keyed on the callable, misses and it retraces and recompiles), or None
        when it may be the same function every time (a module-level `def`, `jnp.einsum`, a
        parameter, a function attribute)."""
        ctx = self.ctx
        if isinstance(fun, cst.Lambda):
            return "a new lambda"
        if isinstance(fun, cst.Call):
            return self._fresh_call(fun)
        if isinstance(fun, cst.Attribute):
            # A bound method is a new object on every attribute access; jit keeps its trace
            # cache weakly per callable, so re-wrapping `obj.m` retraces on every call (measured
            # on JAX 0.10: as slow as a lambda), whether `obj` lives long or not.
            # `eqx.filter_jit` compares the callable by equality instead: a bound method of the
            # same object hits its cache; one of an object built anew (no `__eq__`) does not.
            if isinstance(fun.value, cst.Call) and ctx.qualname(fun.value.func) == "super":
                bound = True
            else:
                v = ctx.values.of(fun)
                bound = v.kind == FN and v.skip >= 1 and ctx.values.of(fun.value).kind != FN
            if not bound:
                return None
            if jit == "jax.jit":
                return "a bound method (a new object on every attribute access)"
            if (isinstance(fun.value, cst.Name) and fn is not None and fun.value.value not in fn.params
                    and self._assigned_from_call(fn.node, fun.value.value) is not None):
                return f"a method bound to `{fun.value.value}`, an object made on every call"
            return None
        if isinstance(fun, cst.Name) and fn is not None and fun.value not in fn.params:
            made = self._assigned_from_call(fn.node, fun.value)
            if made is not None:
                what = self._fresh_call(made)
                return f"`{fun.value}`, {what} made on every call" if what else None
        return None

    def _called_in(self, call: cst.Call, loop_node) -> bool:
        """The wrapper is called in the loop: `jit(f)(x)`, or `g = jit(f)` then `g(...)`."""
        stack = self.ctx.stack
        parent = stack[-2] if len(stack) >= 2 else None
        if isinstance(parent, cst.Call) and parent.func is call:
            return True
        from ..syntax.walker import iter_subtree

        target = None
        for node in iter_subtree(loop_node, (cst.Assign,)):
            if node.value is call and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                target = node.targets[0].target.value
                break
        if target is None:
            return False
        for node in iter_subtree(loop_node, (cst.Call,)):
            if isinstance(node.func, cst.Name) and node.func.value == target:
                return True
        return False

    # ------------------------------------------------------------------ handlers
    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        if qn not in JITS:
            return
        fun = self._fun_arg(node)
        if fun is None or is_test_path(ctx.path):
            return
        name = short(qn)
        loop = self._loop(node)
        if loop is not None:
            loop_node, bound = loop
            if self._varies(node, fun, bound):
                return  # a different function each iteration: wrapping it there is the point
            if not self._called_in(node, loop_node):
                return  # built per item and stored/registered, not re-built to be called
            kind = "loop" if isinstance(loop_node, (cst.For, cst.While)) else "comprehension"
            what = "lambda ..." if isinstance(fun, cst.Lambda) else _one_line(ctx, fun)
            fresh = self._fresh(fun, ctx.scope.function, qn)
            cost = (
                f"it wraps {fresh}, which jit's compilation cache does not recognise, so every "
                "iteration retraces and recompiles" if fresh else
                "the wrapped function is the same each time, so nothing retraces, but every "
                "iteration re-creates the wrapper and redoes the cache lookup"
            )
            self.report(
                node,
                f"`{name}({what})` is built inside a "
                f"{kind} body: {cost}. Hoist the wrapper out of the {kind} (`step = {name}(...)` "
                "once, then call `step(...)` inside it).",
                requires=self._eager(),
            )
            return
        # `jax.jit(f)(x)`: built and called on every call of the enclosing function.
        stack = ctx.stack
        parent = stack[-2] if len(stack) >= 2 else None
        if not (isinstance(parent, cst.Call) and parent.func is node):
            return
        fn = ctx.scope.function
        if fn is None or fn.kind == "lambda":
            return  # a lambda is usually a one-shot callable handed to something that traces it
        local = set(fn.params) | bound_in(fn.node.body)
        if fn.kind == "function" and fn.name == "main":
            return  # a script's entry point runs once
        where = f"`{fn.name}`"
        nested = [d for d in ctx.resolve_functions(fun, ctx.scope)
                  if d.kind in ("function", "lambda") and d.parent is not None and d.parent.kind in ("function", "lambda")]
        if isinstance(fun, cst.Lambda):
            nested = [ctx.scope_of[id(fun)]] if id(fun) in ctx.scope_of else []
        if nested or isinstance(fun, cst.Lambda):
            captured = sorted(set().union(*(free_names(d.node) for d in nested)) & local) if nested else []
            what = "a lambda" if isinstance(fun, cst.Lambda) else f"`{nested[0].name}`"
            if captured:
                names = ", ".join(f"`{n}`" for n in captured[:3])
                them = "it" if len(captured) == 1 else "them"
                how = ("wrap it once with `{}` (which keeps non-array arguments static)".format(name)
                       if name.startswith("eqx.") else
                       "jit it once (with `static_argnames=` for Python values)")
                advice = (
                    f"It closes over {names}, so it cannot simply move out of {where}: define it "
                    f"once with {names} as parameter{'s' if len(captured) > 1 else ''}, {how}, "
                    f"and pass {them} in."
                )
            else:
                advice = f"Define it once, outside {where}, and jit it once."
            self.report(
                node,
                f"`{name}(...)(...)` in {where} jits {what} made anew on every call of {where}: "
                f"a new function misses the compilation cache, so every call retraces and "
                f"recompiles. {advice}",
                requires=self._eager(),
            )
            return
        # A stable function (a module-level `def`, `jnp.einsum`, a parameter) re-wrapped per
        # call costs a wrapper and a cache lookup, no retrace: left alone (setup code does it).
        fresh = self._fresh(fun, fn, qn)
        if fresh is None:
            return
        if isinstance(fun, cst.Attribute):
            advice = (f"Wrap it once, where the object is made (or jit the method itself), and "
                      "call that wrapper.")
        else:
            advice = (f"Define the function once, jit it once (`{name}` at module level, "
                      f"{'with non-array arguments static' if name.startswith('eqx.') else 'with `static_argnames=` for Python values'}), "
                      "and pass the per-call values in as arguments.")
        self.report(
            node,
            f"`{name}({_one_line(ctx, fun)})(...)` in {where} jits {fresh}: jit's compilation "
            f"cache is keyed on the callable and does not recognise it, so every call of {where} "
            f"retraces and recompiles. {advice}",
            requires=self._eager(),
        )

    def _eager(self) -> Optional[tuple]:
        """The finding holds where the enclosing function is never traced (in a traced
        function, a nested jit is only traced along with it)."""
        fn = self.ctx.scope.function
        if fn is None:
            return None
        return ("not", ("traced", fn.ref, ["*"]))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        ctx = self.ctx
        found = None
        for dec in node.decorators:
            expr = dec.decorator
            qn = None
            if isinstance(expr, cst.Call):
                qn = ctx.qualname(expr.func)
                if qn in ("functools.partial", "partial") and expr.args:
                    qn = ctx.qualname(expr.args[0].value)
            else:
                qn = ctx.qualname(expr)
            if qn in JITS:
                found = (dec, qn)
                break
        if found is None or is_test_path(ctx.path):
            return
        loop = self._loop(node)
        if loop is None:
            return
        loop_node, bound = loop
        if free_names(node) & bound:
            return  # closes over per-iteration values: a different function each iteration
        dec, qn = found
        outer = ctx.scope.parent.function if ctx.scope.parent is not None else None
        self.report(
            dec,
            f"`@{short(qn)}` function `{node.name.value}` is defined inside a loop body: each "
            "iteration creates a new function object, so the jit cache misses and it retraces "
            "and recompiles every iteration. Define the jitted function once, outside the loop.",
            requires=("not", ("traced", outer.ref, ["*"])) if outer is not None else None,
        )


def _one_line(ctx, node, limit: int = 40) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
