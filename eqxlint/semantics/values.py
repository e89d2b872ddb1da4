"""The value analysis: what each expression of a file holds, computed once per file.

Every function body (and the module body) is interpreted once by the flow engine over a small
lattice of abstract values (`Val`):

- `ARR`: an array (a tracer when its condition holds); `RAW`: an array or a PyTree of arrays
  (an unannotated parameter: its truth value may be a container's, so it is never claimed);
- `BOX`: a Python container (its truthiness and length are static; its elements may be traced);
- `STATIC`: a static Python value (literals, shapes, dtypes, `len`, numpy on static values,
  `lax.psum(1, axis)`, arithmetic on those);
- `KEY`: a PRNG key; `INST`: an instance of a class (`ref`); `CLS`: a class;
- `FN`: a function (`ref`), possibly wrapped by transforms (`via`) or partially applied;
- `Q`: a name of an external module or API (`ref` canonical, `raw` as imported);
- `UNK`: unknown. Unknown is never claimed to be traced.

Whether a value holds tracers is a condition (`eqxlint.semantics.cond`) over the function's
calling context, so one analysis serves every caller, in any module. Beside the values, the
analysis writes each function's *summary* (its parameters, the functions it calls or hands to
transforms with the conditions of the arguments, what it returns, which key parameters it
consumes): the project phase builds the call graph from them.
"""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from . import cond as C
from . import keys as K
from . import names as S
from . import tracing as T
from . import types as TY
from .flow import Domain, FlowEngine
from ..syntax.nodes import int_value

ARR, RAW, BOX, STATIC, KEY, INST, CLS, FN, Q, UNK = (
    "arr", "raw", "box", "static", "key", "inst", "cls", "fn", "q", "unk",
)


class Val:
    __slots__ = ("kind", "cond", "ref", "via", "skip", "bound", "items", "raw", "src", "virtual", "lit")

    def __init__(self, kind, cond=C.FALSE, ref=None, via=(), skip=0, bound=(), items=None, raw=None, src=None, virtual=False, lit=None):
        self.kind = kind
        self.cond = cond
        self.ref = ref
        self.via = via  # FN: wrap specs applied, innermost first
        self.skip = skip  # FN: leading positional parameters already bound (self, partial args)
        self.bound = bound  # FN: ((key, cond), ...) of partial's keyword arguments
        self.items = items  # BOX: element values of a literal tuple/list
        self.raw = raw  # Q: the name as imported (before canonicalisation)
        self.src = src  # the parameter this value is, when it is one
        self.virtual = virtual  # FN: a method looked up on `self` (subclass overrides apply)
        self.lit = lit  # STATIC: the constant it is known to be (a bool, or an int), else None

    def __repr__(self):  # pragma: no cover
        return f"Val({self.kind}, {sorted(map(str, self.cond))}, {self.ref})"

    @property
    def traced(self) -> frozenset:
        return self.cond


_STATIC = Val(STATIC)
_UNK = Val(UNK)
_TRUE = Val(STATIC, lit=True)
_FALSE = Val(STATIC, lit=False)
_INTS: dict = {}
_NONE = Val(STATIC)

# Attributes of arrays that are static metadata.
STATIC_ATTRS = frozenset(
    {
        "shape", "ndim", "dtype", "size", "aval", "weak_type", "sharding", "itemsize", "nbytes",
        "named_shape", "__class__", "__name__", "device", "devices", "is_fully_addressable",
    }
)
PASS_ATTRS = frozenset({"T", "mT", "real", "imag", "at"})
ARRAY_METHODS = frozenset(
    {
        "sum", "mean", "any", "all", "prod", "std", "var", "argmax", "argmin", "cumsum", "nonzero",
        "max", "min", "reshape", "astype", "squeeze", "ravel", "flatten", "transpose", "clip",
        "conj", "swapaxes", "dot", "round", "set", "add", "get", "multiply", "divide", "power",
        "apply", "take", "sort", "argsort", "cumprod", "repeat", "block_until_ready",
    }
)
ARRAY_ONLY_ATTRS = frozenset(
    {
        "shape", "ndim", "dtype", "sum", "mean", "max", "min", "reshape", "astype", "at", "T",
        "prod", "any", "all", "squeeze", "ravel", "flatten", "transpose", "clip", "argmax",
        "argmin", "std", "var", "cumsum", "real", "imag", "conj", "swapaxes", "nonzero",
    }
)
ARRAY_NAMESPACES = ("jax.numpy.", "jax.lax.", "jax.nn.", "jax.scipy.", "jax.random.", "jax.image.")
STATIC_FUNCS = frozenset(
    {
        "jax.numpy.shape", "jax.numpy.ndim", "jax.numpy.size", "jax.numpy.dtype",
        "jax.numpy.result_type", "jax.numpy.issubdtype", "jax.numpy.isdtype",
        "jax.numpy.promote_types", "jax.numpy.can_cast", "jax.numpy.iscomplexobj",
        "jax.numpy.isrealobj", "jax.numpy.isscalar", "jax.numpy.iinfo", "jax.numpy.finfo",
        "jax.numpy.broadcast_shapes", "jax.lax.broadcast_shapes", "jax.lax.dtype",
        "jax.numpy.ndarray", "jax.lax.axis_size", "jax.lax.psum_scatter_size",
        "jax.random.key_impl", "jax.dtypes.issubdtype", "jax.dtypes.result_type",
        "jax.dtypes.canonicalize_dtype", "jax.tree_util.tree_structure", "jax.tree.structure",
        "jax.tree_util.tree_leaves", "jax.tree.leaves", "equinox.is_array",
        "equinox.is_inexact_array", "equinox.is_array_like", "jax.core.is_concrete",
        "jax.typeof", "jax.core.get_aval", "jax.lax.axis_index_static",
    }
)
STATIC_LAST = frozenset(
    {"ndim", "shape", "size", "dtype", "result_type", "issubdtype", "isdtype", "iinfo", "finfo",
     "broadcast_shapes", "promote_types", "can_cast", "canonicalize_dtype", "dtypes"}
)
# Collectives that compute a static value on static operands (`lax.psum(1, axis)` = axis size).
STATIC_ON_STATIC = frozenset({"jax.lax.psum", "jax.lax.pmax", "jax.lax.pmin", "jax.lax.pmean"})
STATIC_BUILTINS = frozenset(
    {
        "len", "isinstance", "issubclass", "type", "callable", "hasattr", "id", "repr", "str",
        "dir", "vars", "print", "hash", "format", "ord", "chr", "divmod", "abs", "round",
    }
)
CONTAINER_BUILTINS = frozenset({"tuple", "list", "dict", "set", "frozenset", "sorted", "reversed", "zip", "enumerate", "map", "filter", "iter"})
CONVERSIONS = frozenset({"bool", "int", "float", "complex"})
PYTHON_TYPES = S.PYTHON_TYPES  # isinstance narrowing (names.py)
TRACER_GUARD = re.compile(r"[Tt]racer|[Cc]oncret|is_constant|core\.Literal|disable_jit")
COMPILE_TIME = frozenset({"jax.ensure_compile_time_eval", "jax.core.ensure_compile_time_eval", "jax.disable_jit"})
RANDOM = S.RANDOM + "."
# Which parameters and names hold PRNG keys, which library calls draw from one: `keys.py`.
KEY_PARAM, KEY_NOT_TAKING, key_taking = K.KEY_PARAM, K.KEY_NOT_TAKING, K.key_taking


def _shift(c: frozenset) -> frozenset:
    """A condition of the enclosing function, seen from a nested function (closure)."""
    if not c:
        return c
    out = []
    for a in c:
        if a == C.TRUE_ATOM:
            return C.TRUE
        if type(a) is str:
            out.append("^" + a if a[:1] in "s^" else "p:^" + a[2:])
        else:
            out.append(("r", a[1], tuple((k, _shift(v)) for k, v in a[2])))
    return frozenset(out)


def _module_level(c: frozenset) -> frozenset:
    """Module code runs eagerly, once: its values hold no tracers."""
    return C.TRUE if C.TRUE_ATOM in c else C.FALSE


def join_val(a: Val, b: Val) -> Val:
    if a is b:
        return a
    if a.kind == b.kind and a.ref == b.ref:
        if a.cond == b.cond and a.items is b.items and a.via == b.via and a.src == b.src and _same_lit(a.lit, b.lit):
            return a
        return Val(a.kind, C.join(a.cond, b.cond), a.ref, a.via, a.skip, a.bound, None, a.raw,
                   a.src if a.src == b.src else None, a.virtual)
    kinds = {a.kind, b.kind}
    cond = C.join(a.cond, b.cond)
    if kinds <= {STATIC, UNK}:
        return _UNK if UNK in kinds else _STATIC
    if ARR in kinds and kinds <= {ARR, STATIC, RAW}:
        return Val(ARR, cond)
    if KEY in kinds and kinds <= {KEY, STATIC, UNK}:
        return Val(KEY, cond)
    if kinds <= {FN, STATIC, UNK}:
        return a if a.kind == FN else b
    return Val(RAW, cond)


# ---------------------------------------------------------------------------- summaries
class Summary:
    """What the project needs to know about one function (JSON via `to_json`)."""

    __slots__ = ("ref", "scope", "params", "edges", "ret", "ret_fn", "consumes", "flags", "uses_array")

    def __init__(self, ref, scope):
        self.ref = ref
        self.scope = scope
        self.params: list = []
        self.edges: list = []  # Edge
        self.ret = C.FALSE
        self.ret_fn = None  # (ref, via) of a function value it returns
        self.consumes: dict = {}  # key param -> True (draws from it) | [(callee, key)] (passes it on)
        self.flags: dict = {}
        self.uses_array: set = set()


