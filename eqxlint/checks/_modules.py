"""Family logic of the Module / JIT-boundary rules (EQX102–EQX108): walks that stay inside one
function (for the names a loop body or a closure binds and reads), and the *abstract-or-final*
structure of a Module class the way Equinox defines it (abstract methods, `AbstractVar`, the
`Abstract*` naming convention).

What things mean — annotations, fields and their static-ness, base classes, Module-ness, test
paths — is the semantic layer's: `eqxlint.semantics.types`, `eqxlint.project.paths`."""

from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from ..semantics import types as TY
from ..syntax.walker import children

SCOPE_NODES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def iter_with_parents(root: cst.CSTNode, *, into_scopes: bool = False) -> Iterator[tuple]:
    """Pre-order (node, parent) pairs under `root`; nested functions/lambdas/classes are not
    entered unless `into_scopes` (the root itself always is)."""
    stack: list = [(root, None)]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        if node is not root and not into_scopes and isinstance(node, SCOPE_NODES):
            continue
        for child in reversed(children(node)):
            stack.append((child, node))


def iter_local(root: cst.CSTNode, types=None, *, into_scopes: bool = False) -> Iterator:
    for node, _ in iter_with_parents(root, into_scopes=into_scopes):
        if types is None or isinstance(node, types):
            yield node


# ---------------------------------------------------------------------------- names
def names_in(expr) -> set:
    return {n.value for n in iter_local(expr, (cst.Name,), into_scopes=True)}


def assigned_names(target) -> set:
    """Names bound by an assignment/for target."""
    out = set()
    if isinstance(target, cst.Name):
        out.add(target.value)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            out |= assigned_names(el.value)
    elif isinstance(target, cst.StarredElement):
        out |= assigned_names(target.value)
    return out


def bound_in(root: cst.CSTNode) -> set:
    """Names bound anywhere inside `root` (not entering nested scopes, but counting their
    names): assignments, for targets, with-as, walrus, defs, imports, comprehension targets."""
    out = set()
    for node in iter_local(root):
        if isinstance(node, cst.Assign):
            for t in node.targets:
                out |= assigned_names(t.target)
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
            out |= assigned_names(node.target)
        elif isinstance(node, (cst.For, cst.CompFor)):
            out |= assigned_names(node.target)
        elif isinstance(node, cst.NamedExpr):
            out |= assigned_names(node.target)
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            out |= assigned_names(node.asname.name)
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)) and node is not root:
            out.add(node.name.value)
    return out


def free_names(fn_node) -> set:
    """Names a function/lambda reads that it does not bind itself (including names read by its
    own nested scopes), minus its parameters."""
    params = set()
    p = fn_node.params
    for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
        params.add(prm.name.value)
    for extra in (p.star_arg, p.star_kwarg):
        if isinstance(extra, cst.Param):
            params.add(extra.name.value)
    body = fn_node.body
    local = bound_in(body) | params
    used = set()
    for node, parent in iter_with_parents(body, into_scopes=True):
        if isinstance(node, cst.Name):
            if isinstance(parent, cst.Attribute) and parent.attr is node:
                continue
            if isinstance(parent, cst.Arg) and parent.keyword is node:
                continue
            if isinstance(parent, (cst.Param,)) and parent.name is node:
                continue
            used.add(node.value)
    return used - local


# ---------------------------------------------------------------------------- abstract or final
def decorator_names(ctx, fn_node) -> set:
    out = set()
    for dec in fn_node.decorators:
        expr = dec.decorator
        if isinstance(expr, cst.Call):
            expr = expr.func
        qn = ctx.qualname(expr)
        if qn:
            out.add(qn)
        if isinstance(expr, cst.Attribute):
            out.add(expr.attr.value)
        elif isinstance(expr, cst.Name):
            out.add(expr.value)
    return out


def is_abstractmethod(ctx, fn_node) -> bool:
    names = decorator_names(ctx, fn_node)
    return bool(names & {"abc.abstractmethod", "abstractmethod", "abc.abstractproperty",
                         "abstractproperty"})


def methods(cls_scope) -> dict:
    out = {}
    for stmt in TY.class_statements(cls_scope.node):
        if isinstance(stmt, cst.FunctionDef):
            out[stmt.name.value] = stmt
    return out


_ABSTRACT_ATTRS = frozenset({"equinox.AbstractVar", "equinox.AbstractClassVar", "AbstractVar", "AbstractClassVar"})


def declares_abstract(ctx, cls_scope) -> bool:
    """Equinox's notion (`is_abstract_module`): abstract methods, AbstractVar/AbstractClassVar,
    a `strict=StrictConfig(force_abstract=True)`; plus Equinox's naming convention: a class
    whose name starts with `Abstract`/`_Abstract`."""
    name = cls_scope.name or ""
    if name.lstrip("_").startswith("Abstract"):
        return True
    for b in list(cls_scope.node.bases) + list(cls_scope.node.keywords):
        if b.keyword is not None and b.keyword.value == "strict":
            if "force_abstract=True" in ctx.code(b.value).replace(" ", ""):
                return True
    for stmt in TY.class_statements(cls_scope.node):
        if isinstance(stmt, cst.FunctionDef) and is_abstractmethod(ctx, stmt):
            return True
        if isinstance(stmt, cst.AnnAssign):
            expr = TY.annotation_expr(stmt.annotation)
            if isinstance(expr, cst.Subscript):
                expr = expr.value
            if expr is not None and (ctx.qualname(expr) or _dotted(expr) or "") in _ABSTRACT_ATTRS:
                return True
    return False


def definitely_concrete(ctx, cls_scope) -> bool:
    """A Module class known (from this file alone) to be concrete: neither it nor any ancestor
    declares abstract members or has an Abstract name, and every ancestor is in this file."""
    chain, complete = TY.mro(ctx, cls_scope)
    if not complete:
        return False
    if any(declares_abstract(ctx, c) for c in chain):
        return False
    if any(b.keyword is not None and b.keyword.value == "metaclass" for b in cls_scope.node.keywords):
        return False
    return True


def method_self(fn_node) -> Optional[str]:
    p = fn_node.params
    first = list(p.posonly_params) + list(p.params)
    return first[0].name.value if first else None


def _dotted(expr) -> Optional[str]:
    from ..syntax.nodes import dotted

    return dotted(expr)
