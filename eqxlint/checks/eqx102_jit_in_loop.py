"""EQX102 jit-in-loop: a jit wrapper built inside a loop, or built and called per call."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..project.paths import is_test_path
from ..semantics.tracing import short
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

    def _assigned_from_call(self, fn_node, name: str) -> bool:
        for node in iter_local(fn_node.body, (cst.Assign,)):
            if isinstance(node.value, cst.Call) and any(
                isinstance(t.target, cst.Name) and t.target.value == name for t in node.targets
            ):
                return True
        return False

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
            cost = (
                "a fresh lambda has a new identity each time, so every iteration retraces and "
                "recompiles" if isinstance(fun, cst.Lambda) else
                "every iteration re-creates the wrapper and redoes the cache lookup (and "
                "retraces when the wrapped object changes identity)"
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
        for a in node.args:
            if a.value is fun and isinstance(fun, (cst.Name, cst.Attribute, cst.Lambda)):
                continue
            if names_in(a.value) & local:
                return  # configured per call (`out_shardings=s`, `partial(f, n)`): not hoistable
        if isinstance(fun, cst.Name) and self._assigned_from_call(fn.node, fun.value):
            return  # `f = HashablePartial(g, mesh)`: a per-call function object built on purpose
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
        self.report(
            node,
            f"`{name}({_one_line(ctx, fun)})(...)` builds a jit wrapper and calls it immediately "
            f"inside {where}: every call of {where} re-creates the wrapper and redoes the "
            f"compilation-cache lookup. Build the wrapper once (`{name}` at module level, or "
            f"decorate the function with `@{name}`) and call that.",
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