class Edge:
    """A call or hand-over from one function to another. `kind`: "call" (called with `args`),
    "wrap" (given to a transform `via`, which traces it), "arg" (given to an external function,
    which may call it), "host" (run on the host by a callback: not traced), "rule" (registered
    as a custom differentiation/batching rule)."""

    __slots__ = ("to", "kind", "args", "star", "fnargs", "via", "skip", "node", "label", "virtual", "classes")

    def __init__(self, to, kind, node, args=(), star=C.FALSE, fnargs=(), via=(), skip=0, label="", virtual=False):
        self.to, self.kind, self.node = to, kind, node
        self.classes = ()
        self.args, self.star, self.fnargs, self.via = args, star, fnargs, via
        self.skip, self.label, self.virtual = skip, label, virtual


# ---------------------------------------------------------------------------- the analysis
class FileValues(Domain):
    """Values of one file: `of(node)` for any analysed expression, `summaries` per function."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.vals: dict = {}
        self.quiet_nodes: set = set()
        self.summaries: dict = {}  # id(scope) -> Summary
        self.module_env: dict = {}
        self._quiet = 0
        self._sum: Optional[Summary] = None
        self._scope = None
        self._outer: list = []  # [(bindings of an enclosing function, depth)], nearest first
        self._flat: dict = {}
        self._closure_cache: dict = {}
        self._flats: dict = {}  # id(scope) -> flow-insensitive env (for closures)
        self._captures: dict = {}  # id(scope) -> {name: (Val as its owner binds it, depth)}
        self._cap_param: dict = {}  # captured parameter Val (as seen in the closure) -> (id(scope), name)
        self._cap_uses: dict = {}  # (id(scope), name) -> {"array", "call"}: how the closure uses it
        self.key_calls: dict = {}  # id(call) -> ((Arg, how), ...) for the keys a call is given
        self._edge_keys: dict = {}  # id(call) -> (callee ref, [key of each argument])
        self._key_params: frozenset = frozenset()  # the current function's key parameters
        self._key_names: frozenset = frozenset()  # names it uses as keys
        self.engine = FlowEngine(self)
        # Tracer tests only exist in files that mention them.
        self._guards = bool(TRACER_GUARD.search(ctx.source))

    # ------------------------------------------------------------------ driver
    def run(self) -> None:
        ctx = self.ctx
        ms = ctx.module_scope
        self._enter(ms, [], {})
        self._closure_cache = {}
        state: dict = {}
        try:
            self.engine.block(ctx.module.body, state)
        except RecursionError:
            self._quiet = 0
        self.module_env = {k: _as_global(v) for k, v in self._flat.items()}
        self._flats[id(ms)] = self.module_env
        for scope in ctx.scopes:
            if scope.kind in ("function", "lambda"):
                try:
                    self._function(scope)
                except RecursionError:
                    # Expressions nested thousands deep: this function is not analysed.
                    self.summaries.pop(id(scope), None)
                    self._quiet = 0

    def release(self) -> None:
        """Break the references between the analysis, its engine and the syntax tree."""
        self.__dict__.clear()

    def _enter(self, scope, outer: dict, flat: dict) -> None:
        s = self.summaries.get(id(scope))
        if s is None:
            s = self.summaries[id(scope)] = Summary(scope.ref, scope)
        self._sum, self._scope, self._outer, self._flat = s, scope, outer, flat
        self._key_params, self._key_names = K.key_names(self.ctx, scope, EXTERNAL)

    def _function(self, scope) -> None:
        # The enclosing functions' bindings, nearest first (closures), then the module's.
        chain = []
        depth = 0
        p = _outer_of(scope)
        while p is not None and p.kind != "module":
            depth += 1
            chain.append((self._flats.get(id(p), {}), depth))
            p = _outer_of(p)
        flat: dict = {}
        self._enter(scope, chain, flat)
        self._closure_cache = {}
        state: dict = {}
        summ = self._sum
        node = scope.node
        summ.params = self._params(scope, state)
        if type(node) is cst.Lambda:
            v = self.expr_val(node.body, state)
            summ.ret = v.cond
            if v.kind == FN:
                summ.ret_fn = (v.ref, v.via)
        else:
            self.engine.block(node.body, state)
        for fact in summ.params:
            if fact["n"] in summ.uses_array:
                fact["a"] = True
        ri = summ.flags.pop("ri", None)
        if ri and len(ri) > 1:
            summ.flags["ri"] = [C.to_json(c) for c in ri]
        self._flats[id(scope)] = flat

    def _params(self, scope, state: dict) -> list:
        ctx = self.ctx
        node = scope.node
        p = node.params
        out = []
        items = [(x, False, None) for x in p.posonly_params] + [(x, False, None) for x in p.params]
        if type(p.star_arg) is cst.Param:
            items.append((p.star_arg, False, "*"))
        items += [(x, True, None) for x in p.kwonly_params]
        if p.star_kwarg is not None:
            items.append((p.star_kwarg, True, "**"))
        method = scope.cls is not None and scope.kind == "function" and not _is_static_method(ctx, node)
        for i, (prm, kwonly, star) in enumerate(items):
            name = prm.name.value
            fact = {"n": name}
            if kwonly:
                fact["kw"] = True
            if star:
                fact["st"] = star
            if prm.default is not None and _literal_default(prm.default):
                fact["d"] = True
            elif prm.default is not None:
                fact["o"] = True  # optional: a default that is not a literal
            cond = C.param(name)
            if i == 0 and method and not star:
                fact["k"] = "self"
                cls_ref = scope.cls.ref
                v = Val(INST, cond, cls_ref, src=name)
            else:
                ak, aq = TY.annotation_kind(ctx, prm.annotation) if prm.annotation is not None else (None, None)
                if ak is None and prm.annotation is None and KEY_PARAM.match(name):
                    ak = "keyname"
                if ak == "class":
                    fact["k"] = "class"
                    fact["c"] = aq.lstrip("?")
                    v = Val(INST, cond, aq.lstrip("?"), src=name)
                elif ak in ("array",):
                    fact["k"] = ak
                    v = Val(ARR, cond, src=name)
                elif ak == "key":
                    fact["k"] = "key"
                    v = Val(KEY, cond, src=name)
                elif ak == "keyname":
                    # named like a key: a key on evidence in the function (`keys.key_names`)
                    v = Val(KEY if name in self._key_params else RAW, cond, src=name)
                    fact["k"] = "keyname"
                elif ak == "callable":
                    fact["k"] = "callable"
                    v = Val(FN, C.FALSE, f"%{scope.ref}:{name}", src=name)
                elif ak in ("container", "pytree"):
                    fact["k"] = ak
                    v = Val(BOX if ak == "container" else RAW, cond, src=name)
                elif ak == "static":
                    fact["k"] = "static"
                    v = Val(RAW, cond, src=name)
                elif star == "*":
                    v = Val(BOX, cond, src=name)
                elif star == "**":
                    v = Val(BOX, cond, src=name)
                else:
                    v = Val(RAW, cond, src=name)
                if v.kind in (RAW, ARR) and fact.get("k") in (None, "array", "keyname") and name in self._key_names:
                    v = Val(KEY, cond, src=name)  # drawn from by `jax.random`, or passed as `key=`
            state[name] = v
            self._flat[name] = v
            out.append(fact)
        return out

    # ------------------------------------------------------------------ queries
    def of(self, node) -> Val:
        """The value of an analysed expression (`UNK` when it was not analysed)."""
        return self.vals.get(id(node), _UNK)

    def cond(self, node) -> frozenset:
        return self.vals.get(id(node), _UNK).cond

    def is_quiet(self, node) -> bool:
        """The node was analysed in a region that only runs with concrete values (inside
        `jax.ensure_compile_time_eval()`, a branch guarded by a tracer test, ...)."""
        return id(node) in self.quiet_nodes

    def truth(self, expr) -> frozenset:
        """The condition under which `bool(expr)` meets a tracer (and so raises)."""
        inner = expr
        while type(inner) is cst.UnaryOperation and type(inner.operator) is cst.Not:
            inner = inner.expression
        if type(inner) is cst.BooleanOperation:
            left = self.truth(inner.left)
            # The right operand runs only when the left one lets it: a guard such as
            # `not_tracer(i) and i > 0`, `isinstance(x, int) and x > 0` or a static flag
            # (`numpy_resid and rank < n`) protects it.
            if _has_guard_call(self.ctx, inner.left) or _is_flag(inner.left):
                return left
            return C.join(left, self.truth(inner.right))
        v = self.vals.get(id(inner))
        if v is None:
            return C.FALSE
        if v.kind in (ARR, KEY):
            return v.cond
        return C.FALSE

    def summary(self, scope) -> Optional[Summary]:
        return self.summaries.get(id(scope))

    def key_args(self, call) -> tuple:
        """The PRNG keys a call is given: `((Arg, how), ...)`, `how` being True (it draws from
        the key: `jax.random` samplers, `split`, `fold_in`, library functions), False (it only
        looks at it, stores or binds it: `print`, `jnp.shape`, `State(...)`, `partial`), or
        `("consumes", callee, key)` for a project function, decided by its summary (`key`: the
        parameter position or keyword)."""
        return self.key_calls.get(id(call), ())

    def is_key(self, expr) -> bool:
        """The expression holds a PRNG key (or an array of keys)."""
        return self.vals.get(id(expr), _UNK).kind == KEY

    def captures(self, scope) -> dict:
        """The closure of a nested function or lambda: what it (or a function nested in it)
        reads from the functions around it. name -> (Val, owner, uses): the value as the owner
        function binds it, so its condition is in the owner's terms (`report_traced(...,
        scope=owner)`); the nearest binding wins. `uses`, for a closed-over parameter: how the
        closure uses it ("array": array attributes, `@`, given to `jnp`/`lax`; "call": called)."""
        out: dict = {}
        todo = [(scope, 0)]
        while todo:
            s, rel = todo.pop()
            for name, (w, depth) in self._captures.get(id(s), {}).items():
                if depth > rel:
                    owner = s
                    for _ in range(depth):
                        owner = _outer_of(owner)
                    if owner is None:
                        continue
                    uses = self._cap_uses.get((id(s), name), set())
                    if name in out:
                        if out[name][1] is owner:
                            out[name][2].update(uses)
                        continue
                    out[name] = (w, owner, set(uses))
            for child in s.children:
                if child.kind == "class":
                    todo.extend((c, rel + 1) for c in child.children if c.kind in ("function", "lambda"))
                elif child.kind in ("function", "lambda"):
                    todo.append((child, rel + 1))
        return out

    def custom_functions(self) -> list:
        """The functions this file gives to `jax.custom_jvp`/`custom_vjp`/`eqx.filter_custom_*`
        (decorator, call or `functools.partial` form): (ref, spec, node), `spec` being
        `{"t": qualname, "nd": nondiff_argnums}` (see `tracing.custom_spec`) and `node` the
        decorator or call."""
        return [(e.to, e.via[0] if e.via else {}, e.node)
                for s in self.summaries.values() for e in s.edges if e.kind in ("custom", "custom_call")]

    def registered_rules(self) -> dict:
        """ref -> kind ("jvp", "vjp", "vjp_fwd", "transpose", "batching", ...) of the functions
        this file registers as custom differentiation, batching or lowering rules. Whether a
        function *runs inside* a rule (called from one, in any module) is the project's
        `("rule", ref, kinds)` condition."""
        return {e.to: e.label for s in self.summaries.values() for e in s.edges if e.kind == "rule"}

    def vjp_backwards(self) -> dict:
        """custom-derivative function ref -> the ref of the backward rule this file gives it
        with `f.defvjp(fwd, bwd)` (what its returned tuple holds is the cotangent of each
        differentiated argument)."""
        out: dict = {}
        for s in self.summaries.values():
            for e in s.edges:
                if (e.kind == "rule" and e.label == "vjp" and type(e.node) is cst.Call
                        and type(e.node.func) is cst.Attribute):
                    owner = self.of(e.node.func.value)
                    if owner.kind == FN and owner.ref:
                        out.setdefault(owner.ref, e.to)
        return out

    # ------------------------------------------------------------------ the domain
    def copy(self, state):
        return dict(state)

    def join(self, states):
        if len(states) == 1:
            return states[0]
        out = dict(states[0])
        for st in states[1:]:
            for k, v in st.items():
                old = out.get(k)
                out[k] = v if old is None else join_val(old, v)
        return out

    def expr(self, node, state) -> None:
        self.expr_val(node, state)

    def assign(self, node, state) -> None:
        tp = type(node)
        if tp is cst.Assign:
            v = self.expr_val(node.value, state)
            for t in node.targets:
                self.bind(t.target, v, state, node.value)
        elif tp is cst.AnnAssign:
            if node.value is not None:
                v = self.expr_val(node.value, state)
                self.bind(node.target, v, state, node.value)
        else:  # AugAssign
            v = self.expr_val(node.value, state)
            if type(node.target) is cst.Name:
                old = state.get(node.target.value) or self._lookup(node.target.value) or _UNK
                new = _binop(old, v)
                self._set(node.target.value, new, state)
                self.vals[id(node.target)] = new
            else:
                self.expr_val(node.target, state)

    def bind(self, target, v: Val, state: dict, value=None) -> None:
        tp = type(target)
        if tp is cst.Name:
            if (v.kind == RAW or v.kind == UNK) and target.value in self._key_names:
                v = Val(KEY, v.cond, src=v.src)  # a name the function uses as a key
            self._set(target.value, v, state)
            self.vals[id(target)] = v
        elif tp is cst.Tuple or tp is cst.List:
            els = target.elements
            items = v.items if v.kind == BOX else None  # (a Q's items hold its call node)
            if items is None and type(value) in (cst.Tuple, cst.List) and len(value.elements) == len(els):
                items = tuple(self.of(e.value) for e in value.elements)
            star = any(type(e) is cst.StarredElement for e in els)
            for i, el in enumerate(els):
                if type(el) is cst.StarredElement:
                    ev = Val(BOX, v.cond)
                elif items is not None and not star and i < len(items):
                    ev = items[i]
                elif not star:
                    ev = _item(v, i)
                else:
                    ev = _element(v)
                self.bind(el.value, ev, state)
        elif tp is cst.StarredElement:
            self.bind(target.value, Val(BOX, v.cond), state)
        else:
            # attribute / subscript targets: evaluate their parts
            if tp is cst.Attribute:
                self.expr_val(target.value, state)
            elif tp is cst.Subscript:
                table = self.expr_val(target.value, state)
                kind = S.REGISTRATION_TABLES.get(table.ref or "") if table.kind == Q else None
                fv = _fn_value(v)
                if kind is not None and fv is not None:
                    self._sum.edges.append(Edge(fv.ref, "rule", target, label=kind))
                elif kind is not None and v.kind == UNK and type(value) is cst.Call:
                    for a in value.args:  # ad.primitive_jvps[p] = partial(rule, ...) / wrap(rule)
                        av = _fn_value(self.of(a.value))
                        if av is not None:
                            self._sum.edges.append(Edge(av.ref, "rule", target, label=kind))
                for el in target.slice:
                    if type(el.slice) is cst.Index:
                        self.expr_val(el.slice.value, state)

    def _set(self, name: str, v: Val, state: dict) -> None:
        state[name] = v
        old = self._flat.get(name)
        self._flat[name] = v if old is None else join_val(old, v)

    def test(self, stmt, expr, state) -> None:
        pass

    def branch(self, stmt, expr, positive, state):
        # isinstance(x, <Python types>) / x is None narrow x to a static value in the branch.
        narrowed = _narrowing(self.ctx, expr, positive)
        for name in narrowed:
            state[name] = _STATIC
        return state

    def loop_target(self, stmt, state) -> None:
        self._iter_bind(stmt.target, stmt.iter, state)

    def enter_region(self, stmt, state):
        quiet = False
        if type(stmt) is cst.If:
            # `if isinstance(x, jax.core.Tracer): ... else: <concrete-only code>`: the code
            # knows what it is doing in both branches.
            quiet = self._guards and bool(TRACER_GUARD.search(self.ctx.code(stmt.test)))
        elif type(stmt) is cst.With:
            for item in stmt.items:
                it = item.item
                if type(it) is cst.Call and (self.ctx.qualname(it.func) or "") in COMPILE_TIME:
                    quiet = True
                if item.asname is not None:
                    self.bind(item.asname.name, _UNK, state)
        else:  # try: a handler for tracer errors: the body meets tracers on purpose
            for h in getattr(stmt, "handlers", ()):
                if self._guards and h.type is not None and TRACER_GUARD.search(self.ctx.code(h.type)):
                    quiet = True
                elif _catches_all(self.ctx, h):
                    quiet = True  # `except Exception:` catches ConcretizationTypeError too
        if quiet:
            self._quiet += 1
        return quiet

    def leave_region(self, stmt, token, state) -> None:
        if token:
            self._quiet -= 1

    def returns(self, stmt, state) -> None:
        v = self.of(stmt.value) if stmt.value is not None else _NONE
        s = self._sum
        s.ret = C.join(s.ret, v.cond)
        # Per element, while every `return` gives a literal tuple of one length (`return
        # jnp.var(b), b.size`): an unpacked element is judged by its own condition.
        items = s.flags.get("ri", ())
        if items is not None:
            if v.kind == BOX and v.items is not None and type(stmt.value) in (cst.Tuple, cst.List) and (
                    not items or len(items) == len(v.items)):
                s.flags["ri"] = [C.join(a, b.cond) for a, b in zip(items, v.items)] if items else [b.cond for b in v.items]
            else:
                s.flags["ri"] = None
        if v.kind == FN and s.ret_fn is None:
            s.ret_fn = (v.ref, v.via)
        c = _class_of(v)
        if c is not None:
            s.flags.setdefault("ret_cls", [])
            if c not in s.flags["ret_cls"]:
                s.flags["ret_cls"].append(c)

    def delete(self, stmt, state) -> None:
        for n in _names_in(stmt.target):
            if True:
                if n in state and state[n].src is not None:
                    self._sum.flags.setdefault("deleted", []).append(state[n].src)
                state.pop(n, None)

    def definition(self, stmt, state) -> None:
        scope = self.ctx.scope_of.get(id(stmt))
        if scope is None:
            return
        if type(stmt) is cst.ClassDef:
            v = Val(CLS, ref=scope.ref)
            self._methods(stmt, state)
        else:
            v = Val(FN, ref=scope.ref)
        for dec in reversed(stmt.decorators):
            d = self.expr_val(dec.decorator, state)
            if type(dec.decorator) is cst.Call and (self.ctx.qualname(dec.decorator.func) or "") in _KEEPS_FUNCTION:
                continue  # `@functools.wraps(fn)`: copies metadata, returns the function itself
            v = self._apply(d, [v], [None], dec, state, decorator=True)
        self._set(stmt.name.value, v, state)

    def _methods(self, cls, state) -> None:
        """The decorators of a class body's methods that trace or differentiate them
        (`@jax.jit`, `@eqx.filter_jit`, `@jax.custom_jvp`, `@partial(jax.jit, ...)`, rule
        registrations): their edges, as for functions. (Other decorators -- `property`,
        `staticmethod`, a project's own -- are left alone: the body of a class is not a flow.)"""
        body = cls.body.body if type(cls.body) is cst.IndentedBlock else ()
        for st in body:
            if type(st) is cst.ClassDef:
                self._methods(st, state)
                continue
            if type(st) is not cst.FunctionDef or not st.decorators:
                continue
            scope = self.ctx.scope_of.get(id(st))
            if scope is None:
                continue
            v = Val(FN, ref=scope.ref)
            for dec in reversed(st.decorators):
                d = self.expr_val(dec.decorator, state)
                if _called_attribute(dec) in S.CUSTOM_RULE_METHODS or (d.kind == Q and d.ref in _METHOD_DECORATORS):
                    v = self._apply(d, [v], [None], dec, state, decorator=True)

    def other(self, small, state) -> None:
        if type(small) in (cst.Global, cst.Nonlocal):
            return

    # ------------------------------------------------------------------ expressions
    def expr_val(self, e, state: dict) -> Val:
        v = self._expr(e, state)
        key = id(e)
        self.vals[key] = v
        if self._quiet:
            self.quiet_nodes.add(key)
        return v

    def _lookup(self, name: str) -> Optional[Val]:
        """A name bound outside the function: in an enclosing function (its condition seen from
        here, see `_shift`) or at module level."""
        cache = self._closure_cache
        if name in cache:
            return cache[name]
        v = None
        for flat, depth in self._outer:
            w = flat.get(name)
            if w is not None:
                c = w.cond
                for _ in range(depth):
                    c = _shift(c)
                v = w if c is w.cond else Val(w.kind, c, w.ref, w.via, w.skip, w.bound, w.items, w.raw, None, w.virtual, w.lit)
                self._captures.setdefault(id(self._scope), {})[name] = (w, depth)
                if w.src is not None and v is not w:
                    self._cap_param[v] = (id(self._scope), name)
                break
        if v is None:
            v = self.module_env.get(name)
        cache[name] = v
        return v

    def _name(self, e: cst.Name, state: dict) -> Val:
        name = e.value
        v = state.get(name)
        if v is not None:
            return v
        v = self._lookup(name)
        if v is not None:
            return v
        ctx = self.ctx
        if name in ("True", "False", "None"):
            return _TRUE if name == "True" else _FALSE if name == "False" else _STATIC
        for d in self._scope_defs(name):
            if d.kind == "class":
                return Val(CLS, ref=d.ref)
            return Val(FN, ref=d.ref)
        raw = ctx.raw_aliases.get(name)
        qn = ctx.qualname(e)
        if raw is not None or qn is not None:
            return Val(Q, ref=qn, raw=raw or qn)
        return _UNK

    def _scope_defs(self, name: str) -> list:
        s = self._scope
        return s.lookup_def(name) if s is not None else []

    def _expr(self, e, state: dict) -> Val:
        tp = type(e)
        if tp is cst.Name:
            return self._name(e, state)
        if tp is cst.Integer:
            return _int_val(e)
        if tp in _LITERALS:
            return _STATIC
        if tp is cst.Attribute:
            return self._attribute(e, state)
        if tp is cst.Call:
            return self._call(e, state)
        if tp is cst.Subscript:
            return self._subscript(e, state)
        if tp is cst.BinaryOperation:
            a = self.expr_val(e.left, state)
            b = self.expr_val(e.right, state)
            if type(e.operator) is cst.MatrixMultiply:
                self._array_use(a)
                self._array_use(b)
            if type(e.operator) is cst.Modulo and type(e.left) in (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString):
                return _STATIC
            return _binop(a, b, e.operator)
        if tp is cst.UnaryOperation:
            v = self.expr_val(e.expression, state)
            if type(v.lit) is int and type(e.operator) is cst.Minus:
                return _int_of(-v.lit)
            if type(e.operator) is cst.Not:
                return Val(ARR, v.cond) if v.kind in (ARR, KEY) and v.cond else _STATIC
            return v if v.kind in (ARR, RAW, STATIC) else Val(RAW, v.cond)
        if tp is cst.BooleanOperation:
            a = self.expr_val(e.left, state)
            b = self.expr_val(e.right, state)
            return join_val(a, b)
        if tp is cst.Comparison:
            return self._comparison(e, state)
        if tp is cst.IfExp:
            self.expr_val(e.test, state)
            a = self.expr_val(e.body, state)
            b = self.expr_val(e.orelse, state)
            return join_val(a, b)
        if tp is cst.Tuple or tp is cst.List or tp is cst.Set:
            items = tuple(self.expr_val(el.value, state) for el in e.elements)
            return Val(BOX, C.join(*(i.cond for i in items)), items=items if tp is not cst.Set else None)
        if tp is cst.Dict:
            conds = []
            for el in e.elements:
                if type(el) is cst.DictElement:
                    self.expr_val(el.key, state)
                conds.append(self.expr_val(el.value, state).cond)
            return Val(BOX, C.join(*conds))
        if tp is cst.Lambda:
            scope = self.ctx.scope_of.get(id(e))
            return Val(FN, ref=scope.ref) if scope is not None else _UNK
        if tp in _COMPREHENSIONS:
            return self._comprehension(e, state)
        if tp is cst.NamedExpr:
            v = self.expr_val(e.value, state)
            self.bind(e.target, v, state)
            return v
        if tp is cst.FormattedString:
            for part in e.parts:
                if type(part) is cst.FormattedStringExpression:
                    self.expr_val(part.expression, state)
            return _STATIC
        if tp is cst.StarredElement:
            return self.expr_val(e.value, state)
        if tp is cst.Await or tp is cst.Yield:
            if getattr(e, "value", None) is not None and isinstance(e.value, cst.BaseExpression):
                self.expr_val(e.value, state)
            return _UNK
        return _UNK

    def _array_use(self, v: Val) -> None:
        if v.src is not None:
            self._sum.uses_array.add(v.src)
        elif self._cap_param:
            self._cap_use(v, "array")

    def _cap_use(self, v: Val, how: str) -> None:
        key = self._cap_param.get(v)
        if key is not None:
            self._cap_uses.setdefault(key, set()).add(how)

    def _attribute(self, e: cst.Attribute, state: dict) -> Val:
        sup = self._super_member(e)
        if sup is not None:
            return sup
        base = self.expr_val(e.value, state)
        attr = e.attr.value
        k = base.kind
        if k == Q:
            qn = self.ctx.qualname(e)
            raw = f"{base.raw}.{attr}" if base.raw else qn
            return Val(Q, ref=qn or raw, raw=raw)
        if attr in ARRAY_ONLY_ATTRS:
            self._array_use(base)
        if k == INST:
            return self._member(base, attr, e)
        if k == CLS:
            return Val(FN, ref=f"{base.ref}.{attr}")
        return _array_attr(base, attr)

    def _super_cls(self, e: cst.Attribute):
        """The class whose method `e` is when `e` is `super().m` (or `super(C, self).m`) in a
        method of a class of this file; None otherwise."""
        v = e.value
        if type(v) is not cst.Call or type(v.func) is not cst.Name or v.func.value != "super":
            return None
        if self.ctx.qualname(v.func) not in (None, "super"):
            return None  # a name `super` rebound to something else
        fn = self._scope
        return fn.cls if fn is not None and fn.kind == "function" else None

    def _super_member(self, e: cst.Attribute) -> Optional[Val]:
        """`super().m`: the method `m` of the first base that defines it — a project function
        (same file, or `Base.m` of a project class in another file, which the project resolves),
        a library class's method (`Q`), or `_UNK` (the generated or `object` method: see
        `_keys_given`)."""
        cls = self._super_cls(e)
        if cls is None:
            return None
        attr = e.attr.value
        chain, complete = TY.mro(self.ctx, cls)
        for c in chain[1:]:
            for d in c.defs.get(attr, []):
                if d.kind == "function":
                    return Val(FN, ref=d.ref, skip=1)
        if complete:
            return _UNK
        for c in chain:
            local = {id(d.node) for d in TY.local_bases(self.ctx, c)[0]}
            for b in c.node.bases:
                if b.keyword is not None:
                    continue
                val = b.value.value if type(b.value) is cst.Subscript else b.value
                qn = self.ctx.qualname(val)
                if qn is None or type(val) is cst.Name and c.parent is not None and any(
                        id(d.node) in local for d in c.parent.lookup_def(val.value)):
                    continue  # unknown, or a class of this file (already searched)
                if qn in ("equinox.Module", "typing.Generic", "Generic", "typing.Protocol", "abc.ABC", "object"):
                    continue
                if qn.split(".", 1)[0] in EXTERNAL:
                    return Val(Q, ref=f"{qn}.{attr}")
                return Val(FN, ref=f"{qn}.{attr}", skip=1)
        return _UNK

    def _member(self, base: Val, attr: str, e) -> Val:
        """An attribute of an instance: a field (by its declared kind) or a method."""
        ctx = self.ctx
        cls = ctx.class_by_ref(base.ref) if base.ref else None
        self_access = type(e.value) is cst.Name and base.src is not None and e.value.value == base.src and self._is_self(base)
        if cls is None:
            # A class of another file or library: methods are found by the project index.
            if base.ref and not base.ref.startswith(("jax.", "equinox.", "numpy.")):
                return Val(FN, ref=f"{base.ref}.{attr}", skip=1, virtual=self_access, src=None) if _looks_method(attr) else Val(RAW if base.cond else UNK, base.cond)
            return _UNK
        f = TY.all_fields(ctx, cls)[0].get(attr)
        if f is not None:
            if f.kind == "array":
                # a field annotated as a key (`key: PRNGKeyArray`) holds a key
                return Val(KEY if f.ann is not None and TY.annotation_kind(ctx, f.ann)[0] == "key" else ARR, base.cond)
            if f.kind in ("static", "static-type"):
                return _STATIC
            ak, aq = TY.annotation_kind(ctx, f.ann)
            if ak == "class":
                return Val(INST, base.cond, aq.lstrip("?"))
            if ak == "key":
                return Val(KEY, base.cond)
            if ak == "callable":
                return Val(UNK)
            return Val(RAW, C.FALSE) if not base.cond else Val(UNK)
        for c in TY.mro(ctx, cls)[0]:
            for d in c.defs.get(attr, []):
                if d.kind == "function":
                    if _is_property(ctx, d.node):
                        return Val(RAW, C.ret(d.ref, (("self", base.cond),)) if base.cond else C.FALSE)
                    return Val(FN, ref=d.ref, skip=1, virtual=self_access)
        if not TY.mro(ctx, cls)[1]:
            return Val(FN, ref=f"{base.ref}.{attr}", skip=1, virtual=self_access) if _looks_method(attr) else _UNK
        return _UNK

    def _is_self(self, v: Val) -> bool:
        s = self._sum
        return bool(s.params) and s.params[0].get("k") == "self" and s.params[0]["n"] == v.src

    def _subscript(self, e: cst.Subscript, state: dict) -> Val:
        base = self.expr_val(e.value, state)
        idx = None
        for el in e.slice:
            if type(el.slice) is cst.Index:
                idx = self.expr_val(el.slice.value, state)
            else:
                for part in (el.slice.lower, el.slice.upper, el.slice.step):
                    if part is not None:
                        self.expr_val(part, state)
        k = base.kind
        if k == STATIC:
            return _STATIC
        if k == RAW and len(e.slice) == 1 and type(e.slice[0].slice) is cst.Index:
            i = _int_literal(e.slice[0].slice.value)
            if i is not None and i >= 0:
                return _item(base, i)
        if k == BOX:
            if base.items is not None and len(e.slice) == 1 and type(e.slice[0].slice) is cst.Index:
                i = _int_literal(e.slice[0].slice.value)
                if i is not None and -len(base.items) <= i < len(base.items):
                    return base.items[i]
            return Val(RAW, base.cond)
        if k in (ARR, KEY):
            c = base.cond if idx is None else C.join(base.cond, idx.cond if idx.kind == ARR else C.FALSE)
            return Val(k, c)
        if k == RAW:
            return Val(RAW, base.cond)
        if k == Q:
            return Val(Q, ref=base.ref, raw=base.raw)  # typing subscripts (Float[Array, ""])
        return _UNK

    def _comparison(self, e: cst.Comparison, state: dict) -> Val:
        left = self.expr_val(e.left, state)
        conds = []
        left_str = type(e.left) in (cst.SimpleString, cst.ConcatenatedString)
        prev = left
        static = True
        for ct in e.comparisons:
            v = self.expr_val(ct.comparator, state)
            op = ct.operator
            if type(op) in (cst.Is, cst.IsNot, cst.In, cst.NotIn):
                prev = v
                continue
            static = False
            if left_str or type(ct.comparator) in (cst.SimpleString, cst.ConcatenatedString):
                prev = v
                continue  # comparing with a string: a configuration flag
            for side in (prev, v):
                if side.kind in (ARR, RAW, KEY):
                    conds.append(side.cond)
            prev = v
        if static or not conds:
            return _STATIC
        c = C.join(*conds)
        return Val(ARR, c) if c else _STATIC

    def _comprehension(self, e, state: dict) -> Val:
        inner = dict(state)
        f = e.for_in
        while f is not None:
            self.expr_val(f.iter, inner)
            self._iter_bind(f.target, f.iter, inner)
            for cond in f.ifs:
                self.expr_val(cond.test, inner)
            f = f.inner_for_in
        if type(e) is cst.DictComp:
            self.expr_val(e.key, inner)
            v = self.expr_val(e.value, inner)
        else:
            v = self.expr_val(e.elt, inner)
        return Val(BOX, v.cond)

    def _iter_bind(self, target, it, state: dict) -> None:
        ctx = self.ctx
        if type(it) is cst.Call:
            qn = ctx.qualname(it.func) if type(it.func) in (cst.Name, cst.Attribute) else None
            args = [a.value for a in it.args if a.keyword is None and not a.star]
            if qn == "range":
                self.bind(target, _STATIC, state)
                return
            if qn == "enumerate" and args and type(target) in (cst.Tuple, cst.List) and len(target.elements) == 2:
                self.bind(target.elements[0].value, _STATIC, state)
                self.bind(target.elements[1].value, _element(self.of(args[0])), state)
                return
            if qn == "zip" and type(target) in (cst.Tuple, cst.List) and len(target.elements) == len(args):
                for el, a in zip(target.elements, args):
                    self.bind(el.value, _element(self.of(a)), state)
                return
            meth = it.func.attr.value if type(it.func) is cst.Attribute and not it.args else None
            if meth in ("keys", "items") and self.of(it.func.value).kind in (ARR, RAW, BOX, UNK):
                # A dict's keys are never tracers (tracers are unhashable): a PyTree dict's keys
                # are its static structure.
                base = self.of(it.func.value)
                if meth == "keys":
                    self.bind(target, _STATIC, state)
                    return
                if type(target) in (cst.Tuple, cst.List) and len(target.elements) == 2:
                    self.bind(target.elements[0].value, _STATIC, state)
                    self.bind(target.elements[1].value, _element(base), state)
                    return
        if self._is_dict(it, state):
            self.bind(target, _STATIC, state)  # a dict's keys: never tracers (they are hashed)
            return
        self.bind(target, _element(self.of(it)), state)

    def _is_dict(self, e, state: dict) -> bool:
        """`e` is known to be a dict (`**kwargs` while unchanged, a dict display) or a copy of
        its keys (`sorted(kwargs)`, `list(kwargs)`)."""
        if type(e) in (cst.Dict, cst.DictComp):
            return True
        if type(e) is cst.Call and type(e.func) is cst.Name and len(e.args) == 1 and not e.args[0].keyword \
                and not e.args[0].star and self.ctx.qualname(e.func) in ("sorted", "list", "tuple", "set", "iter", "reversed", "frozenset"):
            return self._is_dict(e.args[0].value, state)
        if type(e) is cst.Name:
            fn = self._scope
            node = fn.node if fn is not None and fn.kind == "function" else None
            star = getattr(getattr(node, "params", None), "star_kwarg", None)
            v = state.get(e.value)
            return star is not None and star.name.value == e.value and v is not None and v.kind == BOX and v.src == e.value
        return False

    # ------------------------------------------------------------------ calls
    def _call(self, e: cst.Call, state: dict) -> Val:
        f = self.expr_val(e.func, state)
        args = [self.expr_val(a.value, state) for a in e.args]
        v = self._apply(f, args, e.args, e, state)
        if f.kind == Q and (f.ref or "").startswith(RANDOM) or any(a.kind == KEY or a.src is not None for a in args):
            self._keys_given(f, args, e)
        return v

    def _keys_given(self, f: Val, args: list, e: cst.Call) -> None:
        """Which keys the call is given and whether it draws from them (`key_args`); a parameter
        drawn from, or passed on to a project function, goes into the summary's `consumes`."""
        summ = self._sum
        qn = f.ref if f.kind == Q else None
        out = []
        if qn is not None and qn.startswith(RANDOM):
            ka = K.key_arg(e) if key_taking(qn) else None
            for a, an in zip(args, e.args):
                if an is ka:
                    out.append((an, True))
                    if a.src is not None:
                        summ.consumes[a.src] = True
        else:
            info = self._edge_keys.get(id(e))
            for i, (a, an) in enumerate(zip(args, e.args)):
                is_key = a.kind == KEY
                # a parameter that is not known to be a key still records where it goes when it
                # is named like one: a caller may pass a key there
                if an.star or not is_key and (a.src is None or info is None or not KEY_PARAM.match(a.src)):
                    continue
                if info is not None and info[1][i] is not None:
                    ref = info[0] or ""
                    if ref.split(".", 1)[0] in EXTERNAL:  # a library class or its instance
                        how = K.library_draws(ref, e.func)
                    else:
                        how = ("consumes", ref, info[1][i])
                elif f.kind in (ARR, KEY, STATIC, BOX):
                    how = False  # a method of an array or a container
                elif f.kind == UNK and type(e.func) is cst.Attribute and self._super_cls(e.func) is not None:
                    # `super().__init__(rng=rng)` with no base defining it: the generated
                    # (dataclass, NamedTuple, Module) or `object` method stores its arguments
                    how = False
                else:
                    how = K.library_draws(qn, e.func)
                if is_key:
                    out.append((an, how))
                if a.src is None or how is False:
                    continue
                cur = summ.consumes.get(a.src)
                if how is True:
                    if is_key:
                        summ.consumes[a.src] = True
                elif cur is not True:
                    step = [how[1], how[2]]
                    if cur is None:
                        summ.consumes[a.src] = [step]
                    elif step not in cur:
                        cur.append(step)
        if out:
            self.key_calls[id(e)] = tuple(out)

    def _apply(self, f: Val, args: list, argnodes: list, node, state: dict, decorator: bool = False) -> Val:
        """Calling `f` with `args` (decorators are calls with the function as the argument)."""
        k = f.kind
        method = _called_attribute(node)
        if method in S.CUSTOM_RULE_METHODS and k != Q:
            # f.defjvp(rule), f.defvjp(fwd, bwd), @f.defjvp: custom differentiation rules
            for i, a in enumerate(args):
                a = _fn_value(a)
                if a is not None:
                    kind = "vjp_fwd" if method == "defvjp" and i == 0 else S.CUSTOM_RULE_METHODS[method]
                    self._sum.edges.append(Edge(a.ref, "rule", node, label=kind))
            return args[0] if decorator and args else _UNK
        if k == Q:
            return self._call_api(f, args, argnodes, node, state)
        if k == FN:
            return self._call_function(f, args, argnodes, node, state)
        if k == CLS:
            self._edge_call(Val(FN, ref=f"{f.ref}.__init__", skip=1), args, argnodes, node)
            return Val(INST, C.join(*(a.cond for a in args if a.kind != FN)), f.ref)
        if k == INST:
            self._edge_call(Val(FN, ref=f"{f.ref}.__call__", skip=1), args, argnodes, node)
            return Val(RAW, C.ret(f"{f.ref}.__call__", self._argconds(args, argnodes, 1)))
        if k in (ARR, RAW, KEY) and type(node) is cst.Call and type(node.func) is cst.Attribute:
            base = self.of(node.func.value)
            meth = node.func.attr.value
            if base.src is not None and meth in ARRAY_ONLY_ATTRS:
                self._sum.uses_array.add(base.src)
            if meth in ("item", "tolist"):
                return _STATIC
            if meth in STATIC_ATTRS or meth.startswith("__"):
                return _STATIC
            if base.kind == RAW and base.src is not None and meth not in ARRAY_METHODS:
                # `model.encode(x)` on a parameter: a method of whatever class callers pass
                ref = f"%{self._sum.ref}:{base.src}.{meth}"
                self._edge_call(Val(FN, ref=ref, skip=1), args, argnodes, node)
                return Val(RAW, C.ret(ref, self._argconds(args, argnodes, 1)))
            if meth in ARRAY_METHODS:
                # an array method is staged out under a jaxpr trace, even on constants
                return Val(ARR, C.join(C.STAGED_ONLY, base.cond, *(a.cond for a in args if a.kind in (ARR, RAW))))
            return Val(ARR if base.kind != RAW else RAW,
                       C.join(base.cond, *(a.cond for a in args if a.kind in (ARR, RAW))))
        # Unknown callee: a function handed to it may be called (reached, arguments unknown).
        self._hand_over(args, argnodes, node, _label(self.ctx, node))
        if k == RAW and f.src is None and self._cap_param:
            self._cap_use(f, "call")  # a closed-over parameter called: a function
            cap = self._cap_param.get(f)
            owner = _outer_of(self._scope) if cap is not None else None
            while owner is not None and owner.kind != "module" and cap[1] not in owner.params:
                owner = _outer_of(owner)
            if owner is not None and owner.kind != "module":
                # a wrapper calling the function its decorator was given: what callers pass there
                ref = f"%{owner.ref}:{cap[1]}"
                self._edge_call(Val(FN, ref=ref), args, argnodes, node)
                return Val(RAW, C.ret(ref, self._argconds(args, argnodes, 0)))
        if k == RAW and f.src is not None:
            # calling a parameter: a function (or a Module) the callers pass
            ref = f"%{self._sum.ref}:{f.src}"
            self._edge_call(Val(FN, ref=ref), args, argnodes, node)
            return Val(RAW, C.ret(ref, self._argconds(args, argnodes, 0)))
        return _UNK

    def _argconds(self, args: list, argnodes: list, skip: int) -> tuple:
        out = []
        i = skip
        for a, an in zip(args, argnodes):
            if an is not None and an.keyword is not None:
                out.append((an.keyword.value, a.cond))
            elif an is not None and an.star:
                out.append(("*", a.cond))
            else:
                out.append((i, a.cond))
                i += 1
        return tuple(out)

    def _edge_call(self, f: Val, args: list, argnodes: list, node, kind: str = "call") -> None:
        pos = []
        star = C.FALSE
        fnargs = []
        classes = []
        i = 0
        for a, an in zip(args, argnodes):
            key = None
            if an is not None and an.keyword is not None:
                key = an.keyword.value
            elif an is not None and an.star == "**":
                key = "**"  # keywords from a dict: which ones is not known
            elif an is not None and an.star:
                star = C.join(star, a.cond)
                continue
            else:
                key = f.skip + i
                i += 1
            pos.append((key, a.cond))
            fa = _fn_value(a)
            if fa is not None:
                fnargs.append((key, fa.ref, fa.via))
            c = _class_of(a)
            if c is None and a.kind == RAW and a.src is not None:
                c = self._forwarded(a.src)
            if c is not None:
                classes.append((key, c))
        bound = list(f.bound)
        if type(node) is cst.Call:
            # the parameter each argument goes to, for `key_args`
            self._edge_keys[id(node)] = (f.ref, [None if an is None or an.star else (an.keyword.value if an.keyword is not None else None) for an in argnodes])
            ks = self._edge_keys[id(node)][1]
            j = 0
            for n, an in enumerate(argnodes):
                if an is not None and an.keyword is None and not an.star:
                    ks[n] = f.skip + j
                    j += 1
        # partial's positional arguments occupy the first parameters after `skip`
        e = Edge(f.ref, kind, node, args=tuple(bound) + tuple(pos), star=star, fnargs=tuple(fnargs),
                 via=f.via, skip=f.skip, label=_label(self.ctx, node), virtual=f.virtual)
        e.classes = tuple(classes)
        self._sum.edges.append(e)

    def _forwarded(self, name: str) -> Optional[str]:
        """"%f:p" for an unannotated parameter `p` of this function passed on as it is: the
        index follows it to the classes `f`'s callers pass there (`param_module`)."""
        for fact in self._sum.params:
            if fact["n"] == name:
                return None if fact.get("k") or fact.get("st") else f"%{self._sum.ref}:{name}"
        return None

    def _call_function(self, f: Val, args: list, argnodes: list, node, state) -> Val:
        self._edge_call(f, args, argnodes, node)
        if f.via:
            # a transformed function called: its result is an array when traced
            return Val(ARR, C.join(C.STAGED_ONLY, *(a.cond for a in args)))
        ac = self._argconds(args, argnodes, f.skip)
        if f.bound:
            ac = tuple(f.bound) + ac
        # the functions it is given, for what it returns (a decorator's wrapper: `_transform`)
        given = tuple((k, fa.ref) for (k, _), a in zip(ac[len(f.bound):], args) for fa in [_fn_value(a)]
                      if fa is not None and not fa.via and isinstance(k, int)) if not f.via else ()
        return Val(RAW, C.ret(f.ref, ac), ref="()" + f.ref, items=given or None)

    def _hand_over(self, args: list, argnodes: list, node, label: str, kind: str = "arg") -> None:
        for a in args:
            a = _fn_value(a)
            if a is not None:
                self._sum.edges.append(Edge(a.ref, kind, node, via=a.via, skip=a.skip, args=a.bound, label=label))

    def _call_api(self, f: Val, args: list, argnodes: list, node, state) -> Val:
        ctx = self.ctx
        qn = f.ref or ""
        if qn.startswith("jax.lax.") and qn[8:] in S.COLLECTIVES or any(
                an is not None and an.keyword is not None and an.keyword.value == "axis_name" for an in argnodes):
            self._sum.flags["coll"] = 1  # a named-axis collective, or an axis name handed on
        nodes = list(argnodes)
        positional = [(a, an) for a, an in zip(args, nodes) if an is None or (an.keyword is None and not an.star)]
        kinds = S.TRANSFORM_KIND
        if qn in ("functools.partial", "partial") and positional:
            fn, _ = positional[0]
            fn = _fn_value(fn) or fn
            if fn.kind == FN:
                npos = len(positional) - 1
                bound = list(fn.bound)
                i = 0
                for a, an in zip(args[1:], nodes[1:]):
                    if an is not None and an.keyword is not None:
                        bound.append((an.keyword.value, a.cond))
                    elif an is None or not an.star:
                        bound.append((fn.skip + i, a.cond))
                        i += 1
                    elif an.star == "**":
                        bound.append(("**", a.cond))  # keywords bound, which ones unknown
                # partial(jax.jit, static_argnums=...) used as a decorator factory
                return Val(FN, fn.cond, fn.ref, fn.via, fn.skip + npos, tuple(bound), raw=fn.raw, virtual=fn.virtual)
            if fn.kind == Q and (fn.ref in S.CUSTOM_JVP or fn.ref in S.CUSTOM_VJP):
                # partial(jax.custom_jvp, nondiff_argnums=...): a custom-derivative decorator
                return Val(Q, ref=fn.ref, raw=fn.raw, items=(node,))
            if fn.kind == Q and fn.ref in kinds:
                # partial(jax.jit, ...): a transform waiting for its function
                return Val(Q, ref=fn.ref, raw=fn.raw, items=(node,))
            return _UNK
        if qn in kinds:
            tangent = S.TANGENT_SOLVE_ARGS.get(qn)
            if tangent is not None:
                kind, pos, kw = tangent
                v = positional[pos][0] if pos < len(positional) else next(
                    (a for a, an in zip(args, nodes) if an is not None and an.keyword is not None and an.keyword.value == kw), None)
                v = _fn_value(v) if v is not None else None
                if v is not None:
                    self._sum.edges.append(Edge(v.ref, "rule", node, label=kind))
            return self._transform(f, qn, args, nodes, node, state)
        rule = S.RULE_FUNCTION_ARGS.get(qn)
        if rule is not None or qn in S.EQXI_RULE_DECORATORS:
            kind, sl = rule if rule is not None else (S.EQXI_RULE_DECORATORS[qn], slice(0, None))
            for a in [a for a, _ in positional][sl]:
                a = _fn_value(a)
                if a is not None:
                    self._sum.edges.append(Edge(a.ref, "rule", node, label=kind))
            if rule is None and not positional:
                return Val(Q, ref=qn, raw=f.raw)  # @eqxi.filter_primitive_jvp(...) factory
            return positional[0][0] if type(node) is cst.Decorator and positional else _UNK
        if qn in S.HOST_CALLBACKS:
            self._hand_over(args, nodes, node, T.short(qn), kind="host")
            return Val(ARR, C.join(C.STAGED_ONLY, *(a.cond for a in args[1:] if a.kind != FN)))
        if qn in S.CUSTOM_JVP or qn in S.CUSTOM_VJP:
            spec_call = f.items[0] if f.items else node if type(node) is cst.Call else None
            spec = T.custom_spec(qn, spec_call if type(spec_call) is cst.Call else None)
            for a in args:
                a = _fn_value(a) or a
                if a.kind == FN:
                    # `@jax.custom_vjp def f`: `f` is the custom function; `g = jax.custom_vjp(f)`:
                    # only `g` is, `f` stays a plain function ("custom_call").
                    kind = "custom" if type(node) is cst.Decorator else "custom_call"
                    self._sum.edges.append(Edge(a.ref, kind, node, label=T.short(qn), via=(spec,)))
                    return Val(FN, a.cond, a.ref, a.via + (spec,), a.skip, a.bound)
            if type(node) is cst.Call and not positional and not any(
                    an is not None and an.keyword is not None and an.keyword.value == "fun" for an in nodes):
                return Val(Q, ref=qn, raw=f.raw, items=(node,))  # custom_jvp(nondiff_argnums=...)
            return _UNK
        if qn in S.TREE_MAPS and positional and _fn_value(positional[0][0]) is not None:
            fn = _fn_value(positional[0][0])
            rest = tuple((fn.skip + i, a.cond) for i, (a, _) in enumerate(positional[1:]))
            self._sum.edges.append(Edge(fn.ref, "call", node, args=tuple(fn.bound) + rest, via=fn.via, skip=fn.skip, label=T.short(qn)))
            return Val(RAW, C.ret(fn.ref, rest))
        if qn.startswith(RANDOM):
            return self._random(qn, args, nodes, node)
        if qn.startswith(ARRAY_NAMESPACES) or qn.startswith("jax.debug.") or qn == "jax.device_put":
            self._hand_over(args, nodes, node, T.short(qn))
            if self._cap_param:
                for a in args:
                    self._cap_use(a, "array")  # a closed-over parameter given to jnp/lax
            last = qn.rsplit(".", 1)[-1]
            if qn in STATIC_FUNCS or qn in S.STATIC_RESULTS or last.startswith("_") or last in STATIC_LAST:
                return _STATIC
            if qn in STATIC_ON_STATIC and args and args[0].kind == STATIC:
                return _STATIC
            if qn.startswith("jax.debug."):
                return _STATIC
            return Val(ARR, C.join(C.STAGED_ONLY, *(a.cond for a in args if a.kind in (ARR, RAW, KEY, BOX, INST))))
        if qn in STATIC_FUNCS:
            return _STATIC
        if qn in CONVERSIONS:
            return _STATIC
        if qn in STATIC_BUILTINS or qn.startswith(("numpy.", "math.", "np.", "typing.", "warnings.", "logging.", "os.", "re.", "functools.")):
            self._hand_over(args, nodes, node, T.short(qn))
            return _STATIC
        if qn in CONTAINER_BUILTINS:
            self._hand_over(args, nodes, node, T.short(qn))
            c = C.join(*(a.cond for a in args))
            return Val(BOX, c)
        if qn == "getattr" and 2 <= len(args) <= 3 and all(an is None or an.keyword is None and not an.star for an in nodes) \
                and nodes[1] is not None and type(nodes[1].value) is cst.SimpleString and args[0].kind in (ARR, RAW, KEY, STATIC):
            # `getattr(x, "shape", ())`: the attribute itself, or the default when it is missing
            v = _array_attr(args[0], nodes[1].value.evaluated_value)
            if len(args) == 2 or v.kind == STATIC and args[2].kind in (STATIC, BOX) and not args[2].cond:
                return v
            return join_val(v, args[2])
        if qn in ("max", "min", "sum", "next", "getattr"):
            self._hand_over(args, nodes, node, qn)
            vals = [a for a in args if a.kind in (ARR, RAW)]
            return Val(RAW, C.join(*(a.cond for a in vals))) if vals else _STATIC
        if qn.startswith(S.EQX_NN_PREFIX) and qn[len(S.EQX_NN_PREFIX):][:1].isupper():
            return Val(INST, C.join(*(a.cond for a in args if a.kind != FN)), qn)
        if qn.startswith(("equinox.", "jax.")):
            self._hand_over(args, nodes, node, T.short(qn))
            if qn in ("equinox.error_if", "equinox.branched_error_if") and args:
                return args[0]
            if qn in ("equinox.filter", "equinox.partition", "equinox.combine", "equinox.tree_at",
                      "jax.lax.stop_gradient", "equinox.internal.nondifferentiable"):
                return Val(RAW, C.join(*(a.cond for a in args if a.kind != FN)))
            return _UNK
        # A name imported from elsewhere: a project function or class (decided by the index),
        # or a library's.
        raw = f.raw or qn
        if raw and not raw.startswith(("jax", "numpy", "builtins")) and "." in raw:
            last = raw.rsplit(".", 1)[-1]
            if last[:1].isupper():
                self._edge_call(Val(FN, ref=f"{raw}.__init__", skip=1), args, nodes, node)
                return Val(INST, C.join(*(a.cond for a in args if a.kind != FN)), raw)
            self._edge_call(Val(FN, ref=raw), args, nodes, node)
            return Val(RAW, C.ret(raw, self._argconds(args, nodes, 0)), ref="()" + raw)
        self._hand_over(args, nodes, node, T.short(qn))
        return _UNK

    def _transform(self, f: Val, qn: str, args: list, nodes: list, node, state) -> Val:
        """A transform applied to functions: wrap them (jit/vmap/grad/...) or trace them now
        (lax bodies, eval_shape, jvp)."""
        spec_call = node if type(node) is cst.Call else None
        if f.items:  # partial(jax.jit, static_argnums=...)(fn): the spec is on the partial
            spec_call = f.items[0]
        if type(node) is cst.Decorator:
            dec = node.decorator
            spec_call = dec if type(dec) is cst.Call else spec_call
        positional = [a for a, an in zip(args, nodes) if an is None or (an.keyword is None and not an.star)]
        extra = []
        if type(spec_call) is cst.Call:
            pa = [a.value for a in spec_call.args if a.keyword is None and not a.star]
            extra = pa[1:] if not f.items else pa[2:]
        spec = T.wrap_spec(qn, spec_call, extra)
        fn_positions = S.TRANSFORMS.get(qn, ((0, "fun"),))
        targets = []
        for pos, kw in fn_positions:
            v = None
            if pos < len(positional):
                v = positional[pos]
            else:
                for a, an in zip(args, nodes):
                    if an is not None and an.keyword is not None and an.keyword.value == kw:
                        v = a
            if v is None:
                continue
            if v.kind == BOX and v.items is not None:  # lax.switch branches
                targets.extend(x for x in v.items if x.kind == FN)
            elif _fn_value(v) is not None:
                targets.append(_fn_value(v))
            elif v.kind == RAW and v.src is not None:
                targets.append(Val(FN, ref=f"%{self._sum.ref}:{v.src}"))
            elif v.kind == RAW and v.ref and v.ref[:2] == "()":
                targets.append(Val(FN, ref=v.ref + ("|" + ";".join(f"{k}={r}" for k, r in v.items) if v.items else "")))  # `jax.jit(deco(f))`: the function `deco` returns
        label = T.short(qn)
        if not targets:
            if not positional and type(node) is cst.Call:
                return Val(Q, ref=qn, raw=f.raw, items=(node,))  # jax.jit(static_argnums=...) factory
            return Val(ARR, C.join(C.STAGED_ONLY, *(a.cond for a in args)))
        if qn in S.WRAPPERS:
            t = targets[0]
            via = t.via + (spec,)
            self._sum.edges.append(Edge(t.ref, "wrap", node, via=via, skip=t.skip, args=t.bound, label=label, virtual=t.virtual))
            return Val(FN, t.cond, t.ref, via, t.skip, t.bound, raw=t.raw, virtual=t.virtual)
        # The transform calls the function itself, now.
        app = S.SELF_CALLING_ARGS.get(qn)
        for t in targets:
            call_args = tuple(t.bound)
            if app is not None:
                first, how = app
                rest = positional[first:]
                if how == "tuple" and rest and rest[0].items is not None:
                    rest = list(rest[0].items)
                elif how == "tuple":
                    rest = []
                call_args += tuple((t.skip + i, a.cond) for i, a in enumerate(rest))
            self._sum.edges.append(Edge(t.ref, "wrap", node, via=t.via + (spec,), skip=t.skip, args=call_args, label=label, virtual=t.virtual))
        return Val(ARR, C.join(C.STAGED_ONLY, *(a.cond for a in args if a.kind != FN)))

    def _random(self, qn: str, args: list, nodes: list, node) -> Val:
        c = C.join(C.STAGED_ONLY, *(a.cond for a in args))
        if qn in S.KEY_MAKERS or qn in S.KEY_DERIVERS:
            if qn == f"{S.RANDOM}.split":
                return Val(KEY, c)
            return Val(KEY, c)
        if qn in KEY_NOT_TAKING:
            return _STATIC if qn.endswith(("key_impl", "default_prng_impl")) else Val(ARR, c)
        return Val(ARR, c)


