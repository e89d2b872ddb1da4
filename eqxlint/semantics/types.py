"""Types of things: what an annotation says a value is (array, static Python value, PRNG key,
callable, a class), what kind of class a class is (an Equinox Module, a data PyTree made to be
batched, a plain class), and the fields of a class with their static-ness.

One answer for each question; every rule and the value analysis ask here. Cross-file class
questions are answered by the project index (`eqxlint.project.index`) from the facts the
collectors record with `class_facts`.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from . import names as S

ARRAY_TYPES = frozenset(
    {
        "jax.Array", "jax.numpy.ndarray", "jaxtyping.Array", "chex.Array", "jax.core.Tracer",
        "jaxtyping.ArrayLike", "jax.typing.ArrayLike", "chex.ArrayDevice", "jaxtyping.Scalar",
        "jaxtyping.ScalarLike", "numpy.ndarray",
    }
)
KEY_TYPES = frozenset({"jaxtyping.PRNGKeyArray", "chex.PRNGKey", "jax.random.KeyArray", "jax.random.PRNGKeyArray"})
JAXTYPING_DTYPES = frozenset(
    {
        "Float", "Int", "Bool", "Shaped", "Num", "Real", "Inexact", "Complex", "UInt", "Integer",
        "Key", "Float32", "Float64", "Float16", "BFloat16", "Int32", "Int64", "Int8", "Int16",
        "UInt8", "UInt32", "UInt64", "Complex64", "Complex128",
    }
)
PYTREE_TYPES = frozenset({"jaxtyping.PyTree", "equinox.internal.PyTree", "chex.ArrayTree", "optax.Params"})
STATIC_SCALARS = frozenset({"int", "bool", "str", "float", "complex", "bytes", "None", "type"})
STATIC_TYPES = STATIC_SCALARS | frozenset(
    {
        "numpy.dtype", "jax.numpy.dtype", "jax.typing.DTypeLike", "jaxtyping.DTypeLike",
        "typing.Hashable", "collections.abc.Hashable", "enum.Enum",
    }
)
CALLABLE_TYPES = frozenset(
    {"typing.Callable", "collections.abc.Callable", "Callable", "type", "typing.Type", "Type"}
)
_CONTAINERS = frozenset(
    {"tuple", "typing.Tuple", "Tuple", "list", "typing.List", "List", "typing.Sequence",
     "collections.abc.Sequence", "Sequence", "frozenset", "typing.FrozenSet", "dict", "typing.Dict",
     "Dict", "typing.Mapping", "collections.abc.Mapping"}
)
_OPTIONAL = frozenset({"typing.Optional", "typing.Union", "Optional", "Union"})
_LITERAL = frozenset({"typing.Literal", "typing_extensions.Literal", "Literal"})
ABSTRACT_VARS = frozenset(
    {"equinox.AbstractVar", "equinox.AbstractClassVar", "typing.ClassVar", "ClassVar",
     "AbstractVar", "AbstractClassVar"}
)
# Data PyTrees: classes made to be batched and mapped over, which are not Equinox Modules.
DATA_CLASS_DECORATORS = frozenset(
    {
        "flax.struct.dataclass", "chex.dataclass", "jax.tree_util.register_dataclass",
        "jax.tree_util.register_pytree_node_class", "jax.tree_util.register_static",
        "tree_math.struct", "flax.struct.PyTreeNode",
    }
)
DATA_CLASS_BASES = frozenset(
    {"typing.NamedTuple", "NamedTuple", "flax.struct.PyTreeNode", "chex.dataclass", "tuple"}
)


def _qual(ctx, expr) -> Optional[str]:
    qn = ctx.qualname(expr)
    if qn is None and type(expr) in (cst.Name, cst.Attribute):
        from ..syntax.nodes import dotted

        qn = dotted(expr)
    return qn


def annotation_expr(ann):
    """The expression of an annotation, with string annotations parsed."""
    if type(ann) is cst.Annotation:
        ann = ann.annotation
    if type(ann) in (cst.SimpleString, cst.ConcatenatedString):
        text = ann.evaluated_value
        if isinstance(text, str):
            try:
                return cst.parse_expression(text)
            except Exception:
                return None
        return None
    return ann


def _is_none(expr) -> bool:
    return type(expr) is cst.Name and expr.value == "None"


def _elements(sub: cst.Subscript) -> list:
    return [e.slice.value for e in sub.slice if type(e.slice) is cst.Index]


def annotation_kind(ctx, ann) -> tuple:
    """(kind, class qualname) for an annotation: kind is "array", "key", "static", "callable",
    "container" (a tuple/list/dict of something), "pytree", "class" (with its qualname, or
    "?qualname" when it names a project class of another file) or None (nothing known)."""
    expr = annotation_expr(ann)
    if expr is None:
        return None, None
    if type(expr) is cst.BinaryOperation and type(expr.operator) is cst.BitOr:
        parts = [p for p in (expr.left, expr.right) if not _is_none(p)]
        kinds = {annotation_kind(ctx, p) for p in parts}
        return kinds.pop() if len(kinds) == 1 else (None, None)
    if type(expr) is cst.Subscript:
        qn = _qual(ctx, expr.value) or ""
        last = qn.rsplit(".", 1)[-1]
        elems = _elements(expr)
        if last in JAXTYPING_DTYPES and (qn.startswith("jaxtyping") or "." not in qn):
            inner = annotation_kind(ctx, elems[0]) if elems else (None, None)
            if last == "Key" or inner[0] == "key":
                return "key", None
            return ("array", None) if inner[0] == "array" else (None, None)
        if qn in _LITERAL:
            return "static", None
        if qn in _OPTIONAL:
            real = [e for e in elems if not _is_none(e)]
            kinds = {annotation_kind(ctx, e) for e in real}
            return kinds.pop() if len(kinds) == 1 else (None, None)
        if qn in CALLABLE_TYPES or last in ("Callable", "Type"):
            return "callable", None
        if qn in PYTREE_TYPES or last == "PyTree":
            return "pytree", None
        if qn in _CONTAINERS:
            real = [e for e in elems if not type(e) is cst.Ellipsis]
            if real and all(annotation_kind(ctx, e)[0] == "static" for e in real):
                return "static", None
            return "container", None
        return None, None
    qn = _qual(ctx, expr)
    if qn is None:
        return None, None
    if qn in ARRAY_TYPES or (qn.endswith(".Array") and qn.startswith(("jax", "chex", "jaxtyping"))):
        return "array", None
    if qn in KEY_TYPES:
        return "key", None
    if qn in STATIC_TYPES or qn.startswith("numpy.") and qn[6:] in _NUMPY_DTYPES:
        return "static", None
    if qn in CALLABLE_TYPES:
        return "callable", None
    if qn in PYTREE_TYPES or qn.endswith(".PyTree"):
        return "pytree", None
    if qn in _CONTAINERS:
        return "container", None
    if type(expr) is cst.Name:
        for d in ctx.module_scope.lookup_def(expr.value):
            if d.kind == "class":
                return "class", d.ref
    mt = module_type(ctx, expr)
    if mt:
        return "class", mt
    if "." in qn and not qn.startswith(("jax", "numpy", "typing", "builtins", "collections")):
        return "class", "?" + qn
    return None, None


_NUMPY_DTYPES = frozenset(
    {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint32", "bool_", "dtype"}
)


def is_array_annotation(ctx, ann) -> bool:
    return annotation_kind(ctx, ann)[0] in ("array", "key")


def is_static_annotation(ctx, ann) -> bool:
    """int, bool, str, float, dtype, Literal, Callable, tuples of those: Python values."""
    return annotation_kind(ctx, ann)[0] in ("static", "callable")


def is_scalar_annotation(ctx, ann) -> bool:
    """`int`, `bool`, `str` (and Optional/Literal of those): values that control flow reads."""
    expr = annotation_expr(ann)
    if expr is None:
        return False
    if type(expr) is cst.Subscript:
        qn = _qual(ctx, expr.value) or ""
        if qn in _LITERAL:
            return True
        if qn in _OPTIONAL:
            real = [e for e in _elements(expr) if not _is_none(e)]
            return bool(real) and all(is_scalar_annotation(ctx, e) for e in real)
        return False
    if type(expr) is cst.BinaryOperation and type(expr.operator) is cst.BitOr:
        real = [p for p in (expr.left, expr.right) if not _is_none(p)]
        return bool(real) and all(is_scalar_annotation(ctx, p) for p in real)
    return _qual(ctx, expr) in ("int", "bool", "str")


def static_type_text(ctx, ann) -> Optional[str]:
    """The source text of an annotation naming a non-array Python type (int, a dtype, a
    Callable, a tuple of ints, a Literal, Optional of those), else None."""
    expr = annotation_expr(ann)
    if expr is None:
        return None
    k = annotation_kind(ctx, expr)[0]
    if k in ("static", "callable") and not _is_none(expr):
        return ctx.code(expr)
    return None


def is_abstract_var(ctx, ann) -> bool:
    expr = annotation_expr(ann)
    if type(expr) is cst.Subscript:
        expr = expr.value
    return expr is not None and (_qual(ctx, expr) or "") in ABSTRACT_VARS


# ---------------------------------------------------------------------------- classes
def module_type(ctx, annotation) -> Optional[str]:
    """If an annotation names an Equinox Module class, its name: `X`, `"X"`, `Optional[X]`,
    `X | None`, `eqx.Module`, `eqx.nn.Linear`; "?qualname" when it names a class of another
    project file whose Module-ness only the project index can decide."""
    if annotation is None:
        return None
    expr = annotation_expr(annotation)
    if expr is None:
        return None
    if type(expr) is cst.BinaryOperation:
        return module_type(ctx, expr.left) or module_type(ctx, expr.right)
    if type(expr) is cst.Subscript:
        qn = ctx.qualname(expr.value)
        if qn in _OPTIONAL:
            for el in _elements(expr):
                found = module_type(ctx, el)
                if found:
                    return found
        return None
    qn = ctx.qualname(expr)
    if qn is not None and (qn in S.MODULE_BASES or qn.startswith(S.EQX_NN_PREFIX)):
        return qn
    if qn is not None and qn in ctx.external_module_classes:
        return qn
    if type(expr) is cst.Name:
        for d in ctx.module_scope.lookup_def(expr.value):
            if d.kind == "class":
                return d.name if ctx.is_module_class(d) else None
        if qn is not None and "." in qn and not qn.startswith(("jax", "numpy", "typing")):
            return "?" + qn
    return None


def class_kind(ctx, cls_scope) -> str:
    """"module" (an `eqx.Module` subclass), "data" (a PyTree meant to be batched: flax
    `struct.dataclass`/`PyTreeNode`, `chex.dataclass`, a NamedTuple, a registered dataclass or
    pytree class) or "plain"."""
    if ctx.is_module_class(cls_scope):
        return "module"
    for dec in cls_scope.node.decorators:
        expr = dec.decorator.func if type(dec.decorator) is cst.Call else dec.decorator
        if (ctx.qualname(expr) or "") in DATA_CLASS_DECORATORS:
            return "data"
    for b in cls_scope.node.bases:
        val = b.value.value if type(b.value) is cst.Subscript else b.value
        if (ctx.qualname(val) or "") in DATA_CLASS_BASES:
            return "data"
    return "plain"


def class_statements(cls_node: cst.ClassDef) -> list:
    out = []
    body = cls_node.body
    stmts = body.body if type(body) is cst.IndentedBlock else [body]
    for stmt in stmts:
        if type(stmt) in (cst.SimpleStatementLine, cst.SimpleStatementSuite):
            out.extend(stmt.body)
        else:
            out.append(stmt)
    return out


def field_call_kind(ctx, value) -> Optional[str]:
    """'static' for `eqx.field(static=True)`, `eqx.static_field()`, flax
    `struct.field(pytree_node=False)` or a dataclass field with `metadata={"static": True}`;
    'dynamic' for an explicit `static=False`; 'converter' when a converter may turn the value
    into an array; 'field' for another field call; None for a plain default or no value."""
    if not type(value) is cst.Call:
        return None
    qn = ctx.qualname(value.func) or ""
    if qn == "equinox.static_field":
        return "static"
    if qn in ("equinox.field", "dataclasses.field", "flax.struct.field", "chex.field"):
        for arg in value.args:
            kw = arg.keyword.value if arg.keyword is not None else None
            if kw == "static":
                return "static" if _is_true(arg.value) else "dynamic"
            if kw == "pytree_node":
                return "static" if _is_false(arg.value) else "dynamic"
            if kw == "metadata" and type(arg.value) is cst.Dict:
                for el in arg.value.elements:
                    if type(el) is cst.DictElement and type(el.key) is cst.SimpleString \
                            and el.key.evaluated_value in ("static", "pytree_node"):
                        truth = _is_true(el.value) if el.key.evaluated_value == "static" else _is_false(el.value)
                        return "static" if truth else "dynamic"
        for arg in value.args:
            if arg.keyword is not None and arg.keyword.value == "converter":
                return "converter"
        return "field"
    return None


def _is_true(expr) -> bool:
    return type(expr) is cst.Name and expr.value == "True"


def _is_false(expr) -> bool:
    return type(expr) is cst.Name and expr.value == "False"


class Field:
    """An annotated field of a class body. `kind`: "static" (marked static), "array" (an array
    annotation), "other"; `call_kind`: see `field_call_kind`."""

    __slots__ = ("name", "node", "cls", "ann", "value", "call_kind", "kind")

    def __init__(self, name, node, cls, ann, value, call_kind, kind):
        self.name, self.node, self.cls, self.ann, self.value = name, node, cls, ann, value
        self.call_kind, self.kind = call_kind, kind


def own_fields(ctx, cls_scope) -> dict:
    """name -> Field for a class body's annotated fields (AbstractVar/ClassVar excluded)."""
    cached = cls_scope.info.get("types.fields")
    if cached is not None:
        return cached
    out = {}
    for small in class_statements(cls_scope.node):
        if type(small) is cst.AnnAssign and type(small.target) is cst.Name:
            if is_abstract_var(ctx, small.annotation):
                continue
            ck = field_call_kind(ctx, small.value)
            if ck == "static":
                kind = "static"
            elif is_array_annotation(ctx, small.annotation):
                kind = "array"
            elif is_static_annotation(ctx, small.annotation):
                kind = "static-type"
            else:
                kind = "other"
            out[small.target.value] = Field(small.target.value, small, cls_scope, small.annotation, small.value, ck, kind)
    cls_scope.info["types.fields"] = out
    return out


