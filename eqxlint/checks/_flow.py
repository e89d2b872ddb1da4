"""Private helpers for the control-flow rules (EQX109-EQX113).

The centre piece is a small forward taint analysis used by EQX110: which local values of a traced
function are JAX tracers.  Values are classified as

* ``T``  - a tracer (an array computed from traced inputs, or any jnp/lax result under a jaxpr
  trace, since JAX stages every primitive once it is tracing to a jaxpr);
* ``C``  - a Python container holding tracers (its truthiness and length are static);
* ``None`` - static or unknown (the analysis prefers silence).

The engine (`context.py`) tells which scopes are traced and why (`Scope.sites`); this module
decides, per parameter, whether the transform passes it as a tracer, and then walks the function
body statement by statement.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

T = "T"
C = "C"

# Transforms that trace to a jaxpr: under them every jnp/lax call yields a tracer (omnistaging).
JAXPR_ROOTS = frozenset(
    {
        "jax.jit", "jax.pmap", "equinox.filter_jit", "equinox.filter_pmap", "jax.checkpoint",
        "equinox.filter_checkpoint", "jax.eval_shape", "equinox.filter_eval_shape",
        "jax.make_jaxpr", "equinox.filter_make_jaxpr", "jax.shard_map", "equinox.filter_shard_map",
        "equinox.filter_closure_convert", "jax.lax.scan", "jax.lax.map", "jax.lax.while_loop",
        "jax.lax.fori_loop", "jax.lax.cond", "jax.lax.switch", "jax.lax.associative_scan",
        "jax.lax.custom_root", "jax.lax.custom_linear_solve", "equinox.internal.while_loop",
        "equinox.internal.scan", "jax.xmap",
    }
)
# Transforms whose every positional parameter is a tracer (minus static_argnums & co).
ALL_TRACED = frozenset(
    {
        "jax.jit", "jax.pmap", "jax.checkpoint", "jax.eval_shape", "jax.make_jaxpr",
        "jax.shard_map", "jax.xmap", "jax.jvp", "jax.vjp", "jax.linearize", "jax.vmap",
        "jax.lax.scan", "jax.lax.map", "jax.lax.while_loop", "jax.lax.fori_loop", "jax.lax.cond",
        "jax.lax.switch", "jax.lax.associative_scan", "jax.lax.custom_root",
        "jax.lax.custom_linear_solve", "equinox.internal.while_loop", "equinox.internal.scan",
        "jax.experimental.checkify.checkify",
    }
)
# Only the differentiated arguments (argnums, default 0) are tracers.
ARGNUMS_TRACED = frozenset(
    {"jax.grad", "jax.value_and_grad", "jax.jacfwd", "jax.jacrev", "jax.jacobian", "jax.hessian"}
)
# Equinox filtered transforms: only arrays are traced; non-arrays are static. We only know a
# parameter is an array from its annotation.
FILTERED = frozenset(
    {
        "equinox.filter_jit", "equinox.filter_vmap", "equinox.filter_pmap",
        "equinox.filter_checkpoint", "equinox.filter_eval_shape", "equinox.filter_make_jaxpr",
        "equinox.filter_shard_map", "equinox.filter_closure_convert", "equinox.filter_jvp",
        "equinox.filter_vjp", "equinox.internal.filter_vmap",
    }
)
FILTERED_FIRST = frozenset(
    {
        "equinox.filter_grad", "equinox.filter_value_and_grad", "equinox.filter_jacfwd",
        "equinox.filter_jacrev", "equinox.filter_hessian",
    }
)

ARRAY_NAMESPACES = (
    "jax.numpy.", "jax.lax.", "jax.nn.", "jax.scipy.", "jax.random.",
)
# jnp/lax/... functions that return static (Python) information.
STATIC_FUNCS = frozenset(
    {
        "jax.numpy.shape", "jax.numpy.ndim", "jax.numpy.size", "jax.numpy.dtype",
        "jax.numpy.result_type", "jax.numpy.issubdtype", "jax.numpy.isdtype",
        "jax.numpy.promote_types", "jax.numpy.can_cast", "jax.numpy.iscomplexobj",
        "jax.numpy.isrealobj", "jax.numpy.isscalar", "jax.numpy.iinfo", "jax.numpy.finfo",
        "jax.numpy.broadcast_shapes", "jax.numpy.issubsctype", "jax.lax.broadcast_shapes",
        "jax.lax.dtype", "jax.numpy.ndarray", "jax.lax.axis_size", "jax.lax.psum_scatter_size",
        "jax.numpy.get_printoptions", "jax.random.key_impl", "jax.random.PRNGKey",
        "jax.lax.stop_gradient_static",
    }
)
STATIC_LAST = frozenset(
    {"ndim", "shape", "size", "dtype", "result_type", "issubdtype", "isdtype", "iinfo", "finfo",
     "broadcast_shapes", "promote_types", "can_cast", "canonicalize_dtype", "dtypes"}
)
STATIC_BUILTINS = frozenset(
    {
        "len", "isinstance", "issubclass", "type", "callable", "hasattr", "id", "repr", "str",
        "getattr", "dir", "vars", "range", "enumerate", "zip", "sorted", "reversed", "print",
        "tuple", "list", "dict", "set", "frozenset",
    }
)
STATIC_ATTRS = frozenset(
    {
        "shape", "ndim", "dtype", "size", "aval", "weak_type", "sharding", "itemsize", "nbytes",
        "named_shape", "__class__", "__name__",
    }
)
CONVERSIONS = {"bool": "bool", "int": "int", "float": "float", "complex": "complex"}

ARRAY_TYPE_NAMES = frozenset(
    {
        "jax.Array", "jax.numpy.ndarray", "jaxtyping.Array", "chex.Array", "jax.core.Tracer",
        "jaxtyping.PRNGKeyArray", "chex.PRNGKey",
    }
)
JAXTYPING_DTYPES = frozenset(
    {
        "Float", "Int", "Bool", "Shaped", "Num", "Real", "Inexact", "Complex", "UInt", "Integer",
        "Key", "Float32", "Float64", "Float16", "BFloat16", "Int32", "Int64", "Int8", "Int16",
        "UInt8", "UInt32", "Complex64", "Complex128",
    }
)


def array_annotation(ctx, ann) -> bool:
    """An annotation that names a (JAX) array: `jax.Array`, `Array`, `Float[Array, "n"]`."""
    if ann is None:
        return False
    if isinstance(ann, cst.Annotation):
        ann = ann.annotation
    if isinstance(ann, cst.SimpleString):
        return False
    if isinstance(ann, cst.Subscript):
        qn = ctx.qualname(ann.value) or ""
        if qn.rsplit(".", 1)[-1] in JAXTYPING_DTYPES and (qn.startswith("jaxtyping") or "." not in qn):
            el = ann.slice[0].slice if ann.slice else None
            if isinstance(el, cst.Index):
                return array_annotation(ctx, el.value)
        return False
    qn = ctx.qualname(ann)
    if qn is None:
        return False
    return qn in ARRAY_TYPE_NAMES or qn.endswith(".Array") and qn.startswith(("jax", "chex"))


STATIC_ANN = frozenset({"int", "bool", "str", "float", "complex", "bytes", "type", "None"})


def static_annotation(ctx, ann) -> bool:
    if ann is None:
        return False
    if isinstance(ann, cst.Annotation):
        ann = ann.annotation
    qn = ctx.qualname(ann) if isinstance(ann, (cst.Name, cst.Attribute)) else None
    if qn in STATIC_ANN:
        return True
    if qn and qn.rsplit(".", 1)[-1] in ("Callable", "Literal", "Sequence") and qn.startswith(("typing", "collections")):
        return True
    if isinstance(ann, cst.Subscript):
        qn = ctx.qualname(ann.value) or ""
        if qn.rsplit(".", 1)[-1] in ("Callable", "Literal", "Type", "type"):
            return True
    return False


# ---------------------------------------------------------------------------------- parameters
def _params(fn: cst.CSTNode) -> list[cst.Param]:
    p = fn.params
    return list(p.posonly_params) + list(p.params)


def _all_params(fn: cst.CSTNode) -> list[cst.Param]:
    p = fn.params
    out = list(p.posonly_params) + list(p.params) + list(p.kwonly_params)
    return out


def _int_set(expr) -> Optional[set]:
    if expr is None:
        return set()
    if isinstance(expr, cst.Integer):
        return {int(expr.value)}
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) and isinstance(expr.expression, cst.Integer):
        return {-int(expr.expression.value)}
    if isinstance(expr, (cst.Tuple, cst.List)):
        out = set()
        for el in expr.elements:
            sub = _int_set(el.value)
            if sub is None:
                return None
            out |= sub
        return out
    return None


def _str_set(expr) -> Optional[set]:
    if expr is None:
        return set()
    if isinstance(expr, cst.SimpleString):
        v = expr.evaluated_value
        return {v} if isinstance(v, str) else None
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        out = set()
        for el in expr.elements:
            sub = _str_set(el.value)
            if sub is None:
                return None
            out |= sub
        return out
    return None


def _site_fn_arg(ctx, site):
    """The expression passed as the function at a "call" site (for bound methods/partials)."""
    node = site.node
    if isinstance(node, cst.Call) and node.args:
        a = node.args[0]
        if a.keyword is None:
            return a.value
    return None


def _vmap_axes(site) -> Optional[list]:
    """in_axes of a jax.vmap/pmap site as a per-position list (None entries: not mapped);
    returns [] for the default (all mapped) and None when unknown."""
    expr = site.keyword("in_axes")
    node = site.node.decorator if isinstance(site.node, cst.Decorator) else site.node
    if expr is None and isinstance(node, cst.Call):
        pos = [a for a in node.args if a.keyword is None]
        if site.kind == "call" and len(pos) >= 2:
            expr = pos[1].value
        elif site.kind == "decorator" and len(pos) >= 2:  # partial(jax.vmap, in_axes)
            expr = pos[1].value
    if expr is None:
        return []
    if isinstance(expr, cst.Integer):
        return []
    if isinstance(expr, cst.Name) and expr.value == "None":
        return None  # nothing mapped?? unusual; unknown
    if isinstance(expr, (cst.Tuple, cst.List)):
        out = []
        for el in expr.elements:
            v = el.value
            out.append(None if isinstance(v, cst.Name) and v.value == "None" else 0)
        return out
    return None


def param_taint(ctx, scope) -> dict:
    """Parameter name -> T for the parameters the scope's trace sites pass as tracers."""
    fn = scope.node
    params = _params(fn)
    allp = _all_params(fn)
    traced: dict = {}
    is_method = scope.cls is not None and params and params[0].name.value in ("self", "cls")
    for site in scope.sites:
        if site.kind not in ("decorator", "call"):
            continue
        qn = site.qualname
        offset = 0
        if site.kind == "call" and is_method:
            farg = _site_fn_arg(ctx, site)
            if isinstance(farg, cst.Attribute):
                offset = 1  # bound method: `self` is not an argument
        bound_kw: set = set()
        bound_pos = 0
        if site.kind == "call":
            farg = _site_fn_arg(ctx, site)
            if isinstance(farg, cst.Call) and ctx.qualname(farg.func) in ("functools.partial", "partial"):
                bound_pos = len([a for a in farg.args[1:] if a.keyword is None and not a.star])
                bound_kw = {a.keyword.value for a in farg.args if a.keyword is not None}
        if site.kind == "call":
            farg = _site_fn_arg(ctx, site)
            if isinstance(farg, cst.Name) and _rebound(ctx, scope.parent, farg.value):
                continue  # `f = partial(f, ...)` / `f = wrap(f)` before the transform: unknown
        pos_params = params[offset + bound_pos:]
        if qn in ALL_TRACED:
            static_nums = _int_set(site.keyword("static_argnums"))
            static_names = _str_set(site.keyword("static_argnames"))
            if qn == "jax.pmap":
                extra = _int_set(site.keyword("static_broadcasted_argnums"))
                static_nums = None if static_nums is None or extra is None else static_nums | extra
            if static_nums is None or static_names is None:
                continue  # not a literal: cannot tell which are static
            axes = _vmap_axes(site) if qn in ("jax.vmap", "jax.pmap") else []
            if axes is None:
                continue
            n = len(pos_params)
            static_nums = {i % n if i < 0 and n else i for i in static_nums}
            for i, p in enumerate(pos_params):
                name = p.name.value
                if i in static_nums or name in static_names or name in bound_kw:
                    continue
                if axes and i < len(axes) and axes[i] is None:
                    continue
                if i == 0 and is_method and offset == 0:
                    traced[name] = "self"
                    continue
                if p.default is not None and _literal_default(p.default):
                    continue  # a defaulted flag: usually never passed, so a Python value
                if _callable_annotation(ctx, p.annotation):
                    continue
                traced[name] = T
            if qn in ("jax.jit", "jax.pmap"):
                for p in allp[len(params):]:  # keyword-only
                    name = p.name.value
                    if name in static_names or name in bound_kw or p.default is not None:
                        continue
                    traced[name] = T
        elif qn in ARGNUMS_TRACED:
            nums = _int_set(site.keyword("argnums"))
            if nums is None:
                continue
            nums = nums or {0}
            for i, p in enumerate(pos_params):
                if i in nums and not static_annotation(ctx, p.annotation):
                    if i == 0 and is_method and offset == 0:
                        continue
                    traced[p.name.value] = T
        elif qn in FILTERED or qn in FILTERED_FIRST:
            for i, p in enumerate(pos_params):
                if qn in FILTERED_FIRST and i > 0:
                    break
                if i == 0 and is_method and offset == 0:
                    traced[p.name.value] = "self"
                    continue
                if array_annotation(ctx, p.annotation):
                    traced[p.name.value] = T
                elif p.annotation is None and p.default is None and p.name.value in _array_used(fn):
                    # filtered transforms trace arrays: a parameter used as an array
                    # (`x.sum()`, `x.shape`, `x @ w`, `x.at[...]`) is one.
                    traced[p.name.value] = T
    return traced