# Decorators of methods that the value analysis follows (see `FileValues._methods`).
_KEEPS_FUNCTION = frozenset({"functools.wraps", "functools.update_wrapper"})
_METHOD_DECORATORS = frozenset(S.TRANSFORM_KIND) | S.CUSTOM_JVP | S.CUSTOM_VJP | frozenset(S.EQXI_RULE_DECORATORS)

_LITERALS = frozenset({cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString, cst.Ellipsis})
_COMPREHENSIONS = frozenset({cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp})


EXTERNAL = ("jax", "jaxlib", "numpy", "equinox", "builtins", "functools", "math", "typing", "optax",
            "flax", "chex", "scipy", "torch", "collections", "itertools", "operator", "os", "sys")


def _fn_value(v: Val) -> Optional[Val]:
    """`v` used as a function: a function value, or a name imported from the project (the index
    decides what it is)."""
    if v.kind == FN:
        return v
    if v.kind == Q and v.raw and "." in v.raw and v.raw.split(".", 1)[0] not in EXTERNAL and (v.ref or "").split(".", 1)[0] not in EXTERNAL:
        return Val(FN, ref=v.raw)
    return None


def _class_of(v: Val) -> Optional[str]:
    """The class of an instance value, or "()f" for "what `f` returns", for the index to follow
    (Equinox's own layers, `equinox.nn.*`, included: they are Modules)."""
    if v.kind == INST and v.ref and (not v.ref.startswith(("jax.", "equinox.", "numpy.")) or v.ref.startswith(S.EQX_NN_PREFIX)):
        return v.ref
    if v.kind == RAW and v.ref and v.ref.startswith("()"):
        return v.ref
    return None