def local_bases(ctx, cls_scope) -> tuple:
    """Same-file base classes of a class, and whether every base is accounted for (a same-file
    class, eqx.Module, or a typing/abc helper)."""
    found = []
    complete = True
    for b in cls_scope.node.bases:
        if b.keyword is not None:
            continue
        val = b.value.value if type(b.value) is cst.Subscript else b.value
        qn = ctx.qualname(val) or ""
        if qn in ("equinox.Module", "typing.Generic", "Generic", "typing.Protocol", "abc.ABC", "object"):
            continue
        local = None
        if type(val) is cst.Name and cls_scope.parent is not None:
            for d in cls_scope.parent.lookup_def(val.value):
                if d.kind == "class":
                    local = d
                    break
        if local is not None:
            found.append(local)
        else:
            complete = False
    return found, complete


def mro(ctx, cls_scope) -> tuple:
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


def all_fields(ctx, cls_scope) -> tuple:
    chain, complete = mro(ctx, cls_scope)
    out: dict = {}
    for c in chain:
        for k, v in own_fields(ctx, c).items():
            out.setdefault(k, v)
    return out, complete


def field_kind(ctx, cls_scope, name: str) -> Optional[str]:
    """"array", "static", "static-type", "other" for a field of a class (or its same-file
    bases), None when unknown."""
    f = all_fields(ctx, cls_scope)[0].get(name)
    return f.kind if f is not None else None