ARRAY_METHODS = frozenset(
    {"sum", "mean", "any", "all", "prod", "std", "var", "argmax", "argmin", "cumsum", "nonzero"}
)

ARRAY_ONLY_ATTRS = frozenset(
    {
        "shape", "ndim", "dtype", "sum", "mean", "max", "min", "reshape", "astype", "at", "T",
        "prod", "any", "all", "squeeze", "ravel", "flatten", "transpose", "clip", "argmax",
        "argmin", "std", "var", "cumsum", "real", "imag", "conj", "swapaxes", "nonzero",
    }
)


def _array_used(fn) -> set:
    """Parameter-like names used as arrays in a function body."""
    from ..syntax.walker import iter_subtree

    out = set()
    body = fn.body
    for n in iter_subtree(body, (cst.Attribute, cst.BinaryOperation)):
        if isinstance(n, cst.Attribute):
            if isinstance(n.value, cst.Name) and n.attr.value in ARRAY_ONLY_ATTRS:
                out.add(n.value.value)
        elif isinstance(n.operator, cst.MatrixMultiply):
            for side in (n.left, n.right):
                if isinstance(side, cst.Name):
                    out.add(side.value)
    return out


def _callable_annotation(ctx, ann) -> bool:
    if ann is None:
        return False
    ann = ann.annotation if isinstance(ann, cst.Annotation) else ann
    if isinstance(ann, cst.Subscript):
        ann = ann.value
    qn = ctx.qualname(ann) if isinstance(ann, (cst.Name, cst.Attribute)) else None
    return bool(qn) and qn.rsplit(".", 1)[-1] in ("Callable", "Type", "type", "str")