def _as_global(v: Val) -> Val:
    c = _module_level(v.cond)
    if c == v.cond:
        return v
    return Val(v.kind, c, v.ref, v.via, v.skip, v.bound, v.items, v.raw, None, v.virtual)


def _outer_of(scope):
    p = scope.parent
    while p is not None and p.kind == "class":
        p = p.parent
    return p


def _binop(a: Val, b: Val, op=None) -> Val:
    ka, kb = a.kind, b.kind
    if ka == STATIC and kb == STATIC:
        if op is not None and type(a.lit) is int and type(b.lit) is int:
            return _arith(a.lit, b.lit, op)
        return _STATIC
    c = C.join(a.cond, b.cond)
    if ka == ARR or kb == ARR:
        return Val(ARR, c)
    if ka == BOX and kb in (BOX, STATIC) or kb == BOX and ka == STATIC:
        return Val(BOX, c)
    if ka in (RAW, KEY) or kb in (RAW, KEY):
        return Val(RAW, c) if c else _UNK
    if ka == UNK or kb == UNK:
        return _UNK
    return Val(RAW, c) if c else _UNK


def _same_lit(a, b) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def _int_of(n: int) -> Val:
    if not -(2**63) <= n < 2**63:
        return _STATIC
    v = _INTS.get(n)
    if v is None:
        v = Val(STATIC, lit=n)
        if len(_INTS) < 512:
            _INTS[n] = v
    return v