# ---------------------------------------------------------------------------- Module-ness
def module_of_class(ctx, cls_scope) -> tuple:
    """Is a class of this file an `eqx.Module`? (True, None); (False, None); or (None,
    ("module_class", ref)) when a base from another project file decides it (report with that
    condition: the project index answers)."""
    if ctx.is_module_class(cls_scope):
        return True, None
    if id(cls_scope.node) in ctx.unresolved_bases and cls_scope.parent is ctx.module_scope:
        return None, ("module_class", cls_scope.ref)
    return False, None


def module_of_ref(ctx, ref: Optional[str]) -> tuple:
    """The same question for a class reference (`pkg.mod.C`, `equinox.nn.MLP`, "?pkg.mod.C"
    from `annotation_kind`), e.g. the class of an instance value (`Val.ref` of an INST)."""
    if not ref:
        return False, None
    ref = ref.lstrip("?")
    if ref in S.MODULE_BASES or ref.startswith(S.EQX_NN_PREFIX) or ref in ctx.external_module_classes:
        return True, None
    local = ctx.class_by_ref(ref)
    if local is not None:
        return module_of_class(ctx, local)
    if "." not in ref or ref.startswith(("jax.", "jaxlib.", "numpy.", "equinox.", "builtins.", "typing.", "flax.", "chex.")):
        return False, None
    return None, ("module_class", ref)
