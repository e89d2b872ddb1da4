"""Private helpers for the Module / JIT-boundary rules EQX102–EQX108.

Everything here is read-only over the LibCST tree and the shared `FileContext`: local walks that
stop at nested scopes, Module class fields (same-file hierarchy), abstractness the way Equinox
defines it, and a few annotation classifiers."""

from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from ..syntax.walker import children

SCOPE_NODES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


child_nodes = children


def iter_with_parents(root: cst.CSTNode, *, into_scopes: bool = False) -> Iterator[tuple]:
    """Pre-order (node, parent) pairs under `root`; nested functions/lambdas/classes are not
    entered unless `into_scopes` (the root itself always is)."""
    stack: list = [(root, None)]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        if node is not root and not into_scopes and isinstance(node, SCOPE_NODES):
            continue
        for child in reversed(child_nodes(node)):
            stack.append((child, node))


def iter_local(root: cst.CSTNode, types=None, *, into_scopes: bool = False) -> Iterator:
    for node, _ in iter_with_parents(root, into_scopes=into_scopes):
        if types is None or isinstance(node, types):
            yield node


def function_body(fn: cst.CSTNode):
    return fn.body


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


# ---------------------------------------------------------------------------- annotations
PY_SCALARS = frozenset({"int", "bool", "str", "float", "complex", "bytes"})
_STATIC_LIKE = frozenset(
    {
        "int", "bool", "str", "float", "complex", "bytes", "type",
        "typing.Callable", "collections.abc.Callable", "Callable",
        "numpy.dtype", "jax.numpy.dtype", "jax.typing.DTypeLike", "numpy.typing.DTypeLike",
        "jaxtyping.DTypeLike", "DTypeLike", "jax._src.typing.DTypeLike",
    }
)
_CONTAINERS = frozenset(
    {"tuple", "typing.Tuple", "list", "typing.List", "typing.Sequence", "collections.abc.Sequence",
     "frozenset", "typing.FrozenSet"}
)
_OPTIONAL = frozenset({"typing.Optional", "typing.Union", "Optional", "Union"})
_LITERAL = frozenset({"typing.Literal", "typing_extensions.Literal", "Literal"})
_ABSTRACT_VARS = frozenset(
    {"equinox.AbstractVar", "equinox.AbstractClassVar", "typing.ClassVar", "ClassVar",
     "AbstractVar", "AbstractClassVar"}
)


def _ann_expr(ann):
    if isinstance(ann, cst.Annotation):
        ann = ann.annotation
    if isinstance(ann, cst.SimpleString):
        text = ann.evaluated_value
        if isinstance(text, str):
            try:
                return cst.parse_expression(text)
            except Exception:
                return None
        return None
    return ann


def _qual(ctx, expr) -> Optional[str]:
    qn = ctx.qualname(expr)
    if qn is None and isinstance(expr, (cst.Name, cst.Attribute)):
        from ..semantics.context import dotted

        qn = dotted(expr)
    return qn


def python_type_name(ctx, ann) -> Optional[str]:
    """If an annotation names a non-array Python type (int, bool, str, float, a dtype, a
    Callable, a tuple of ints, a Literal, Optional of those), return its source text."""
    expr = _ann_expr(ann)
    if expr is None:
        return None
    return ctx.code(expr) if _is_static_like(ctx, expr) else None


