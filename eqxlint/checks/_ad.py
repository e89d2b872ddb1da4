"""Private helpers for the AD rules (EQX201, EQX202, EQX205-EQX208, EQX210).

Everything here is computed from the shared `FileContext` (scopes, trace sites, aliases); results
that are per file are cached in `ctx.facts` under keys starting with `_ad.`.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..semantics import names as S
from ._helpers import keyword, positional, short

CHECKPOINT = frozenset({"jax.checkpoint", "equinox.filter_checkpoint"})
CUSTOM_AD = S.CUSTOM_JVP | S.CUSTOM_VJP
RAW_CUSTOM_AD = frozenset({"jax.custom_jvp", "jax.custom_vjp"})
# Transforms whose function arguments are *not* differentiated through by reverse mode: the
# implicit-function wrappers define their own derivative, host callbacks are opaque.
NO_AD_PROPAGATION = frozenset(
    {"jax.lax.custom_root", "jax.lax.custom_linear_solve", "jax.lax.stop_gradient"}
) | S.HOST_CALLBACKS | CUSTOM_AD
COMPILE_TIME_EVAL = frozenset({"jax.ensure_compile_time_eval", "jax.core.ensure_compile_time_eval"})

# Calls whose result is static (a Python value) even under a trace.
STATIC_CALLS = frozenset(
    {
        "len", "isinstance", "issubclass", "callable", "hasattr", "getattr", "type", "id",
        "jax.numpy.shape", "jax.numpy.ndim", "jax.numpy.size", "jax.numpy.dtype",
        "jax.numpy.result_type", "jax.numpy.issubdtype", "jax.numpy.iinfo", "jax.numpy.finfo",
        "jax.numpy.isdtype", "jax.numpy.promote_types", "jax.numpy.can_cast",
        "jax.numpy.broadcast_shapes", "jax.lax.broadcast_shapes", "jax.numpy.isscalar", "jax.numpy.iscomplexobj",
        "jax.dtypes.issubdtype", "jax.dtypes.result_type", "jax.dtypes.canonicalize_dtype",
        "jax.tree_util.tree_structure", "jax.tree.structure", "equinox.is_array",
        "equinox.is_inexact_array", "equinox.is_array_like", "jax.core.is_concrete",
        "jax.numpy.can_cast", "jax.typeof", "jax.core.get_aval", "jax.lax.axis_size",
        "jax.lax.psum_scatter_size",
    }
)
# Private helpers of jax.lax & co. that read static metadata (`lax._ndim(x)`, `lax._dtype(x)`).
STATIC_SUFFIXES = frozenset({"_ndim", "_dtype", "_shape", "_size", "ndim", "shape", "dtype"})
STATIC_ATTRS = frozenset({"shape", "ndim", "dtype", "size", "aval", "weak_type", "sharding"})
PASS_ATTRS = frozenset({"T", "mT", "real", "imag"})
ARRAY_METHODS = frozenset({"all", "any", "sum", "max", "min", "mean", "item", "prod", "astype"})
TRACED_PREFIXES = ("jax.numpy.", "jax.lax.", "jax.nn.", "jax.scipy.")
_SCALAR_TYPES = (
    "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8",
    "uint16", "uint32", "uint64", "bool_", "complex64", "complex128", "inexact", "floating",
    "integer", "number", "dtype",
)
ARRAY_ANNOTATIONS = frozenset({"jax.Array", "jax.numpy.ndarray", "jaxtyping.Array", "jax.core.Tracer"})
JAXTYPING_DTYPES = frozenset(
    {
        "Float", "Int", "Bool", "Shaped", "Real", "Inexact", "Num", "Complex", "Key", "UInt",
        "Integer", "Float32", "Float64", "Int32", "Int64", "BFloat16", "Float16",
    }
)


# ------------------------------------------------------------------ small utilities
def calls_in(scope) -> list:
    return scope.calls


def int_value(ctx, expr) -> Optional[int]:
    """A statically known int: a literal, `-literal`, simple arithmetic, or a module constant."""
    if isinstance(expr, cst.Integer):
        try:
            return int(expr.evaluated_value)
        except Exception:
            return None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        v = int_value(ctx, expr.expression)
        return -v if v is not None else None
    if isinstance(expr, cst.BinaryOperation):
        a, b = int_value(ctx, expr.left), int_value(ctx, expr.right)
        if a is None or b is None:
            return None
        op = expr.operator
        if isinstance(op, cst.Add):
            return a + b
        if isinstance(op, cst.Subtract):
            return a - b
        if isinstance(op, cst.Multiply):
            return a * b
        if isinstance(op, cst.FloorDivide) and b:
            return a // b
        if isinstance(op, cst.Power) and 0 <= b < 64:
            return a**b
        return None
    if isinstance(expr, cst.Name):
        return module_constant(ctx, expr.value)
    return None


def module_constant(ctx, name: str) -> Optional[int]:
    cache = ctx.facts.setdefault("_ad.constants", None)
    if cache is None:
        cache = {}
        counts: dict = {}
        for assign, scope in ctx.assigns:
            if scope is not ctx.module_scope:
                continue
            for t in assign.targets:
                if isinstance(t.target, cst.Name):
                    counts[t.target.value] = counts.get(t.target.value, 0) + 1
                    if isinstance(assign.value, cst.Integer):
                        cache[t.target.value] = int(assign.value.evaluated_value)
        for k, n in counts.items():  # reassigned names are not constants
            if n > 1:
                cache.pop(k, None)
        ctx.facts["_ad.constants"] = cache
    return cache.get(name)


def in_compile_time_eval(ctx) -> bool:
    """The current node is inside `with jax.ensure_compile_time_eval():` (needs a `visit_With`
    handler in the rule so that `With` nodes are recorded on `ctx.stack`)."""
    for node in ctx.stack:
        if isinstance(node, cst.With):
            for item in node.items:
                it = item.item
                if isinstance(it, cst.Call) and ctx.qualname(it.func) in COMPILE_TIME_EVAL:
                    return True
    return False


def equinox_in_use(ctx) -> bool:
    return ctx.imports_module("equinox")


# ------------------------------------------------------------------ custom AD wrappers
def custom_ad_scopes(ctx) -> dict:
    """id(function scope) -> (qualname of the custom-AD wrapper, node, nondiff_argnums expr)
    for functions decorated with or passed to `jax.custom_jvp/vjp` or the Equinox wrappers."""
    cached = ctx.facts.get("_ad.custom")
    if cached is not None:
        return cached
    out: dict = {}
    for scope in ctx.scopes:
        if scope.kind != "function":
            continue
        for dec in scope.node.decorators:
            expr = dec.decorator
            qn = ctx.qualname(expr.func if isinstance(expr, cst.Call) else expr)
            if qn in CUSTOM_AD:
                nd = keyword(expr, "nondiff_argnums") if isinstance(expr, cst.Call) else None
                out[id(scope)] = (qn, dec, nd.value if nd else None)
            elif qn in ("functools.partial", "partial") and isinstance(expr, cst.Call) and expr.args:
                inner = ctx.qualname(expr.args[0].value)
                if inner in CUSTOM_AD:
                    nd = keyword(expr, "nondiff_argnums")
                    out[id(scope)] = (inner, dec, nd.value if nd else None)
    for call, scope in ctx.calls:
        qn = ctx.qualname(call.func)
        if qn in CUSTOM_AD and call.args and call.args[0].keyword is None:
            nd = keyword(call, "nondiff_argnums")
            for target in ctx.resolve_functions(call.args[0].value, scope):
                out.setdefault(id(target), (qn, call, nd.value if nd else None))
    ctx.facts["_ad.custom"] = out
    return out


def ad_opaque(ctx, scope) -> bool:
    """Reverse mode does not differentiate through this scope's body: it has a custom JVP/VJP,
    or is itself a custom rule, or runs on the host."""
    s = scope
    while s is not None:
        if s.kind in ("function", "lambda"):
            if id(s) in custom_ad_scopes(ctx) or s.ad_rule or s.host:
                return True
        s = s.parent
    return False


# ------------------------------------------------------------------ reverse-mode reach
def reverse_ad(ctx) -> dict:
    """id(scope) -> (scope, description) for every function/lambda that reverse-mode AD
    differentiates through, within this module: functions passed to / decorated with a reverse
    transform (`jax.grad`, `value_and_grad`, `vjp`, `eqx.filter_grad`, ...), then their nested
    functions, their same-module callees and the bodies of the transforms they call (`lax.scan`,
    `jax.checkpoint`, ...). Custom-derivative functions, custom rules, host callbacks and
    `custom_root`/`custom_linear_solve` operands stop the walk."""
    cached = ctx.facts.get("_ad.reverse")
    if cached is not None:
        return cached
    out: dict = {}
    work: list = []

    def add(s, desc):
        if id(s) in out or ad_opaque(ctx, s):
            return
        out[id(s)] = (s, desc)
        work.append(s)

    for s in ctx.scopes:
        if s.kind not in ("function", "lambda"):
            continue
        for site in s.sites:
            if site.kind in ("decorator", "call") and site.qualname in S.REVERSE_AD:
                name = f"`{s.name}`" if s.name else "a lambda"
                add(s, f"{name} is differentiated by `{short(site.qualname)}`")
                break
    while work:
        s = work.pop()
        desc = out[id(s)][1]
        for child in s.children:
            if child.kind in ("function", "lambda"):
                add(child, desc)
        for call in s.calls:
            for target in ctx.resolve_functions(call.func, s):
                if target is not s:
                    add(target, desc)
            for target in module_methods(ctx, call.func, s):
                add(target, desc)
            qn = ctx.qualname(call.func)
            if qn is None or qn in NO_AD_PROPAGATION:
                continue
            spec = ctx.transforms.get(qn)
            if spec is not None:
                for arg in ctx.function_args(call, spec):
                    for target in ctx.resolve_functions(arg, s) + module_methods(ctx, arg, s):
                        add(target, desc)
    ctx.facts["_ad.reverse"] = out
    return out


def module_methods(ctx, func, scope) -> list:
    """`model(x)` / `model.method(x)` where `model` is a parameter annotated with a Module class
    of this file: the `__call__` / `method` definitions."""
    if isinstance(func, cst.Name):
        owner, meth = func.value, "__call__"
    elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        owner, meth = func.value.value, func.attr.value
    else:
        return []
    if owner in ("self", "cls"):
        return []
    fn = scope.function
    if fn is None:
        return []
    param = None
    f = fn
    while f is not None:  # the parameter may belong to an enclosing function (closures)
        param = param_annotations(f).get(owner)
        if param is not None:
            break
        f = f.parent.function if f.parent is not None else None
    if param is None:
        return []
    if param.annotation is None:
        sole = _sole_callable_module(ctx)
        if sole is not None and f is not None and f.params and f.params[0] == owner and any(
            site.kind in ("decorator", "call") and site.qualname in EQX_FILTER_REVERSE
            for site in f.sites
        ):
            return [d for d in sole.defs.get(meth, []) if d.kind == "function"]
        return []
    mt = ctx.module_type(param.annotation)
    if not mt or mt.startswith("?") or "." in mt:
        return []
    klass = ctx.classes.get(mt)
    if klass is None:
        return []
    return [d for d in klass.defs.get(meth, []) if d.kind == "function"]


EQX_FILTER_REVERSE = frozenset(
    {"equinox.filter_grad", "equinox.filter_value_and_grad", "equinox.filter_vjp"}
)


def _sole_callable_module(ctx):
    """The only Module class of the file that defines `__call__` (Equinox scripts: the model
    that an unannotated `model` argument of a filter_grad'ed loss holds), else None."""
    found = [
        s for s in ctx.scopes
        if s.kind == "class" and ctx.is_module_class(s) and "__call__" in s.defs
    ]
    return found[0] if len(found) == 1 else None


def reverse_ad_of(ctx, scope):
    """(scope, description) if the function enclosing `scope` is reverse-differentiated."""
    fn = scope.function if scope is not None else None
    if fn is None:
        return None
    return reverse_ad(ctx).get(id(fn))


# ------------------------------------------------------------------ Modules and PyTrees
def param_annotations(scope) -> dict:
    node = scope.node
    if not isinstance(node, cst.FunctionDef):
        return {}
    p = node.params
    out = {}
    for param in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
        out[param.name.value] = param
    if isinstance(p.star_arg, cst.Param):
        out[p.star_arg.name.value] = p.star_arg
    if p.star_kwarg is not None:
        out[p.star_kwarg.name.value] = p.star_kwarg
    return out


def is_pytree_annotation(ctx, ann) -> bool:
    if ann is None:
        return False
    expr = ann.annotation if isinstance(ann, cst.Annotation) else ann
    if isinstance(expr, cst.Subscript):
        expr = expr.value
    qn = ctx.qualname(expr) or ""
    return qn in ("jaxtyping.PyTree", "equinox.internal.PyTree") or qn.endswith(".PyTree")


def module_param(ctx, scope, name: str):
    """If `name` is a parameter of `scope` that holds an Equinox Module: `(kind, text, requires)`.
    `self` of a Module method counts."""
    fn = scope.function if scope is not None else None
    while fn is not None:
        params = param_annotations(fn)
        if name in params:
            if fn.cls is not None and ctx.is_module_class(fn.cls) and fn.params and fn.params[0] == name \
                    and name in ("self",):
                return ("self", f"`self` of the Module `{fn.cls.name}`", None)
            mt = ctx.module_type(params[name].annotation)
            if mt:
                if mt.startswith("?"):
                    return ("param", f"`{name}: {mt[1:].rsplit('.', 1)[-1]}`", ("module_class", mt[1:]))
                return ("param", f"`{name}: {mt.rsplit('.', 1)[-1]}`", None)
            return None
        # Closures: a name not bound in the lambda/function may come from the enclosing one.
        fn = fn.parent.function if fn.parent is not None else None
    return None


def module_constructor(ctx, expr) -> Optional[str]:
    """`Cls(...)` where Cls is a Module class of this file or `eqx.nn.*`."""
    if not isinstance(expr, cst.Call):
        return None
    qn = ctx.qualname(expr.func)
    if qn and qn.startswith(S.EQX_NN_PREFIX) and qn[len(S.EQX_NN_PREFIX):][:1].isupper():
        return short(qn)
    if isinstance(expr.func, cst.Name):
        for d in ctx.module_scope.lookup_def(expr.func.value):
            if d.kind == "class" and ctx.is_module_class(d):
                return d.name
    return None


def local_module_names(ctx, scope) -> dict:
    """Names assigned (once) from a Module constructor in the enclosing function: name -> class."""
    fn = scope.function if scope is not None else None
    key = ("_ad.localmods", id(fn) if fn is not None else 0)
    cached = ctx.facts.get(key)
    if cached is not None:
        return cached
    out: dict = {}
    target_scope = fn if fn is not None else ctx.module_scope
    for assign, s in ctx.assigns:
        if s is not target_scope:
            continue
        for t in assign.targets:
            if isinstance(t.target, cst.Name):
                cls = module_constructor(ctx, assign.value)
                if cls:
                    out[t.target.value] = cls
    ctx.facts[key] = out
    return out


def module_expr(ctx, scope, expr):
    """If `expr` evidently is (or contains, for tuple/list/dict literals) an Equinox Module:
    `(description, requires)`; else None."""
    if isinstance(expr, (cst.Tuple, cst.List)):
        for el in expr.elements:
            if isinstance(el, (cst.Element, cst.StarredElement)):
                found = module_expr(ctx, scope, el.value)
                if found:
                    return found
        return None
    if isinstance(expr, cst.Dict):
        for el in expr.elements:
            if isinstance(el, cst.DictElement):
                found = module_expr(ctx, scope, el.value)
                if found:
                    return found
        return None
    if isinstance(expr, cst.Name):
        mp = module_param(ctx, scope, expr.value)
        if mp:
            return mp[1], mp[2]
        cls = local_module_names(ctx, scope).get(expr.value)
        if cls:
            return f"`{expr.value}` (a `{cls}` Module)", None
        return None
    cls = module_constructor(ctx, expr)
    if cls:
        return f"a `{cls}` Module", None
    return None


# ------------------------------------------------------------------ traced values
def _annotation_is_array(ctx, ann) -> bool:
    if ann is None:
        return False
    expr = ann.annotation
    if isinstance(expr, cst.Subscript):
        qn = ctx.qualname(expr.value) or ""
        if qn.rsplit(".", 1)[-1] in JAXTYPING_DTYPES and qn.startswith("jaxtyping."):
            if expr.slice and isinstance(expr.slice[0].slice, cst.Index):
                inner = ctx.qualname(expr.slice[0].slice.value) or ""
                return inner in ARRAY_ANNOTATIONS
        return False
    return (ctx.qualname(expr) or "") in ARRAY_ANNOTATIONS


def _static_argspec(ctx, site, params):
    """Names made static by a jax.jit site's static_argnums/static_argnames; None if unknown."""
    static = set()
    for kw in ("static_argnums", "static_argnames"):
        val = site.keyword(kw)
        if val is None:
            continue
        items = [e.value for e in val.elements] if isinstance(val, (cst.Tuple, cst.List)) else [val]
        for it in items:
            if isinstance(it, cst.Integer):
                i = int(it.evaluated_value)
                if 0 <= i < len(params):
                    static.add(params[i])
            elif isinstance(it, cst.SimpleString) and isinstance(it.evaluated_value, str):
                static.add(it.evaluated_value)
            else:
                return None
    return static


class TracedNames(frozenset):
    """Names holding tracers, plus `params`: parameters that a transform receives directly
    (their values are arrays or static Python values, never e.g. NumPy constants of a caller)."""

    params: frozenset = frozenset()


_ALL_TRACED = {
    "jax.lax.scan", "jax.lax.while_loop", "equinox.internal.while_loop", "equinox.internal.scan",
}


def traced_names(ctx, scope) -> frozenset:
    """Names in a function that certainly hold tracers when it is traced: array-annotated
    parameters, non-static parameters (without defaults) of a `jax.jit` function, the
    differentiated parameter of `jax.grad`, loop-carry parameters of `lax.scan`/`while_loop`/
    `fori_loop` bodies, and locals assigned from `jnp`/`lax` calls of those."""
    fn = scope.function if scope is not None else None
    if fn is None or not isinstance(fn.node, cst.FunctionDef):
        return frozenset()
    key = ("_ad.traced", id(fn))
    cached = ctx.facts.get(key)
    if cached is not None:
        return cached
    params = param_annotations(fn)
    ordered = [p for p in fn.params]
    names: set = set()
    direct: set = set()
    if fn.traced:
        for name, param in params.items():
            if _annotation_is_array(ctx, param.annotation):
                names.add(name)
        plain = [
            p.name.value
            for p in list(fn.node.params.posonly_params) + list(fn.node.params.params)
            if p.default is None and p.name.value not in ("self", "cls")
        ]
        for site in fn.sites:
            if site.kind not in ("decorator", "call"):
                continue
            qn = site.qualname
            if qn in ctx.transforms:
                direct.update(p for p in fn.params if p not in ("self", "cls"))
            if qn == "jax.jit":
                static = _static_argspec(ctx, site, ordered)
                if static is not None:
                    names.update(p for p in plain if p not in static)
            elif qn in ("jax.grad", "jax.value_and_grad") and site.keyword("argnums") is None:
                if plain and ordered and plain[0] == ordered[0]:
                    names.add(plain[0])
            elif qn in _ALL_TRACED:
                names.update(plain)
            elif qn == "jax.lax.fori_loop":
                names.update(plain[:2])
            elif qn == "jax.vmap" and site.keyword("in_axes") is None and site.kind == "decorator":
                names.update(plain)
        # Closures over the enclosing function's tracers are tracers (unless shadowed).
        outer = fn.parent.function if fn.parent is not None else None
        if outer is not None and outer.traced:
            names.update(n for n in traced_names(ctx, outer) if n not in fn.params)
        # Locals computed by jnp/lax calls (or from traced names) are traced too.
        for _ in range(2):
            for assign, s in ctx.assigns:
                if s is not fn:
                    continue
                if is_traced_expr(ctx, assign.value, names):
                    for t in assign.targets:
                        if isinstance(t.target, cst.Name):
                            names.add(t.target.value)
    result = TracedNames(names)
    result.params = frozenset(direct)
    ctx.facts[key] = result
    return result


def is_traced_expr(ctx, expr, names) -> bool:
    """Conservatively: the expression's value is a tracer when its function is traced."""
    if isinstance(expr, cst.Name):
        return expr.value in names
    if isinstance(expr, cst.Attribute):
        if expr.attr.value in PASS_ATTRS:
            return is_traced_expr(ctx, expr.value, names)
        return False
    if isinstance(expr, cst.Subscript):
        return is_traced_expr(ctx, expr.value, names)
    if isinstance(expr, cst.Call):
        qn = ctx.qualname(expr.func)
        if qn is not None:
            if qn in STATIC_CALLS or qn.rsplit(".", 1)[-1] in _SCALAR_TYPES or qn.rsplit(".", 1)[-1] in STATIC_SUFFIXES:
                return False
            if qn.startswith(TRACED_PREFIXES):
                return True
            return False
        func = expr.func
        if isinstance(func, cst.Attribute) and func.attr.value in ARRAY_METHODS:
            if isinstance(func.value, cst.Name) and func.value.value in getattr(names, "params", ()):
                return True  # only arrays (numpy or jax) have `.sum()`; traced arguments
            return is_traced_expr(ctx, func.value, names)
        return False
    if isinstance(expr, cst.Comparison):
        for comp in expr.comparisons:
            if isinstance(comp.operator, (cst.Is, cst.IsNot)):
                return False
        if is_traced_expr(ctx, expr.left, names):
            return True
        return any(is_traced_expr(ctx, c.comparator, names) for c in expr.comparisons)
    if isinstance(expr, cst.BinaryOperation):
        return is_traced_expr(ctx, expr.left, names) or is_traced_expr(ctx, expr.right, names)
    if isinstance(expr, cst.BooleanOperation):
        return is_traced_expr(ctx, expr.left, names) or is_traced_expr(ctx, expr.right, names)
    if isinstance(expr, cst.UnaryOperation):
        return is_traced_expr(ctx, expr.expression, names)
    if isinstance(expr, cst.IfExp):
        return is_traced_expr(ctx, expr.body, names) or is_traced_expr(ctx, expr.orelse, names)
    return False


def arg_at(call: cst.Call, pos: int, kw: str):
    pos_args = positional(call)
    if pos < len(pos_args):
        return pos_args[pos].value
    a = keyword(call, kw)
    return a.value if a is not None else None