def _rebound(ctx, scope, name: str) -> bool:
    """`name` is also assigned (not only def'd) in `scope`."""
    if scope is None:
        return False
    names = scope.info.get("_flow_assigned")
    if names is None:
        names = set()
        for assign, sc in ctx.assigns:
            if sc is scope:
                for t in assign.targets:
                    if isinstance(t.target, cst.Name):
                        names.add(t.target.value)
        scope.info["_flow_assigned"] = names
    return name in names


def _literal_default(expr) -> bool:
    if isinstance(expr, (cst.Integer, cst.Float, cst.SimpleString, cst.Imaginary)):
        return True
    if isinstance(expr, cst.Name) and expr.value in ("None", "True", "False"):
        return True
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.expression, (cst.Integer, cst.Float)):
        return True
    return False


def roots(scope, _seen=None) -> set:
    """Qualnames of the transforms at the root of a scope's trace (following callee/nested)."""
    seen = _seen if _seen is not None else set()
    if id(scope) in seen:
        return set()
    seen.add(id(scope))
    out = set()
    for site in scope.sites:
        if site.kind in ("decorator", "call"):
            out.add(site.qualname)
        elif site.kind == "rule":
            out.add("rule")
        elif site.via is not None:
            out |= roots(site.via, seen)
    return out