def _is_none(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _is_static_like(ctx, expr) -> bool:
    if _is_none(expr):
        return True
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
        parts = [expr.left, expr.right]
        if all(_is_none(p) for p in parts):
            return False
        return all(_is_static_like(ctx, p) for p in parts)
    if isinstance(expr, cst.Subscript):
        qn = _qual(ctx, expr.value) or ""
        elems = [e.slice.value for e in expr.slice if isinstance(e.slice, cst.Index)]
        if qn in _LITERAL:
            return True
        if qn in _OPTIONAL:
            real = [e for e in elems if not _is_none(e)]
            return bool(real) and all(_is_static_like(ctx, e) for e in real)
        if qn in _CONTAINERS:
            real = [e for e in elems if not (isinstance(e, cst.Ellipsis))]
            return bool(real) and all(_is_static_like(ctx, e) and not _is_none(e) for e in real)
        if qn in ("typing.Callable", "collections.abc.Callable", "Callable", "type", "typing.Type"):
            return True
        return False
    qn = _qual(ctx, expr)
    return qn in _STATIC_LIKE


def is_scalar_annotation(ctx, ann) -> bool:
    """`int`, `bool`, `str` (and Optional/Literal of those): values that control flow reads."""
    expr = _ann_expr(ann)
    if expr is None:
        return False
    if isinstance(expr, cst.Subscript):
        qn = _qual(ctx, expr.value) or ""
        if qn in _LITERAL:
            return True
        if qn in _OPTIONAL:
            elems = [e.slice.value for e in expr.slice if isinstance(e.slice, cst.Index)]
            real = [e for e in elems if not _is_none(e)]
            return bool(real) and all(is_scalar_annotation(ctx, e) for e in real)
        return False
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
        real = [p for p in (expr.left, expr.right) if not _is_none(p)]
        return bool(real) and all(is_scalar_annotation(ctx, p) for p in real)
    return _qual(ctx, expr) in ("int", "bool", "str")


_ARRAY_WORDS = ("Array", "ndarray", "PyTree", "ArrayLike", "Scalar", "Shaped", "Float", "Int",
                "Bool", "Real", "Inexact", "Num", "Complex", "UInt", "Key")


def is_array_annotation(ctx, ann) -> bool:
    expr = _ann_expr(ann)
    if expr is None:
        return False
    text = ctx.code(expr) if not isinstance(ann, cst.SimpleString) else str(ann.evaluated_value)
    return any(w in text for w in _ARRAY_WORDS)


def is_abstract_var(ctx, ann) -> bool:
    expr = _ann_expr(ann)
    if isinstance(expr, cst.Subscript):
        expr = expr.value
    return expr is not None and (_qual(ctx, expr) or "") in _ABSTRACT_VARS


# ---------------------------------------------------------------------------- Module classes
def class_statements(cls_node: cst.ClassDef) -> list:
    out = []
    body = cls_node.body
    stmts = body.body if isinstance(body, cst.IndentedBlock) else [body]
    for stmt in stmts:
        if isinstance(stmt, cst.SimpleStatementLine):
            out.extend(stmt.body)
        elif isinstance(stmt, cst.SimpleStatementSuite):
            out.extend(stmt.body)
        else:
            out.append(stmt)
    return out


def field_call_kind(ctx, value) -> Optional[str]:
    """'static' for eqx.field(static=True)/static_field(), 'dynamic' for an explicit
    static=False, 'converter' when a converter may turn it into an array, 'field' for another
    eqx.field/dataclasses.field call, None for a plain default or no value."""
    if not isinstance(value, cst.Call):
        return None
    qn = ctx.qualname(value.func) or ""
    if qn == "equinox.static_field":
        return "static"
    if qn in ("equinox.field", "dataclasses.field"):
        for arg in value.args:
            if arg.keyword is not None and arg.keyword.value == "static":
                return "static" if _is_true(arg.value) else "dynamic"
        for arg in value.args:
            if arg.keyword is not None and arg.keyword.value == "converter":
                return "converter"
        return "field"
    return None


def _is_true(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


class Field:
    __slots__ = ("name", "node", "cls", "ann", "value", "kind")

    def __init__(self, name, node, cls, ann, value, kind):
        self.name, self.node, self.cls, self.ann, self.value, self.kind = name, node, cls, ann, value, kind


def own_fields(ctx, cls_scope) -> dict:
    out = {}
    for small in class_statements(cls_scope.node):
        if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
            if is_abstract_var(ctx, small.annotation):
                continue
            out[small.target.value] = Field(
                small.target.value, small, cls_scope, small.annotation, small.value,
                field_call_kind(ctx, small.value),
            )
    return out


def local_bases(ctx, cls_scope) -> tuple[list, bool]:
    """Same-file base classes of a class, and whether every base is accounted for (a same-file
    class, eqx.Module, or a typing/abc helper)."""
    found = []
    complete = True
    for b in cls_scope.node.bases:
        if b.keyword is not None:
            continue
        val = b.value.value if isinstance(b.value, cst.Subscript) else b.value
        qn = ctx.qualname(val) or ""
        if qn in ("equinox.Module", "typing.Generic", "Generic", "typing.Protocol", "abc.ABC",
                  "object"):
            continue
        local = None
        if isinstance(val, cst.Name) and cls_scope.parent is not None:
            for d in cls_scope.parent.lookup_def(val.value):
                if d.kind == "class":
                    local = d
                    break
        if local is not None:
            found.append(local)
        else:
            complete = False
    return found, complete


def mro(ctx, cls_scope) -> tuple[list, bool]:
    """The class and its same-file ancestors (depth first), and whether the whole ancestry is
    known in this file."""
    out = []
    complete = True
    todo = [cls_scope]
    seen = set()
    while todo:
        c = todo.pop(0)
        if id(c) in seen:
            continue
        seen.add(id(c))
        out.append(c)
        bases, ok = local_bases(ctx, c)
        complete = complete and ok
        todo.extend(bases)
    return out, complete


def all_fields(ctx, cls_scope) -> tuple[dict, bool]:
    chain, complete = mro(ctx, cls_scope)
    out: dict = {}
    for c in chain:
        for k, v in own_fields(ctx, c).items():
            out.setdefault(k, v)
    return out, complete


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
    for stmt in class_statements(cls_scope.node):
        if isinstance(stmt, cst.FunctionDef):
            out[stmt.name.value] = stmt
    return out


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
    for stmt in class_statements(cls_scope.node):
        if isinstance(stmt, cst.FunctionDef) and is_abstractmethod(ctx, stmt):
            return True
        if isinstance(stmt, cst.AnnAssign):
            expr = _ann_expr(stmt.annotation)
            if isinstance(expr, cst.Subscript):
                expr = expr.value
            if expr is not None and (_qual(ctx, expr) or "") in (
                "equinox.AbstractVar", "equinox.AbstractClassVar", "AbstractVar", "AbstractClassVar"
            ):
                return True
    return False


def definitely_concrete(ctx, cls_scope) -> bool:
    """A Module class known (from this file alone) to be concrete: neither it nor any ancestor
    declares abstract members or has an Abstract name, and every ancestor is in this file."""
    chain, complete = mro(ctx, cls_scope)
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


def is_test_path(path: str) -> bool:
    p = path.replace("\\", "/")
    name = p.rsplit("/", 1)[-1]
    return ("/tests/" in "/" + p or "/test/" in "/" + p or name.startswith("test_")
            or name.endswith("_test.py") or name == "conftest.py")
