"""EQX113 duplicated-branch-call: the same heavy call in two or more branches of a
`lax.cond`/`lax.switch`."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..syntax.walker import iter_subtree
from ._flow import ARRAY_NAMESPACES, branch_scope, cond_branches

HEAVY_PREFIXES = (
    "jax.numpy.linalg.", "jax.scipy.linalg.", "jax.lax.linalg.", "jax.numpy.fft.",
    "jax.scipy.sparse.linalg.", "jax.scipy.optimize.", "jax.scipy.signal.", "jax.scipy.integrate.",
    "lineax.", "optimistix.", "diffrax.",
)
HEAVY_NAMES = frozenset(
    {
        "jax.lax.scan", "jax.lax.while_loop", "jax.lax.fori_loop", "jax.lax.map",
        "jax.lax.associative_scan", "jax.lax.conv_general_dilated", "jax.lax.conv",
        "jax.lax.conv_with_general_padding", "jax.lax.dot_general", "jax.lax.custom_root",
        "jax.lax.custom_linear_solve", "jax.lax.reduce_window", "jax.lax.sort",
        "jax.numpy.einsum", "jax.numpy.matmul", "jax.numpy.dot", "jax.numpy.tensordot",
        "jax.numpy.convolve", "jax.numpy.correlate", "jax.numpy.sort", "jax.numpy.argsort",
        "jax.numpy.linalg", "equinox.internal.while_loop", "equinox.internal.scan",
        "jax.random.permutation", "jax.numpy.kron", "jax.numpy.polyval",
    }
)
TRANSFORM_CALLS = frozenset(
    {
        "jax.grad", "jax.value_and_grad", "jax.jacfwd", "jax.jacrev", "jax.jacobian",
        "jax.hessian", "jax.vmap", "jax.jvp", "jax.vjp", "jax.linearize", "equinox.filter_grad",
        "equinox.filter_value_and_grad", "equinox.filter_vmap", "equinox.filter_jvp",
        "equinox.filter_vjp", "equinox.filter_jacfwd", "equinox.filter_jacrev",
        "equinox.filter_hessian", "jax.checkpoint", "equinox.filter_checkpoint",
    }
)


class DuplicatedBranchCall(Rule):
    code = "EQX113"
    options = {"min-statements": 3}

    # ------------------------------------------------------------ heaviness
    def _heavy(self, call: cst.Call, branch) -> Optional[str]:
        """Why a call is expensive to compile twice, or None for cheap/unknown ones."""
        ctx = self.ctx
        func = call.func
        if isinstance(func, cst.Call):
            iq = ctx.qualname(func.func) if isinstance(func.func, (cst.Name, cst.Attribute)) else None
            if iq in TRANSFORM_CALLS:
                return "a transformed function"
            return None
        if not isinstance(func, (cst.Name, cst.Attribute)):
            return None
        qn = ctx.qualname(func)
        if qn is not None:
            if qn in HEAVY_NAMES or qn.startswith(HEAVY_PREFIXES):
                return "a heavy JAX/solver routine"
            if qn.startswith(("jax.", "numpy.", "math.", "equinox.", "builtins")) or qn.startswith(ARRAY_NAMESPACES):
                return None
        targets = [t for t in ctx.resolve_functions(func, branch) if t.kind == "function"]
        if len(targets) == 1:
            return "a non-trivial project function" if self._nontrivial(targets[0]) else None
        if targets:
            return None
        # A callable parameter of an enclosing function: a model, vector field, user function.
        if isinstance(func, cst.Name) and qn is None:
            if self._module_param(func.value, branch) or self._callable_param(func.value, branch):
                return "a model/user function call"
            if self._undefined(func.value, branch):
                return "a project function"
            return None
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value != "self" \
                and qn is None:
            base = func.value.value
            if self._module_param(base, branch) or (self._callable_param(base, branch) and re.search(r"model|net", base)):
                return "a model method call"
            return None
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            fn = branch.function
            while fn is not None and fn.cls is None and fn.parent is not None:
                fn = fn.parent.function if fn.parent.function is not fn else None
            cls = fn.cls if fn is not None else None
            if cls is not None and ctx.is_module_class(cls):
                for st in _class_fields(cls):
                    if st == func.attr.value:
                        return "a submodule call"
        return None

    def _nontrivial(self, scope) -> bool:
        node = scope.node
        body = node.body
        count = 0
        for st in iter_subtree(body, (cst.SimpleStatementLine, cst.For, cst.While, cst.If)):
            if isinstance(st, (cst.For, cst.While)):
                return True
            count += 1
        if count >= int(self.opts.get("min-statements", 3)):
            return True
        for call in scope.calls:
            qn = self.ctx.qualname(call.func) if isinstance(call.func, (cst.Name, cst.Attribute)) else None
            if qn and (qn in HEAVY_NAMES or qn.startswith(HEAVY_PREFIXES)):
                return True
        return False

    def _undefined(self, name: str, branch) -> bool:
        """A name bound nowhere in this file (no def, import, assignment or parameter): a
        function from elsewhere in the project (star import or injected global)."""
        ctx = self.ctx
        if "_eqx113_bound" not in ctx.facts:
            bound = set(ctx.aliases)
            for assign, _ in ctx.assigns:
                for t in assign.targets:
                    for n in iter_subtree(t.target, (cst.Name,)):
                        bound.add(n.value)
            for sc in ctx.scopes:
                bound.update(sc.params)
                if sc.name:
                    bound.add(sc.name)
            for n in iter_subtree(ctx.module, (cst.ImportStar, cst.AnnAssign, cst.For, cst.NamedExpr,
                                               cst.AsName, cst.Global)):
                if isinstance(n, cst.ImportStar):
                    bound.add("*")
                elif isinstance(n, cst.AsName) and isinstance(n.name, cst.Name):
                    bound.add(n.name.value)
                elif isinstance(n, (cst.AnnAssign, cst.For, cst.NamedExpr)):
                    for m in iter_subtree(n.target, (cst.Name,)):
                        bound.add(m.value)
            ctx.facts["_eqx113_bound"] = bound
        bound = ctx.facts["_eqx113_bound"]
        import builtins

        return "*" not in bound and name not in bound and not hasattr(builtins, name)

    def _module_param(self, name: str, branch) -> bool:
        s = branch
        while s is not None:
            if s.kind in ("function", "lambda"):
                p = s.node.params
                for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                    if prm.name.value == name:
                        return bool(self.ctx.module_type(prm.annotation)) if prm.annotation else False
            s = s.parent
        return False

    def _callable_param(self, name: str, branch) -> bool:
        """A parameter of an enclosing (non-branch) function named like a model or function."""
        s = branch.parent
        while s is not None:
            if s.kind == "function" and name in s.params:
                return bool(re.fullmatch(r"(model|net|network|module|fn|func|f|vf|vector_field|"
                                         r"apply_fn|forward|loss_fn|step_fn|solver|body_fn|"
                                         r"[a-z_]*(model|net|_fn))", name))
            s = s.parent
        return False

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
                why = self._heavy(call, s)
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
                    dups.append((call, why))
                else:
                    seen.setdefault(key, (s, call))
        if not dups:
            return
        # One report per cond, naming the first (outermost) duplicated call.
        call, why = dups[0]
        text = " ".join(ctx.code(call).split())
        if len(text) > 50:
            text = text[:47] + "..."
        name = qn.replace("jax.lax.", "lax.")
        self.report(
            node,
            f"`{text}` ({why}) is called with the same arguments in several branches of "
            f"`{name}`: every branch is traced and compiled, so the same expensive computation is "
            "compiled (and its graph embedded) twice. Compute it once before the "
            f"`{name}` and pass the result in as an operand, or route both branches through "
            "one shared subroutine (e.g. a `lax.scan` over the cases).",
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


def _class_fields(cls) -> list:
    body = cls.node.body
    out = []
    for st in body.body if isinstance(body, cst.IndentedBlock) else []:
        if isinstance(st, cst.SimpleStatementLine):
            for small in st.body:
                if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    out.append(small.target.value)
    return out