# ---------------------------------------------------------------------------------- classes
def field_kinds(ctx, cls_scope) -> dict:
    """Field name -> "static" | "array" | "other" for a class body's annotated fields."""
    cache = cls_scope.info.setdefault("_flow_fields", None)
    if cache is not None:
        return cache
    out: dict = {}
    body = cls_scope.node.body
    stmts = body.body if isinstance(body, cst.IndentedBlock) else []
    for st in stmts:
        if not isinstance(st, cst.SimpleStatementLine):
            continue
        for small in st.body:
            if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                name = small.target.value
                kind = "other"
                val = small.value
                if isinstance(val, cst.Call):
                    qn = ctx.qualname(val.func) or ""
                    if qn.endswith("static_field"):
                        kind = "static"
                    for a in val.args:
                        if a.keyword is not None and a.keyword.value == "static" and isinstance(a.value, cst.Name) and a.value.value == "True":
                            kind = "static"
                if kind == "other":
                    if array_annotation(ctx, small.annotation):
                        kind = "array"
                    elif static_annotation(ctx, small.annotation):
                        kind = "static"
                out[name] = kind
    cls_scope.info["_flow_fields"] = out
    return out


# ---------------------------------------------------------------------------------- analysis
def join(a, b):
    if a == T or b == T:
        return T
    if a == C or b == C:
        return C
    return None


def merge(e1: dict, e2: dict) -> dict:
    out = dict(e1)
    for k, v in e2.items():
        out[k] = join(out.get(k), v)
    return out


import re as _re


def _is_flag(expr) -> bool:
    while isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Not):
        expr = expr.expression
    return isinstance(expr, (cst.Name, cst.Attribute))

_TRACER_GUARD = _re.compile(r"[Tt]racer|[Cc]oncret|is_constant|core\.Literal")


class Finding:
    __slots__ = ("node", "kind", "expr", "scope")

    def __init__(self, node, kind, expr, scope):
        self.node = node
        self.kind = kind  # if | while | range | conv | item | ifexp | compif
        self.expr = expr
        self.scope = scope


