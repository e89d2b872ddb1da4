"""`lax.cond`/`lax.switch` branches for the control-flow rules (EQX109, EQX113): which calls are
conds, which functions their branches are, what those functions return. Family logic only: what
a value *is* comes from the semantic layer."""

from __future__ import annotations

from typing import Optional

import libcst as cst

COND_CALLS = frozenset({"jax.lax.cond", "jax.lax.switch"})


def cond_branches(ctx, call: cst.Call):
    """(qualname, [branch expressions]) for `lax.cond(pred, t, f, *ops)` /
    `lax.switch(i, [b0, b1, ...], *ops)`; None when not one or the branches are not literal."""
    if not isinstance(call.func, (cst.Name, cst.Attribute)):
        return None
    qn = ctx.qualname(call.func)
    if qn not in COND_CALLS:
        return None
    pos = [a for a in call.args if a.keyword is None]
    kws = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if any(a.star for a in pos[:3]):
        return None
    if qn == "jax.lax.cond":
        if len(pos) == 5 and not isinstance(pos[1].value, cst.Lambda) and isinstance(pos[2].value, cst.Lambda):
            return None  # legacy cond(pred, t_op, t_fun, f_op, f_fun)
        t = pos[1].value if len(pos) > 1 else kws.get("true_fun")
        f = pos[2].value if len(pos) > 2 else kws.get("false_fun")
        if t is None or f is None:
            return None
        return qn, [t, f]
    br = pos[1].value if len(pos) > 1 else kws.get("branches")
    if not isinstance(br, (cst.List, cst.Tuple)):
        return None
    if any(not isinstance(e, cst.Element) for e in br.elements):
        return None
    return qn, [e.value for e in br.elements]


def branch_scope(ctx, expr, scope):
    """The single function scope a branch expression names (lambda, def, partial(def, ...))."""
    found = ctx.resolve_functions(expr, scope)
    found = [s for s in found if s.kind in ("function", "lambda")]
    return found[0] if len(found) == 1 else None


def return_values(scope) -> Optional[list]:
    """Expressions a function returns (None for bare return / falling off the end); None when
    unknown (generators, raise-only bodies)."""
    node = scope.node
    if isinstance(node, cst.Lambda):
        return [node.body]
    from ..syntax.walker import iter_subtree

    out = []
    stack = [node.body]
    while stack:
        cur = stack.pop()
        for child in iter_children(cur):
            if isinstance(child, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                continue
            if isinstance(child, (cst.Yield,)):
                return None
            if isinstance(child, cst.Return):
                out.append(child.value if child.value is not None else cst.Name("None"))
                continue
            stack.append(child)
    body = node.body
    stmts = body.body if isinstance(body, cst.IndentedBlock) else []
    last = stmts[-1] if stmts else None
    ends = False
    if isinstance(last, cst.SimpleStatementLine) and last.body and isinstance(last.body[-1], (cst.Return, cst.Raise)):
        ends = True
    if not ends:
        if not out and _raises_only(stmts):
            return None
        if not isinstance(last, (cst.If, cst.Try, cst.With, cst.For, cst.While)) or not out:
            out.append(cst.Name("None"))
    del iter_subtree
    return out


def _raises_only(stmts) -> bool:
    for st in stmts:
        if isinstance(st, cst.SimpleStatementLine) and any(isinstance(s, cst.Raise) for s in st.body):
            return True
    return False


def iter_children(node):
    from ..syntax.walker import child_fields

    names = child_fields(type(node))
    for name in names:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif type(value) in (tuple, list):
            for c in value:
                if isinstance(c, cst.CSTNode):
                    yield c