def _int_val(e) -> Val:
    try:
        return _int_of(int_value(e))
    except (ValueError, TypeError):
        return _STATIC


def _arith(a: int, b: int, op) -> Val:
    """Integer arithmetic on two known constants (`4 * 16`, `N - 1`); else a plain static value."""
    t = type(op)
    if t is cst.Add:
        return _int_of(a + b)
    if t is cst.Subtract:
        return _int_of(a - b)
    if t is cst.Multiply:
        return _int_of(a * b)
    if t is cst.FloorDivide and b:
        return _int_of(a // b)
    if t is cst.Modulo and b:
        return _int_of(a % b)
    if t is cst.Power and 0 <= b < 64 and abs(a) < 2**16:
        return _int_of(a**b)
    if t is cst.LeftShift and 0 <= b < 64:
        return _int_of(a << b)
    return _STATIC


def _array_attr(base: Val, attr: str) -> Val:
    """Attribute `attr` of an array, PyTree, key or static value (`x.shape`, `getattr(x, "ndim", 0)`)."""
    k = base.kind
    if k in (ARR, RAW, KEY):
        if attr in STATIC_ATTRS:
            return _STATIC
        if attr in PASS_ATTRS:
            return Val(ARR if k == ARR else k, base.cond)
        return Val(RAW, base.cond)
    if k == STATIC:
        return _STATIC
    return _UNK


def _element(v: Val) -> Val:
    """An element of an iterable value (a for target, an unpacked item)."""
    if v.kind == STATIC:
        return _STATIC
    if v.kind == KEY:
        return Val(KEY, v.cond)
    if v.kind in (ARR, RAW, BOX):
        return Val(RAW if v.kind != ARR else ARR, v.cond) if v.cond else Val(UNK)
    return _UNK


def _item(v: Val, i: int) -> Val:
    """Element `i` of `v`: of what a project function returns, the element's own condition
    (`("r", "f@i", args)`, decided by the project from the function's per-element returns)."""
    if v.kind == RAW and v.ref and v.ref[:2] == "()" and len(v.cond) == 1:
        (a,) = v.cond
        if type(a) is tuple and "@" not in a[1]:
            return Val(RAW, frozenset({("r", f"{a[1]}@{i}", a[2])}))
    return _element(v)


def _int_literal(expr) -> Optional[int]:
    if type(expr) is cst.Integer:
        return int_value(expr)
    if type(expr) is cst.UnaryOperation and type(expr.operator) is cst.Minus and type(expr.expression) is cst.Integer:
        return -int_value(expr.expression)
    return None


def _literal_default(expr) -> bool:
    if type(expr) in (cst.Integer, cst.Float, cst.SimpleString, cst.Imaginary, cst.ConcatenatedString):
        return True
    if type(expr) is cst.Name and expr.value in ("None", "True", "False"):
        return True
    if type(expr) is cst.UnaryOperation and type(expr.expression) in (cst.Integer, cst.Float):
        return True
    return False


def _is_static_method(ctx, node) -> bool:
    for dec in getattr(node, "decorators", ()):
        if (ctx.qualname(dec.decorator) or "") in ("staticmethod",):
            return True
    return False


def _is_property(ctx, node) -> bool:
    for dec in getattr(node, "decorators", ()):
        expr = dec.decorator
        if (ctx.qualname(expr) or "") in ("property", "functools.cached_property"):
            return True
    return False


def _looks_method(attr: str) -> bool:
    return not attr.startswith("__") or attr == "__call__"


def _names_in(expr) -> list:
    from ..syntax.walker import iter_subtree

    return [n.value for n in iter_subtree(expr, (cst.Name,))]


def _called_attribute(node) -> Optional[str]:
    """`defjvp` for `f.defjvp(...)` or the decorator `@f.defjvp`."""
    expr = node.func if type(node) is cst.Call else node.decorator if type(node) is cst.Decorator else None
    if type(expr) is cst.Call:
        expr = expr.func
    return expr.attr.value if type(expr) is cst.Attribute else None


def _label(ctx, node) -> str:
    """A short name for what is called: `loss_fn`, `eqx.filter_value_and_grad`."""
    if type(node) is cst.Decorator:
        expr = node.decorator
        expr = expr.func if type(expr) is cst.Call else expr
    elif type(node) is cst.Call:
        expr = node.func
    else:
        return ""
    while type(expr) is cst.Call:
        expr = expr.func
    qn = ctx.qualname(expr) if type(expr) in (cst.Name, cst.Attribute) else None
    if qn is not None and qn.startswith(("jax.", "equinox.")):
        return T.short(qn)
    from ..syntax.nodes import dotted

    return dotted(expr) or ""


def _is_flag(expr) -> bool:
    while type(expr) is cst.UnaryOperation and type(expr.operator) is cst.Not:
        expr = expr.expression
    return type(expr) in (cst.Name, cst.Attribute)


def _has_guard_call(ctx, expr) -> bool:
    from ..syntax.walker import iter_subtree

    for node in iter_subtree(expr, (cst.Call,)):
        qn = ctx.qualname(node.func) if type(node.func) in (cst.Name, cst.Attribute) else None
        if qn not in ("len",):
            return True
    return False


def _catches_all(ctx, handler) -> bool:
    """`except:` / `except Exception:` / `except (BaseException, ...):` whose body does not
    raise again: it swallows ConcretizationTypeError, so the try body converts tracers safely."""
    from ..syntax.walker import iter_subtree

    t = handler.type
    if t is not None:
        elems = [e.value for e in t.elements] if type(t) is cst.Tuple else [t]
        if not any((ctx.qualname(x) or "") in ("Exception", "BaseException", "builtins.Exception",
                                                "builtins.BaseException") for x in elems):
            return False
    return not any(True for _ in iter_subtree(handler.body, (cst.Raise,)))


def _narrowing(ctx, expr, positive: bool) -> list:
    """Names a test proves static in one branch: `isinstance(x, (int, float))` (true branch),
    `not isinstance(...)` (false branch), `x is None`."""
    neg = False
    while type(expr) is cst.UnaryOperation and type(expr.operator) is cst.Not:
        expr = expr.expression
        neg = not neg
    want = positive != neg
    if type(expr) is cst.Call and want and (ctx.qualname(expr.func) or "") == "isinstance" and len(expr.args) == 2:
        target, types_ = expr.args[0].value, expr.args[1].value
        if type(target) is cst.Name:
            elems = [e.value for e in types_.elements] if type(types_) is cst.Tuple else [types_]
            if elems and all((ctx.qualname(t) or "") in PYTHON_TYPES for t in elems):
                return [target.value]
    if type(expr) is cst.BooleanOperation and type(expr.operator) is cst.And and want:
        return _narrowing(ctx, expr.left, True) + _narrowing(ctx, expr.right, True)
    return []
