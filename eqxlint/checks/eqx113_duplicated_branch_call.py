"""EQX113 duplicated-branch-call: the same heavy call in two or more branches of a
`lax.cond`/`lax.switch`."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..semantics import names as S
from ..semantics import types as TY
from ..semantics.values import ARRAY_NAMESPACES, FN, INST
from ..syntax.walker import iter_subtree
from ._cond import branch_scope, cond_branches

# Transforms whose result, called in a branch, traces and compiles the function again.
_TRANSFORMED = frozenset(q for q, k in S.TRANSFORM_KIND.items() if k in ("ad", "vmap", "fvmap"))


class DuplicatedBranchCall(Rule):
    code = "EQX113"
    options = {"min-statements": 3}

    # ------------------------------------------------------------ heaviness
    def _heavy(self, call: cst.Call) -> Optional[str]:
        """Why a call is expensive to compile twice, or None for cheap or unknown ones."""
        ctx = self.ctx
        func = call.func
        if type(func) is cst.Call:
            iq = ctx.qualname(func.func) if type(func.func) in (cst.Name, cst.Attribute) else None
            return "a transformed function" if iq in _TRANSFORMED else None
        if type(func) not in (cst.Name, cst.Attribute):
            return None
        qn = ctx.qualname(func)
        if qn is not None:
            if qn in S.HEAVY_CALLS or qn.startswith(S.HEAVY_PREFIXES):
                return "an expensive routine"
            if qn.startswith(("jax.", "numpy.", "math.", "equinox.", "builtins")) or qn.startswith(ARRAY_NAMESPACES):
                return None
        v = ctx.values.of(func)
        if v.kind == FN and v.ref and not v.via:
            scope = ctx.refs.get(v.ref)
            what = self._nontrivial(scope) if scope is not None and scope.kind == "function" else None
            if what is not None:
                return f"{'a method' if scope.cls is not None else 'a function'} {what}"
            return None  # an accessor, a short helper, or a function whose body is not here
        if v.kind == INST:
            is_mod, _ = TY.module_of_ref(ctx, v.ref)
            if is_mod:
                return "a Module's forward pass"
        return None

    def _nontrivial(self, scope) -> Optional[str]:
        """What is known to make the function worth compiling once (said in the message:
        a Python loop, an expensive routine it calls, or its size), else None."""
        body = scope.node.body
        count = 0
        for st in iter_subtree(body, (cst.SimpleStatementLine, cst.For, cst.While, cst.If)):
            if type(st) in (cst.For, cst.While):
                return "with a Python loop, unrolled into each branch"
            count += 1
        for call in scope.calls:
            qn = self.ctx.qualname(call.func) if type(call.func) in (cst.Name, cst.Attribute) else None
            if qn and (qn in S.HEAVY_CALLS or qn.startswith(S.HEAVY_PREFIXES)):
                return f"calling `{qn.replace('jax.numpy.', 'jnp.').replace('jax.lax.', 'lax.')}`"
        if count >= int(self.opts.get("min-statements", 3)):
            return f"of {count} statements"
        return None

    # ------------------------------------------------------------ visit
    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        got = cond_branches(ctx, node)
        if got is None:
            return
        qn, exprs = got
        scopes = []
        for ex in exprs:
            s = branch_scope(ctx, ex, ctx.scope)
            if s is not None and all(s is not o for o in scopes):
                scopes.append(s)
        if len(scopes) < 2:
            return
        seen: dict = {}
        dups: list = []
        for s in scopes:
            rebound = _assigned_names(s)
            keys_here = set()
            for call in s.calls:
                why = self._heavy(call)
                if why is None:
                    continue
                used = {n.value for n in iter_subtree(call, (cst.Name,))}
                if used & rebound:
                    continue  # an argument is recomputed inside the branch
                key = _normalise(ctx.code(call), s.params)
                if key in keys_here:
                    continue
                keys_here.add(key)
                if key in seen and seen[key][0] is not s:
                    dups.append((call, why, seen[key][2]))
                    seen[key][2].append(s)
                else:
                    seen.setdefault(key, (s, call, [s]))
        if not dups:
            return
        # One report per cond, at the first duplicated call in a later branch (a branch
        # function shared by several conds is reported once).
        call, why, where = dups[0]
        done = self.__dict__.setdefault("_done", set())
        if id(call) in done:
            return
        done.add(id(call))
        text = " ".join(ctx.code(call).split())
        if len(text) > 50:
            text = text[:47] + "..."
        name = qn.replace("jax.lax.", "lax.")
        n = len(where)
        self.report(
            call,
            f"`{text}` ({why}) is called with the same arguments in {n} branches of this "
            f"`{name}`: each branch is traced and compiled separately, so it is compiled "
            f"{'twice' if n == 2 else f'{n} times'} (and under `vmap` every branch runs). Compute it once before the `{name}` "
            "and pass the result in as an operand, or route the branches through one shared "
            "call.",
        )


def _assigned_names(scope) -> set:
    out = set()
    node = scope.node
    if isinstance(node, cst.Lambda):
        return out
    for n in iter_subtree(node.body, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr)):
        targets = []
        if isinstance(n, cst.Assign):
            targets = [t.target for t in n.targets]
        elif isinstance(n, (cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr)):
            targets = [n.target]
        for t in targets:
            for name in iter_subtree(t, (cst.Name,)):
                out.add(name.value)
    return out


def _normalise(text: str, params) -> str:
    text = " ".join(text.split())
    for i, p in enumerate(params):
        text = re.sub(rf"(?<![\w.]){re.escape(p)}\b", f"\x00{i}", text)
    return text