class TaintAnalysis:
    """Forward taint over one traced function (and, recursively, its nested functions)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.findings: dict = {}  # id(node) -> Finding
        self.params: set = set()  # raw parameter names of the current function
        self.staged = False  # jnp/lax calls yield tracers
        self.quiet = 0  # inside jax.ensure_compile_time_eval
        self.scope = None
        self.self_fields: Optional[dict] = None
        self.module_params: dict = {}
        self.returns = None
        self.lenient = False
        self.active: set = set()  # callee scopes being analysed (recursion guard)
        self.summaries: dict = {}

    # ----------------------------------------------------------------- entry points
    def run_function(self, scope, env: Optional[dict] = None, override: Optional[dict] = None,
                     staged: Optional[bool] = None):
        """Analyse a function; returns the taint of its return values."""
        ctx = self.ctx
        saved = (self.params, self.staged, self.scope, self.self_fields, self.module_params, self.returns)
        self.returns = None
        env = dict(env or {})
        ptaint = param_taint(ctx, scope)
        if scope.kind == "lambda":
            ptaint.update(self._lambda_taint(scope))
        if override:
            ptaint = {**ptaint, **override}
        rts = roots(scope)
        self.staged = bool(rts & JAXPR_ROOTS) if staged is None else (staged or bool(rts & JAXPR_ROOTS))
        self.scope = scope
        self.self_fields = None
        self.module_params = {}
        raw = set()
        node = scope.node
        for p in _all_params(node) + ([node.params.star_arg] if isinstance(node.params.star_arg, cst.Param) else []):
            name = p.name.value
            env[name] = None
            v = ptaint.get(name)
            if v == "self":
                if scope.cls is not None and ctx.is_module_class(scope.cls):
                    self.self_fields = field_kinds(ctx, scope.cls)
                continue
            if v == T:
                mt = ctx.module_type(p.annotation) if p.annotation is not None else None
                if mt and not mt.startswith("?"):
                    cls = ctx.classes.get(mt.rsplit(".", 1)[-1])
                    if cls is not None:
                        self.module_params[name] = field_kinds(ctx, cls)
                    continue
                if mt:
                    continue
                env[name] = T
                if not array_annotation(ctx, p.annotation):
                    raw.add(name)
        self.params = raw
        if isinstance(node, cst.Lambda):
            self.returns = self.expr(node.body, env)
        else:
            self.block(node.body, env)
        result = self.returns
        self.params, self.staged, self.scope, self.self_fields, self.module_params, self.returns = saved
        return result

    def _lambda_taint(self, scope) -> dict:
        out = {}
        for site in scope.sites:
            if site.kind == "call" and site.qualname in ALL_TRACED and site.qualname.startswith(("jax.lax", "equinox.internal")):
                for p in _params(scope.node):
                    out[p.name.value] = T
        return out

    # ----------------------------------------------------------------- statements
    def block(self, body, env: dict) -> tuple:
        """Returns (env, terminated)."""
        if isinstance(body, cst.IndentedBlock):
            stmts = body.body
        elif isinstance(body, cst.SimpleStatementSuite):
            stmts = [body]
        else:
            stmts = body
        for st in stmts:
            if self.stmt(st, env):
                return env, True
        return env, False

    def stmt(self, st, env: dict) -> bool:
        """Process a statement, updating env in place; True when it ends the block."""
        if isinstance(st, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in st.body:
                if self.small(small, env):
                    return True
            return False
        if isinstance(st, cst.If):
            self._if(st, env)
            return False
        if isinstance(st, cst.While):
            self._while(st, env)
            return False
        if isinstance(st, cst.For):
            self._for(st, env)
            return False
        if isinstance(st, cst.With):
            quiet = any(self._compile_time_eval(item.item) for item in st.items)
            for item in st.items:
                self.expr(item.item, env)
                if item.asname is not None:
                    self.assign_target(item.asname.name, None, env)
            if quiet:
                self.quiet += 1
            e, _ = self.block(st.body, env)
            if quiet:
                self.quiet -= 1
            return False
        if isinstance(st, cst.Try):
            base = dict(env)
            guard = any(
                h.type is not None and _TRACER_GUARD.search(self.ctx.code(h.type)) for h in st.handlers
            )
            if guard:
                self.quiet += 1
            e, _ = self.block(st.body, env)
            if guard:
                self.quiet -= 1
            for h in st.handlers:
                he = dict(base)
                self.block(h.body, he)
                env.update(merge(env, he))
            if st.orelse is not None:
                self.block(st.orelse.body, env)
            if st.finalbody is not None:
                self.block(st.finalbody.body, env)
            return False
        if isinstance(st, cst.FunctionDef):
            for d in st.decorators:
                self.expr(d.decorator, env)
            inner = self.ctx.scope_of.get(id(st))
            if inner is not None and inner.traced:
                self.run_function(inner, env)
            env[st.name.value] = None
            return False
        if isinstance(st, cst.ClassDef):
            env[st.name.value] = None
            return False
        return False

    def small(self, s, env: dict) -> bool:
        if isinstance(s, cst.Assign):
            v = self.expr(s.value, env)
            for t in s.targets:
                self.assign_target(t.target, v, env, s.value)
            return False
        if isinstance(s, cst.AnnAssign):
            if s.value is not None:
                v = self.expr(s.value, env)
                self.assign_target(s.target, v, env, s.value)
            return False
        if isinstance(s, cst.AugAssign):
            v = self.expr(s.value, env)
            if isinstance(s.target, cst.Name):
                old = env.get(s.target.value)
                env[s.target.value] = T if (v == T or old == T) else join(old, v)
                self.params.discard(s.target.value)
            return False
        if isinstance(s, cst.Expr):
            self.expr(s.value, env)
            return False
        if isinstance(s, cst.Return):
            if s.value is not None:
                self.returns = join(self.returns, self.expr(s.value, env))
            return True
        if isinstance(s, cst.Raise):
            if s.exc is not None:
                self.expr(s.exc, env)
            return True
        if isinstance(s, (cst.Continue, cst.Break)):
            return True
        if isinstance(s, cst.Assert):
            # EQX210 owns `assert <traced>`; only look inside for conversions.
            self.expr(s.test, env)
            return False
        if isinstance(s, cst.Del):
            return False
        return False

    def assign_target(self, target, v, env: dict, value=None) -> None:
        if isinstance(target, cst.Name):
            env[target.value] = v
            self.params.discard(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            vals = None
            if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(target.elements) and not any(isinstance(e, cst.StarredElement) for e in value.elements):
                vals = [self.expr(e.value, env, report=False) for e in value.elements]
            for i, el in enumerate(target.elements):
                sub = el.value
                ev = vals[i] if vals is not None else (T if v in (T, C) else None)
                if isinstance(el, cst.StarredElement):
                    ev = C if v in (T, C) else None
                self.assign_target(sub, ev, env)
        # attribute/subscript targets: ignore

    def _compile_time_eval(self, expr) -> bool:
        if isinstance(expr, cst.Call):
            qn = self.ctx.qualname(expr.func) or ""
            return qn.endswith("ensure_compile_time_eval") or qn.endswith("disable_jit")
        return False

    def _raise_only(self, body) -> bool:
        stmts = body.body if isinstance(body, cst.IndentedBlock) else [body]
        seen_raise = False
        if not stmts:
            return False
        for st in stmts:
            if not isinstance(st, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
                return False
            for small in st.body:
                if isinstance(small, cst.Raise):
                    seen_raise = True
                    continue
                if not isinstance(small, cst.Pass) and not (
                    isinstance(small, cst.Expr) and isinstance(small.value, (cst.Call,))
                    and (self.ctx.qualname(small.value.func) or "").startswith(("warnings.", "logging."))
                ):
                    return False
        return seen_raise

    def _if(self, st: cst.If, env: dict) -> None:
        v = self.expr(st.test, env)
        if self._truthy_traced(st.test, v) and not self._raise_only(st.body):
            self.find(st, "if", st.test)
        if _TRACER_GUARD.search(self.ctx.code(st.test)):
            # `if isinstance(x, jax.core.Tracer): ... else: <concrete-only code>`: the code
            # knows what it is doing.
            self.quiet += 1
            try:
                self._if_branches(st, env)
            finally:
                self.quiet -= 1
            return
        self._if_branches(st, env)

    def _if_branches(self, st: cst.If, env: dict) -> None:
        e1 = dict(env)
        _, term1 = self.block(st.body, e1)
        e2 = dict(env)
        term2 = False
        if isinstance(st.orelse, cst.If):
            self._if(st.orelse, e2)
        elif isinstance(st.orelse, cst.Else):
            _, term2 = self.block(st.orelse.body, e2)
        if term1 and not term2:
            res = e2
        elif term2 and not term1:
            res = e1
        else:
            res = merge(e1, e2)
        env.clear()
        env.update(res)

    def _while(self, st: cst.While, env: dict) -> None:
        self.expr(st.test, env, report=False)
        e1 = dict(env)
        self.block(st.body, e1)
        env.update(merge(env, e1))
        v = self.expr(st.test, env)
        if self._truthy_traced(st.test, v):
            self.find(st, "while", st.test)
        e2 = dict(env)
        self.block(st.body, e2)
        env.update(merge(env, e2))
        if st.orelse is not None:
            self.block(st.orelse.body, env)

    def iter_targets(self, target, it, env: dict) -> None:
        """Bind a for/comprehension target from its iterable."""
        if isinstance(it, cst.Call):
            qn = self.ctx.qualname(it.func)
            args = [a.value for a in it.args if a.keyword is None and not a.star]
            if qn == "range":
                self.assign_target(target, None, env)
                return
            if qn == "enumerate" and args and isinstance(target, (cst.Tuple, cst.List)) and len(target.elements) == 2:
                self.assign_target(target.elements[0].value, None, env)
                v = self.expr(args[0], env, report=False)
                self.assign_target(target.elements[1].value, T if v in (T, C) else None, env)
                return
            if qn == "zip" and isinstance(target, (cst.Tuple, cst.List)) and len(target.elements) == len(args):
                for el, a in zip(target.elements, args):
                    v = self.expr(a, env, report=False)
                    self.assign_target(el.value, T if v in (T, C) else None, env)
                return
        v = self.expr(it, env, report=False)
        self.assign_target(target, T if v in (T, C) else None, env)

    def _for(self, st: cst.For, env: dict) -> None:
        self.expr(st.iter, env)
        for _ in range(2):
            e1 = dict(env)
            self.iter_targets(st.target, st.iter, e1)
            self.block(st.body, e1)
            env.update(merge(env, e1))
        if st.orelse is not None:
            self.block(st.orelse.body, env)

    def _truthy_traced(self, test, v) -> bool:
        """Would `bool(test)` convert a tracer?"""
        if v != T:
            return False
        inner = test
        while isinstance(inner, cst.UnaryOperation) and isinstance(inner.operator, cst.Not):
            inner = inner.expression
        if isinstance(inner, cst.BooleanOperation):
            if self._truthy_traced(inner.left, self._peek(inner.left)):
                return True
            # The right operand runs only when the left one lets it: a guard such as
            # `not_tracer(i) and i > 0`, `isinstance(x, int) and x > 0` or a static flag
            # (`numpy_resid and rank < n`) protects it.
            if self._has_guard_call(inner.left) or _is_flag(inner.left):
                return False
            return self._truthy_traced(inner.right, self._peek(inner.right))
        if isinstance(inner, cst.Name) and inner.value in self.params and self.lenient:
            return False  # a raw, unannotated parameter: may be a container or an Optional
        return True

    def _has_guard_call(self, expr) -> bool:
        from ..syntax.walker import iter_subtree

        for node in iter_subtree(expr, (cst.Call,)):
            qn = self.ctx.qualname(node.func) if isinstance(node.func, (cst.Name, cst.Attribute)) else None
            if qn not in ("len",):
                return True
        return False

    def _peek(self, expr):
        return self._env_peek.get(id(expr)) if hasattr(self, "_env_peek") else T

    def find(self, node, kind, expr) -> None:
        if self.quiet:
            return
        if id(node) not in self.findings:
            self.findings[id(node)] = Finding(node, kind, expr, self.scope)

    # ----------------------------------------------------------------- expressions
    def expr(self, e, env: dict, report: bool = True):
        v = self._expr(e, env, report)
        if not hasattr(self, "_env_peek"):
            self._env_peek = {}
        self._env_peek[id(e)] = v
        return v

    def _expr(self, e, env: dict, report: bool):
        ctx = self.ctx
        ex = lambda sub: self.expr(sub, env, report)  # noqa: E731
        if isinstance(e, cst.Name):
            return env.get(e.value)
        if isinstance(e, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString, cst.Ellipsis)):
            return None
        if isinstance(e, cst.FormattedString):
            for part in e.parts:
                if isinstance(part, cst.FormattedStringExpression):
                    ex(part.expression)
            return None
        if isinstance(e, cst.Attribute):
            base = e.value
            if isinstance(base, cst.Name) and base.value == "self" and self.self_fields is not None:
                return T if self.self_fields.get(e.attr.value) == "array" else None
            if isinstance(base, cst.Name) and base.value in self.module_params and env.get(base.value) is None:
                return T if self.module_params[base.value].get(e.attr.value) == "array" else None
            v = ex(base)
            if e.attr.value in STATIC_ATTRS:
                return None
            return T if v == T else None
        if isinstance(e, cst.Subscript):
            v = ex(e.value)
            for el in e.slice:
                if isinstance(el.slice, cst.Index):
                    ex(el.slice.value)
                else:
                    for part in (el.slice.lower, el.slice.upper, el.slice.step):
                        if part is not None:
                            ex(part)
            if isinstance(e.value, cst.Attribute) and e.value.attr.value in STATIC_ATTRS:
                return None
            return T if v in (T, C) else None
        if isinstance(e, cst.BinaryOperation):
            a, b = ex(e.left), ex(e.right)
            if a == T or b == T:
                return T
            return C if C in (a, b) else None
        if isinstance(e, cst.UnaryOperation):
            v = ex(e.expression)
            if isinstance(e.operator, cst.Not):
                if self._truthy_traced(e.expression, v) and report:
                    pass  # reported by the enclosing `if`/`while` when used there
                return T if v == T else None
            return T if v == T else None
        if isinstance(e, cst.BooleanOperation):
            a, b = ex(e.left), ex(e.right)
            return T if T in (a, b) else None
        if isinstance(e, cst.Comparison):
            vals = [ex(e.left)]
            static = True
            tainted = vals[0] == T
            left_str = isinstance(e.left, (cst.SimpleString, cst.ConcatenatedString))
            for ct in e.comparisons:
                v = ex(ct.comparator)
                op = ct.operator
                if isinstance(op, (cst.Is, cst.IsNot)):
                    continue
                static = False
                if isinstance(op, (cst.In, cst.NotIn)):
                    continue  # membership of a tracer in a container: rare; containers of tracers: static
                if isinstance(ct.comparator, (cst.SimpleString, cst.ConcatenatedString)) or left_str:
                    continue  # string compare: a config flag (EQX103's business)
                if v == T:
                    tainted = True
            if static:
                return None
            if any(isinstance(ct.operator, (cst.In, cst.NotIn)) for ct in e.comparisons) and vals[0] == T and not left_str:
                tainted = True
            return T if tainted else None
        if isinstance(e, cst.IfExp):
            tv = ex(e.test)
            if report and self._truthy_traced(e.test, tv):
                self.find(e, "ifexp", e.test)
            a, b = ex(e.body), ex(e.orelse)
            return join(a, b)
        if isinstance(e, (cst.Tuple, cst.List, cst.Set)):
            vals = [ex(el.value) for el in e.elements]
            return C if any(v in (T, C) for v in vals) else None
        if isinstance(e, cst.Dict):
            vals = []
            for el in e.elements:
                if isinstance(el, cst.DictElement):
                    ex(el.key)
                    vals.append(ex(el.value))
                else:
                    vals.append(ex(el.value))
            return C if any(v in (T, C) for v in vals) else None
        if isinstance(e, cst.Lambda):
            inner = ctx.scope_of.get(id(e))
            if inner is not None and inner.traced:
                self.run_function(inner, env)
            return None
        if isinstance(e, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            return self._comp(e, env, report)
        if isinstance(e, cst.NamedExpr):
            v = ex(e.value)
            self.assign_target(e.target, v, env)
            return v
        if isinstance(e, cst.Call):
            return self._call(e, env, report)
        if isinstance(e, cst.Await) or isinstance(e, cst.Yield):
            return None
        if isinstance(e, cst.StarredElement):
            return ex(e.value)
        return None

    def _module_method(self, func):
        """`model(x)` / `model.encode(x)` / `self.mlp(x)` where `model`/`self.mlp` is annotated
        with a Module class of this file: that class's `__call__` / method."""
        ctx = self.ctx
        ann = None
        meth = "__call__"
        target = func
        if isinstance(func, cst.Attribute) and not (isinstance(func.value, cst.Name) and func.value.value == "self"):
            meth = func.attr.value
            target = func.value
        if isinstance(target, cst.Name):
            s = self.scope
            while s is not None and ann is None:
                if s.kind in ("function", "lambda"):
                    p = s.node.params
                    for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                        if prm.name.value == target.value:
                            ann = prm.annotation
                            s = None
                            break
                    else:
                        s = s.parent
                        continue
                    break
                s = s.parent
        elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and target.value.value == "self":
            fn = self.scope
            cls = fn.cls if fn is not None else None
            if cls is not None:
                body = cls.node.body
                for st in body.body if isinstance(body, cst.IndentedBlock) else []:
                    if isinstance(st, cst.SimpleStatementLine):
                        for small in st.body:
                            if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.target.value == target.attr.value:
                                ann = small.annotation
        if ann is None:
            return None
        mt = ctx.module_type(ann)
        if not mt or mt.startswith("?"):
            return None
        cls = ctx.classes.get(mt.rsplit(".", 1)[-1])
        if cls is None or not ctx.is_module_class(cls):
            return None
        found = [d for d in cls.defs.get(meth, []) if d.kind == "function"]
        return found[0] if len(found) == 1 else None

    def _callee(self, target, call: cst.Call, argvals: list, bound: bool = False, force: bool = False):
        """Analyse a same-file function called with known tracer arguments (context-sensitive,
        depth-limited); returns the taint of its result."""
        if (not target.traced and not force) or target.in_ad_rule():
            return None
        if id(target) in self.active or len(self.active) >= 3:
            return None
        params = _params(target.node)
        if bound and params and params[0].name.value in ("self", "cls") and target.cls is not None:
            params = params[1:]
        override = {}
        pos = [(a, v) for a, v in zip(call.args, argvals) if a.keyword is None]
        if any(a.star for a, _ in pos):
            return None
        for (a, v), p in zip(pos, params):
            override[p.name.value] = T if v == T else None
        byname = {p.name.value: p for p in _all_params(target.node)}
        for a, v in zip(call.args, argvals):
            if a.keyword is not None and a.keyword.value in byname:
                override[a.keyword.value] = T if v == T else None
        override = {k: v for k, v in override.items() if v == T}
        key = (id(target), tuple(sorted(override)), self.staged)
        if key in self.summaries:
            return self.summaries[key]
        self.active.add(id(target))
        self.summaries[key] = None
        env = {}
        try:
            res = self.run_function(target, env, override=override, staged=self.staged)
        finally:
            self.active.discard(id(target))
        res = T if res == T else None
        self.summaries[key] = res
        return res

    def _comp(self, e, env: dict, report: bool):
        inner = dict(env)
        saved = set(self.params)
        f = e.for_in
        while f is not None:
            self.expr(f.iter, inner, report)
            self.iter_targets(f.target, f.iter, inner)
            for cond in f.ifs:
                v = self.expr(cond.test, inner, report)
                if report and self._truthy_traced(cond.test, v):
                    self.find(cond, "compif", cond.test)
            f = f.inner_for_in
        if isinstance(e, cst.DictComp):
            self.expr(e.key, inner, report)
            v = self.expr(e.value, inner, report)
        else:
            v = self.expr(e.elt, inner, report)
        self.params = saved
        return C if v in (T, C) else None

    def _call(self, e: cst.Call, env: dict, report: bool):
        ctx = self.ctx
        func = e.func
        argvals = []
        for a in e.args:
            argvals.append(self.expr(a.value, env, report))
        any_t = any(v in (T, C) for v in argvals)
        pos = [(a.value, v) for a, v in zip(e.args, argvals) if a.keyword is None and not a.star]
        qn = ctx.qualname(func) if isinstance(func, (cst.Name, cst.Attribute)) else None
        if isinstance(func, cst.Name) and self.scope is not None and self.scope.lookup_def(func.value):
            qn = None if qn in CONVERSIONS or qn == "range" else qn  # shadowed builtin
            if qn is None:
                return None
        if qn in CONVERSIONS and len(pos) == 1 and not e.args[0].keyword:
            arg, v = pos[0]
            if v == T and report:
                self.find(e, "conv", arg)
            return None
        if qn == "range":
            if report and any(v == T for _, v in pos):
                self.find(e, "range", e)
            return None
        if qn in ("max", "min") and len(pos) >= 2 and not any(a.keyword for a in e.args):
            if report and any(v == T for _, v in pos):
                self.find(e, "minmax", e)
            return None
        if isinstance(func, cst.Attribute) and func.attr.value in ("item", "tolist") and not e.args:
            v = self.expr(func.value, env, report)
            if v == T and report:
                self.find(e, "item", func.value)
            return None
        if qn is not None:
            if qn in STATIC_BUILTINS or qn in STATIC_FUNCS:
                return None
            if qn.startswith(ARRAY_NAMESPACES):
                last = qn.rsplit(".", 1)[-1]
                if last.startswith("_") or last in STATIC_LAST:
                    return None  # private helpers (`lax._ndim`) and shape/dtype queries
                return T if (self.staged or any_t) else None
            if qn in ("jax.tree_util.tree_map", "jax.tree.map", "jax.tree_map"):
                return T if any_t else None
            if qn in ("jax.lax.stop_gradient",):
                return T if any_t or self.staged else None
            if qn.startswith(("jax.", "equinox.", "numpy.", "math.", "builtins")):
                return None
        if isinstance(func, (cst.Name, cst.Attribute)) and self.scope is not None:
            targets = [t for t in ctx.resolve_functions(func, self.scope) if t.kind == "function"]
            if len(targets) == 1:
                bound = isinstance(func, cst.Attribute)
                return self._callee(targets[0], e, argvals, bound=bound)
            target = self._module_method(func)
            if target is not None:
                return self._callee(target, e, argvals, bound=True, force=True)
        if isinstance(func, cst.Call):
            # jax.grad(f)(x), eqx.filter_vmap(f)(x): a transformed call returns arrays.
            iq = ctx.qualname(func.func) if isinstance(func.func, (cst.Name, cst.Attribute)) else None
            self.expr(func, env, report)
            if iq and iq in ctx.transforms and not iq.endswith(("eval_shape", "make_jaxpr")):
                return T if (self.staged or any_t) else None
            return None
        if isinstance(func, cst.Attribute):
            base = self.expr(func.value, env, report)
            if base == T and func.attr.value not in STATIC_ATTRS:
                # a method of a tracer: x.sum(), x.astype(...), x.at[i].set(v)
                return T
            if self.staged and func.attr.value in ARRAY_METHODS and not (
                isinstance(func.value, cst.Name) and func.value.value in ("self", "np", "numpy", "math")
            ):
                # under a jaxpr trace an array reduction is staged out even on constants
                return T
            return None
        return None


# ---------------------------------------------------------------------------------- lax.cond
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
