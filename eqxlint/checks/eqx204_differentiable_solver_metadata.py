"""EQX204 differentiable-solver-metadata: solver state/options/stats crossing a custom-AD boundary
without `eqxi.nondifferentiable*` / `lax.stop_gradient`.

Heuristic (severity `info`). In a function that is not itself an AD rule, a call into custom-AD
code:
- `eqxi.filter_primitive_bind(p, ...)`,
- a function of this module decorated with (or wrapped by) `jax.custom_jvp`/`jax.custom_vjp`/
  `eqx.filter_custom_jvp`/`eqx.filter_custom_vjp`,
- `optimistix` `implicit_jvp`,
is reported when
- an argument is a *metadata variable* — named `options`, `opts`, `state`, `solver_state`,
  `solver`, `stats` or ending in `_options`, `_stats`, `_solver_state` — that was not passed
  through `eqxi.nondifferentiable`, `eqxi.nondifferentiable_backward` or `lax.stop_gradient`
  in the function (directly or via names derived from a marked one); or
- a `stats`-like result of a primitive bind is returned from the function without
  `eqxi.nondifferentiable_backward` / `lax.stop_gradient` (a custom-derivative function's own
  backward rule decides what its outputs' cotangents are, so its results are not judged).

Silent inside custom JVP/VJP/transpose rules (the metadata arrives there as primals whose tangents
the rule asserts are zero, as in lineax) and on metadata that is marked anywhere before the call.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..semantics import names as S
from ..semantics.values import FN
from ..syntax.walker import iter_subtree
from ._modules import iter_local

MARKERS = {
    "equinox.internal.nondifferentiable", "equinox.internal.nondifferentiable_backward",
    "equinox.internal._nondiff.nondifferentiable", "equinox.internal._nondiff.nondifferentiable_backward",
    "jax.lax.stop_gradient", "jax.numpy.stop_gradient",
}
BINDS = {"equinox.internal.filter_primitive_bind"}
IMPLICIT = {"optimistix.internal.implicit_jvp", "optimistix.implicit_jvp", "optimistix._ad.implicit_jvp"}
META_NAMES = {"options", "opts", "state", "solver_state", "solver", "stats"}
META_SUFFIXES = ("_options", "_stats", "_solver_state")


def _is_meta(name: str) -> bool:
    return name in META_NAMES or name.endswith(META_SUFFIXES)


def _is_stats(name: str) -> bool:
    return name == "stats" or name.endswith("_stats")


class DifferentiableSolverMetadata(Rule):
    code = "EQX204"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self.enabled = any(w in ctx.source for w in ("filter_primitive_bind", "custom_jvp", "custom_vjp", "implicit_jvp"))
        self._rules: Optional[dict] = None

    def _target(self, call: cst.Call) -> Optional[tuple]:
        """(description, arguments carrying data) if `call` enters custom-AD code."""
        ctx = self.ctx
        qn = ctx.qualname(call.func)
        pos = [a for a in call.args if a.keyword is None and not a.star]
        if qn in BINDS and pos:
            return f"`{ctx.code(call.func)}({ctx.code(pos[0].value)}, ...)`", call.args[1:]
        if qn in IMPLICIT:
            return f"`{ctx.code(call.func)}`", call.args
        v = ctx.values.of(call.func)
        spec = next((s for s in v.via if s.get("t") in S.CUSTOM_JVP or s.get("t") in S.CUSTOM_VJP), None) \
            if v.kind == FN else None
        if spec is None:
            return None
        kind, nondiff = spec["t"], spec.get("nd") or ()
        if kind == "equinox.filter_custom_vjp":
            # Only the first argument is differentiated; the rest are nondifferentiable.
            args = pos[:1]
        else:
            args = [a for i, a in enumerate(pos) if i not in nondiff]
            if kind == "equinox.filter_custom_jvp":
                args += [a for a in call.args if a.keyword is not None]
            elif kind == "jax.custom_vjp" and len(args) == len(call.args):
                # The backward rule returns `None` as the cotangent of an argument: that is the
                # correct handling, no cotangent flows into it.
                dropped = self._bwd_none_positions(v.ref, len(args))
                args = [a for i, a in enumerate(args) if i not in dropped]
        return f"custom-AD function `{ctx.code(call.func)}`", args

    def _bwd_none_positions(self, ref: str, n: int) -> set:
        """Positions (of `n` differentiated arguments) at which every `return` of the
        function's `defvjp` backward rule (in this file) has a literal `None`."""
        bwd = self.ctx.values.vjp_backwards().get(ref)
        scope = self.ctx.refs.get(bwd) if bwd else None
        if scope is None or scope.kind != "function":
            return set()
        out: Optional[set] = None
        for ret in iter_local(scope.node.body, (cst.Return,)):
            val = ret.value
            if not isinstance(val, cst.Tuple):
                return set()
            els = val.elements
            star = max((i for i, el in enumerate(els) if isinstance(el, cst.StarredElement)), default=-1)
            found = set()
            for i in range(n):
                # Without a starred element, position i; after the last one, count from the end.
                j = i if star < 0 else len(els) - (n - i)
                if star < 0 and len(els) != n:
                    return set()
                if j > star and j < len(els) and isinstance(els[j].value, cst.Name) and els[j].value.value == "None":
                    found.add(i)
            out = found if out is None else out & found
        return out or set()

    def _in_rule(self, scope) -> bool:
        """Inside a function this file registers as a custom rule (`defjvp`, `def_bwd`,
        `eqxi.filter_primitive_transpose(...)`, `ad.primitive_jvps[p] = ...`), or nested in one:
        the metadata arrives there as primals whose tangents the rule asserts are zero."""
        if self._rules is None:
            self._rules = self.ctx.values.registered_rules()
        s = scope
        while s is not None:
            if s.kind in ("function", "lambda") and s.ref in self._rules:
                return True
            s = s.parent
        return False

    # -- marks in the enclosing function ---------------------------------------------------
    def _marked_names(self, fn) -> set:
        cache = fn.info.get("eqx204_marked")
        if cache is not None:
            return cache
        ctx = self.ctx
        marked: set = set()
        explicit: set = set()
        for stmt in iter_subtree(fn.node.body, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            value = stmt.value
            if value is None:
                continue
            has_marker = any(ctx.qualname(c.func) in MARKERS for c in iter_subtree(value, (cst.Call,)))
            derived = any(n.value in marked for n in iter_subtree(value, (cst.Name,)))
            if has_marker or derived:
                targets = [t.target for t in stmt.targets] if isinstance(stmt, cst.Assign) else [stmt.target]
                for t in targets:
                    for n in iter_subtree(t, (cst.Name,)):
                        marked.add(n.value)
                        if has_marker:
                            explicit.add(n.value)
        fn.info["eqx204_marked"] = marked
        fn.info["eqx204_explicit"] = explicit
        return marked

    def visit_Call(self, node: cst.Call) -> None:
        if not self.enabled:
            return
        ctx = self.ctx
        fn = ctx.scope.function
        if fn is None or fn.kind != "function" or self._in_rule(ctx.scope):
            return
        target = self._target(node)
        if target is None:
            return
        desc, args = target
        marked = self._marked_names(fn)
        unmarked = []
        for a in args:
            val = a.value
            if isinstance(val, cst.Name) and _is_meta(val.value) and val.value not in marked:
                unmarked.append(val.value)
        if unmarked:
            names = ", ".join(f"`{n}`" for n in unmarked)
            if ctx.imports_module("equinox"):
                advice = (f"Wrap it first: `{unmarked[0]} = eqxi.nondifferentiable({unmarked[0]}, "
                          f"name=\"{unmarked[0]}\")` (or `lax.stop_gradient` for array state).")
                unmarked_by = "`eqxi.nondifferentiable` / `lax.stop_gradient`"
            else:
                advice = (f"Stop its gradient first (`{unmarked[0]} = jax.tree_util.tree_map("
                          f"lax.stop_gradient, {unmarked[0]})` for its array leaves), or return "
                          "`None` as its cotangent from the backward rule.")
                unmarked_by = "`lax.stop_gradient`"
            self.report(
                node,
                f"Solver metadata {names} passed into {desc} without {unmarked_by}: reverse-mode "
                "AD then computes cotangents for solver state/options, which are not optimisation "
                f"variables (wasted work, or gradients through iteration state). {advice}",
            )
            return
        if self.ctx.qualname(node.func) in BINDS:
            # A primitive's outputs get tangents from its JVP rule; a custom-derivative function
            # decides the cotangents of its outputs itself (its backward rule may drop them).
            self._check_stats_returned(node, desc, fn, fn.info.get("eqx204_explicit", set()))

    def _check_stats_returned(self, call: cst.Call, desc: str, fn, marked: set) -> None:
        # `x, result, stats = filter_primitive_bind(...)` ... `return Solution(..., stats=stats)`
        parent = None
        for anc in reversed(self.ctx.stack):
            if isinstance(anc, cst.Assign) and anc.value is call:
                parent = anc
                break
        if parent is None:
            return
        outs = set()
        for t in parent.targets:
            for n in iter_subtree(t.target, (cst.Name,)):
                if _is_stats(n.value):
                    outs.add(n.value)
        outs -= marked
        if not outs:
            return
        for ret in iter_subtree(fn.node.body, (cst.Return,)):
            if ret.value is None:
                continue
            if any(n.value in outs for n in iter_subtree(ret.value, (cst.Name,))):
                name = sorted(outs)[0]
                self.report(
                    call,
                    f"Solver stats `{name}` returned from {desc} without "
                    "`eqxi.nondifferentiable_backward`: callers can differentiate through "
                    "iteration counts and other metadata. Mark it: "
                    f"`{name} = eqxi.nondifferentiable_backward({name})` before returning.",
                )
                return
