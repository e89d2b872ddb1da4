"""Collectors: the facts each file contributes to the project index, extracted during the
file's one walk and cached with its result.

Per file (JSON-serialisable, cached with the file's result):
- `module`: the file's dotted module name; `exports`: its module-level import bindings (for
  re-exports such as `from ._impl import p` in `__init__.py`);
- `classes`: every class with its base classes (qualified) and whether it is locally known to be
  an `eqx.Module` subclass;
- `primitives`: custom primitives created (`Primitive("name")`, a project factory call), rules
  registered on them (JVP, transpose, batching, abstract eval, lowering) by whatever name they are
  imported under, functions that create primitives (factories) or register rules on a parameter
  (registration helpers), and which primitives each JVP rule binds on tangents.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..semantics import names as S
from ..semantics import values as V
from ..semantics.context import FileContext, Scope
from ..syntax.walker import iter_subtree
from .paths import is_test_path

NONDIFF_MARK = "eqxlint: nondifferentiable"
KINDS = ("abstract_eval", "lowering", "jvp", "transpose", "batching")


_TABLE_SUFFIX = {q.rsplit(".", 2)[-2] + "." + q.rsplit(".", 1)[-1]: k for q, k in S.REGISTRATION_TABLES.items()}
_CALL_SUFFIX = {q.rsplit(".", 2)[-2] + "." + q.rsplit(".", 1)[-1]: k for q, k in S.REGISTRATION_CALLS.items()}


def registration_table(qn: Optional[str]) -> Optional[str]:
    """Kind of rule table (`ad.primitive_jvps` -> "jvp"), also when the `ad`/`batching` module
    is re-exported by a project compatibility shim (`from mypkg._compat import batching`)."""
    if not qn:
        return None
    kind = S.REGISTRATION_TABLES.get(qn)
    if kind is None and qn.count(".") >= 1:
        kind = _TABLE_SUFFIX.get(".".join(qn.rsplit(".", 2)[-2:]))
    return kind


def registration_call(qn: Optional[str]):
    if not qn:
        return None
    kinds = S.REGISTRATION_CALLS.get(qn)
    if kinds is None and qn.count(".") >= 1:
        kinds = _CALL_SUFFIX.get(".".join(qn.rsplit(".", 2)[-2:]))
    return kinds


class ModuleFacts:
    """Collector: module name, import bindings, classes and their bases."""

    def __init__(self, ctx: FileContext):
        self.ctx = ctx

    def end_file(self) -> None:
        ctx = self.ctx
        mod = ctx.module_name
        classes = {}
        for s in ctx.scopes:
            if s.kind != "class":
                continue
            local = s.parent is not ctx.module_scope
            if local and "<locals>" not in (s.ref or ""):
                continue  # a class nested in a class
            bases = []
            for b in s.node.bases:
                if b.keyword is None:
                    val = b.value.value if isinstance(b.value, cst.Subscript) else b.value
                    qn = ctx.qualname(val)
                    if local:
                        # a class defined in a function (`class Carry(NamedTuple)`): its bases
                        # may be classes of that function; an unknown base stays unknown ("?")
                        d = [c for c in s.parent.lookup_def(val.value) if c.kind == "class"] if isinstance(val, cst.Name) else []
                        qn = d[0].ref if d and d[0].ref else qn or "?"
                    if qn:
                        bases.append(qn)
            fields = {}
            for stmt in s.node.body.body:
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                            fields[small.target.value] = _is_static_field(ctx, small.value)
            q = s.ref if local else f"{mod}.{s.name}"
            classes[q] = {
                "bases": bases,
                "module": ctx.is_module_class(s),
                "fields": fields,
            }
            py = python_fields(ctx, s)
            if py:
                classes[q]["py"] = py
        ctx.facts["module"] = mod
        ctx.facts["path"] = ctx.path
        ctx.facts["exports"] = {k: v for k, v in ctx.aliases.items()}
        ctx.facts["classes"] = classes
        ctx.facts["test"] = is_test_path(ctx.path)


def python_fields(ctx: FileContext, cls: Scope) -> list:
    """A class's own fields annotated as Python values (int, str, Callable, a dtype, ...) and not
    marked static: leaves that `jax.vmap`/`jax.jit` cannot take (see `types.own_fields`)."""
    from ..semantics import types as TY

    return [f.name for f in TY.own_fields(ctx, cls).values() if f.kind == "static-type" and f.call_kind != "converter"]


def _is_static_field(ctx: FileContext, value) -> bool:
    if isinstance(value, cst.Call) and ctx.qualname(value.func) in ("equinox.field", "equinox.static_field"):
        for arg in value.args:
            if arg.keyword is not None and arg.keyword.value == "static":
                return isinstance(arg.value, cst.Name) and arg.value.value == "True"
        return ctx.qualname(value.func) == "equinox.static_field"
    return False


class PrimitiveFacts:
    """Collector: custom primitives and the rules registered on them."""

    def __init__(self, ctx: FileContext):
        self.ctx = ctx
        self.defs: list = []
        self.regs: list = []
        self.helper_calls: list = []
        self.factories: dict = {}
        self.value_aliases: dict = {}
        self.dynamic: list = []
        # Where primitives are bound: {"qual", "n": positional operands (None: starred),
        # "zt": every operand has a zero tangent (a PRNG key or a static value), "nb": every
        # operand is static (never batched)}; "uses": primitives handed on otherwise (to a
        # function, a container, returned, `p.bind` taken as a value): bound somewhere unknown.
        self.bind_sites: list = []
        self.prim_uses: list = []
        self.module_names: Optional[set] = None
        # JAX's own source tree defines the framework's core primitives, with rules registered
        # through internal machinery: they are not custom primitives of a project.
        framework = (ctx.module_name or "").split(".")[0] in ("jax", "jaxlib")
        self.enabled = not framework and ("rimitive" in ctx.source or "bind" in ctx.source or "ad." in ctx.source)

    # -- name resolution --------------------------------------------------------------
    def _module_level_names(self) -> set:
        if self.module_names is None:
            names = set()
            for stmt in self.ctx.module.body:
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        targets = []
                        if isinstance(small, cst.Assign):
                            targets = [t.target for t in small.targets]
                        elif isinstance(small, cst.AnnAssign):
                            targets = [small.target]
                        for t in targets:
                            for n in iter_subtree(t, (cst.Name,)):
                                names.add(n.value)
            self.module_names = names
        return self.module_names

    def _target(self, expr, scope: Scope):
        """What a primitive expression refers to: ('q', qualname) | ('param', fn, index) |
        ('local', fn, name) | None."""
        ctx = self.ctx
        fn = scope.function
        if isinstance(expr, cst.Name):
            name = expr.value
            if fn is not None:
                if name in fn.params:
                    return ("param", fn, fn.params.index(name))
                local = fn.info.get("prims", {})
                if name in local:
                    return ("local", fn, name)
            if name in ctx.aliases:
                return ("q", ctx.aliases[name])
            if name in self._module_level_names() or name in ctx.module_scope.defs:
                return ("q", f"{ctx.module_name}.{name}")
            return None
        if isinstance(expr, cst.Attribute):
            if isinstance(expr.value, cst.Name) and expr.value.value in ("self", "cls"):
                owner = fn.cls if fn is not None else (scope if scope.kind == "class" else None)
                if owner is not None and owner.parent is ctx.module_scope:
                    return ("q", f"{ctx.module_name}.{owner.name}.{expr.attr.value}")
                return None
            qn = ctx.qualname(expr)
            if qn:
                return ("q", qn)
        return None

    def _is_primitive_class(self, qn: Optional[str]) -> bool:
        """`jax.extend.core.Primitive`, or `Primitive` re-exported by a project shim."""
        if not qn:
            return False
        if qn in S.PRIMITIVE_CLASSES:
            return True
        if "HiPrimitive" in qn:
            return False  # jax hijax primitives define their rules as methods
        mine = (self.ctx.module_name or "").split(".")[0]
        return qn.endswith(".Primitive") and qn.split(".")[0] in ("jax", mine)

    def _is_primitive_ctor(self, call: cst.Call) -> Optional[str]:
        """'direct' for Primitive(...) (or a local subclass), else the qualname of a project
        callable that may be a factory, else None."""
        ctx = self.ctx
        qn = ctx.qualname(call.func)
        if qn is None:
            return None
        if self._is_primitive_class(qn):
            return "direct"
        if self._local_primitive_class(call) is not None:
            return "direct"
        top = qn.split(".")[0]
        mine = (ctx.module_name or "").split(".")[0]
        if (top == mine and mine) or qn.startswith(f"{ctx.module_name}."):
            return qn
        return None

    def _local_primitive_class(self, call: cst.Call) -> Optional[Scope]:
        """The module-level class of this file subclassing `Primitive` that `call` instantiates."""
        ctx = self.ctx
        if isinstance(call.func, cst.Name):
            for d in ctx.module_scope.lookup_def(call.func.value):
                if d.kind == "class":
                    for b in d.node.bases:
                        if self._is_primitive_class(ctx.qualname(b.value)):
                            return d
        return None

    def _self_class(self, expr, scope: Scope) -> Optional[str]:
        """`self` in a method of a module-level class: the class's qualname. Rules registered on
        `self` (`ad.primitive_jvps[self] = ...` in a `Primitive` subclass's `__init__`) belong
        to every instance of the class; the project index hands them to those instances."""
        fn = scope.function
        if (isinstance(expr, cst.Name) and fn is not None and fn.kind == "function"
                and fn.cls is not None and fn.cls.parent is self.ctx.module_scope
                and fn.params and fn.params[0] == expr.value):
            return f"{self.ctx.module_name}.{fn.cls.name}"
        return None

    # -- handlers -----------------------------------------------------------------------
    def visit_Assign(self, node: cst.Assign) -> None:
        if self.enabled:
            self._assignment([t.target for t in node.targets], node.value, node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if self.enabled and node.value is not None:
            self._assignment([node.target], node.value, node)

    def _assignment(self, targets: list, val, node) -> None:
        ctx = self.ctx
        scope = ctx.scope
        fn = scope.function
        # Where a name bound here lives: module level, a module-level class body, or a function.
        if fn is None and scope.kind == "class" and scope.parent is ctx.module_scope:
            prefix = f"{ctx.module_name}.{scope.name}."
        elif fn is None and scope.kind == "module":
            prefix = f"{ctx.module_name}."
        else:
            prefix = None
        if isinstance(val, cst.Call):
            kind = self._is_primitive_ctor(val)
            if kind is not None:
                for tgt in targets:
                    if not isinstance(tgt, cst.Name):
                        continue
                    if fn is not None:
                        if kind == "direct":
                            fn.info.setdefault("prims", {})[tgt.value] = True
                        continue
                    if prefix is not None and (kind == "direct" or _looks_primitive(tgt.value, kind)):
                        self._add_def(tgt, val, kind, prefix + tgt.value)
                        cls = self._local_primitive_class(val) if kind == "direct" else None
                        if cls is not None:
                            self.defs[-1]["cls"] = f"{ctx.module_name}.{cls.name}"
        elif prefix is None and isinstance(val, (cst.Name, cst.Attribute)) and fn is not None:
            # prim = cls._PRIM (a local name for a primitive: its `.bind` sites count), or
            # self.p = prim / table[k] = prim (handed on: bound somewhere unknown)
            t = self._prim_ref(val, scope)
            if t is not None:
                for tgt in targets:
                    if isinstance(tgt, cst.Name) and t[0] == "q":
                        fn.info.setdefault("prim_names", {})[tgt.value] = t[1]
                    elif not isinstance(tgt, cst.Name):
                        self._note_use(val, scope)
        elif isinstance(val, (cst.Tuple, cst.List, cst.Set, cst.Dict)):
            # a table of primitives (`PRIMS = {"a": a_p}`): bound somewhere unknown
            for el in getattr(val, "elements", ()):
                inner = el.value
                if isinstance(inner, (cst.Name, cst.Attribute)):
                    self._note_use(inner, scope)
        if prefix is not None and isinstance(val, (cst.Name, cst.Attribute)):
            # X = other_prim / _PRIM: ClassVar = _CONCAT_PRIM  (value aliases)
            t = self._target(val, scope)
            if t is not None and t[0] == "q":
                for tgt in targets:
                    if isinstance(tgt, cst.Name):
                        self.value_aliases[prefix + tgt.value] = t[1]
        for tgt in targets:
            if isinstance(tgt, cst.Subscript):
                kind = registration_table(ctx.qualname(tgt.value))
                if kind is not None and tgt.slice and isinstance(tgt.slice[0].slice, cst.Index):
                    self._register(tgt.slice[0].slice.value, (kind,), node, rule=val)

    def _add_def(self, target: cst.Name, call: cst.Call, kind: str, qual: str) -> None:
        ctx = self.ctx
        name = None
        if call.args and isinstance(call.args[0].value, cst.SimpleString):
            ev = call.args[0].value.evaluated_value
            name = ev if isinstance(ev, str) else None
        pos = ctx.position(target)
        row = pos[0]
        nondiff = NONDIFF_MARK in ctx.line_comment(row) or NONDIFF_MARK in ctx.line_comment(row - 1)
        if not nondiff:
            # A multi-line definition may carry the mark on its last line.
            end = ctx.position(call)
            if end is not None:
                nondiff = NONDIFF_MARK in ctx.line_comment(end[2])
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value == "differentiable":
                    nondiff = nondiff or (isinstance(arg.value, cst.Name) and arg.value.value == "False")
        self.defs.append(
            {
                "qual": qual,
                "name": name,
                "row": pos[0],
                "col": pos[1] + 1,
                "end_row": pos[2],
                "end_col": pos[3] + 1,
                "via": None if kind == "direct" else kind,
                "nondiff": nondiff,
                "line_text": " ".join(ctx.line_comment(pos[0]).split()),
            }
        )

    def visit_Call(self, node: cst.Call) -> None:
        if not self.enabled:
            return
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        positional = [a for a in node.args if a.keyword is None and not a.star]
        kinds = registration_call(qn)
        self._bind_or_use(node, qn, kinds)
        if kinds is not None and positional:
            rule = positional[1].value if len(positional) > 1 else None
            self._register(positional[0].value, kinds, node, rule=rule, api=qn)
            return
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in S.REGISTRATION_METHODS:
            kind = S.REGISTRATION_METHODS[func.attr.value]
            if kind != "impl":
                self._register(func.value, (kind,), node)
            return
        if qn is not None and node.args and not qn.startswith(("jax.", "equinox.", "numpy.")):
            args = {}
            named = [(str(i), a) for i, a in enumerate(positional)]
            named += [(a.keyword.value, a) for a in node.args if a.keyword is not None]
            for key, a in named:
                t = self._target(a.value, ctx.scope)
                if t is not None and t[0] == "q":
                    args[key] = t[1]
                elif t is not None and t[0] == "param":
                    args[key] = ("param", t[2])
            if args:
                if any(isinstance(v, tuple) for v in args.values()):
                    fq = self._fn_qual(ctx.scope)
                    if fq is not None:
                        self._factory(fq, ctx.scope.function)  # records its parameter names
                self.helper_calls.append(
                    {"callee": qn, "args": {k: v for k, v in args.items() if isinstance(v, str)},
                     "fn": self._fn_qual(ctx.scope),
                     "param_args": {k: v[1] for k, v in args.items() if isinstance(v, tuple)}}
                )

    def visit_Decorator(self, node: cst.Decorator) -> None:
        if not self.enabled:
            return
        dec = node.decorator
        if isinstance(dec, cst.Attribute) and dec.attr.value in S.REGISTRATION_METHODS:
            kind = S.REGISTRATION_METHODS[dec.attr.value]
            if kind != "impl":
                # (a decorator is visited in the scope the `def` runs in)
                self._register(dec.value, (kind,), node, scope=self.ctx.scope)

    def visit_Return(self, node: cst.Return) -> None:
        if not self.enabled or node.value is None:
            return
        fn = self.ctx.scope.function
        if fn is None or fn.kind != "function":
            return
        qual = self._fn_qual(fn)
        if qual is None:
            return
        val = node.value
        # return cast(Primitive, prim)
        if isinstance(val, cst.Call) and self.ctx.qualname(val.func) in ("typing.cast", "cast") and len(val.args) == 2:
            val = val.args[1].value
        if isinstance(val, (cst.Name, cst.Attribute)):
            t = self._prim_ref(val, fn)
            if t is not None and t[0] == "q":
                self.prim_uses.append(t[1])  # returned: bound wherever the caller binds it
        fact = self._factory(qual, fn)
        if isinstance(val, cst.Name) and val.value in fn.info.get("prims", {}):
            fact["creates"] = True
        elif isinstance(val, cst.Call):
            kind = self._is_primitive_ctor(val)
            if kind == "direct":
                fact["creates"] = True
            elif kind is not None:
                fact["returns"].append(kind)

    def _factory(self, qual: str, fn: Scope) -> dict:
        fact = self.factories.get(qual)
        if fact is None:
            fact = {"creates": False, "returns": [], "registers": [], "params": {}, "names": list(fn.params)}
            self.factories[qual] = fact
        return fact

    def _fn_qual(self, scope: Scope) -> Optional[str]:
        fn = scope.function
        if fn is None or fn.kind != "function":
            return None
        names = []
        s = fn
        while s is not None and s.kind != "module":
            if s.kind == "lambda":
                return None
            names.append(s.name)
            s = s.parent
        return f"{self.ctx.module_name}." + ".".join(reversed(names))

    def _register(self, prim_expr, kinds: tuple, node, *, rule=None, api=None, scope=None) -> None:
        ctx = self.ctx
        scope = scope or ctx.scope
        targets = [prim_expr]
        # for p in (a_p, b_p): ad.deflinear2(p, ...)
        if isinstance(prim_expr, cst.Name):
            loop = self._loop_values(prim_expr.value)
            if loop is not None:
                targets = loop
        binds = self._tangent_binds(rule, kinds, api) if "jvp" in kinds and rule is not None else []
        for expr in targets:
            own = self._self_class(expr, scope)
            if own is not None:
                # Registered on the instance itself: the class's registrations (see index).
                self.regs.append({"qual": own, "kinds": list(kinds), "binds": binds, "on_self": True})
                continue
            t = self._target(expr, scope)
            if t is None:
                fn = scope.function
                if fn is not None and fn.cls is not None:
                    # getattr(cls, "_PRIM").def_abstract_eval(...) in a base-class method: a
                    # registration for every subclass's primitive, not resolvable statically.
                    for k in kinds:
                        if k not in self.dynamic:
                            self.dynamic.append(k)
                continue
            if t[0] == "q":
                reg = {"qual": t[1], "kinds": list(kinds), "binds": binds}
                self.regs.append(reg)
            else:
                fn = t[1]
                qual = self._fn_qual(fn)
                if qual is None:
                    continue
                fact = self._factory(qual, fn)
                if t[0] == "local":
                    fact["registers"].extend(k for k in kinds if k not in fact["registers"])
                    fact.setdefault("binds", []).extend(binds)
                else:
                    lst = fact["params"].setdefault(str(t[2]), [])
                    lst.extend(k for k in kinds if k not in lst)

    def _prim_ref(self, expr, scope: Scope):
        """`_target` of a possible primitive reference, also through a local name bound to one
        in the same function (`prim = cls._PRIM`). A factory's own primitive (a local or a
        parameter) marks the factory: what it creates is bound somewhere unknown."""
        t = self._target(expr, scope)
        if t is None and isinstance(expr, cst.Name):
            s = scope.function
            while s is not None and s.kind in ("function", "lambda"):  # also a closure's
                q = s.info.get("prim_names", {}).get(expr.value)
                if q:
                    return ("q", q)
                s = s.parent.function if s.parent is not None else None
        return t

    def _note_use(self, expr, scope: Scope) -> None:
        t = self._prim_ref(expr, scope)
        if t is None:
            return
        if t[0] == "q":
            self.prim_uses.append(t[1])
        else:
            qual = self._fn_qual(t[1])
            if qual is not None:
                self._factory(qual, t[1])["bound"] = True

    def _bind_or_use(self, node: cst.Call, qn, kinds) -> None:
        """Record a `p.bind(...)` site (with what it is bound with), and primitives handed to
        other calls (they may be bound there)."""
        ctx = self.ctx
        scope = ctx.scope
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "bind":
            t = self._prim_ref(func.value, scope)
            if t is not None and t[0] == "q":
                ops = [a for a in node.args if a.keyword is None]
                if any(a.star for a in ops):
                    self.bind_sites.append({"qual": t[1], "n": None, "zt": False, "nb": False})
                else:
                    vals = [ctx.values.of(a.value) for a in ops] if ops else []
                    static = [v.kind == V.STATIC for v in vals]
                    zt = all(s or v.kind == V.KEY for s, v in zip(static, vals))
                    self.bind_sites.append({"qual": t[1], "n": len(ops), "zt": zt, "nb": all(static)})
            elif t is not None:
                self._note_use(func.value, scope)
            return
        if kinds is not None or (isinstance(func, cst.Attribute) and func.attr.value in S.REGISTRATION_METHODS):
            return
        if qn in _INSPECTING:
            return
        for a in node.args:
            val = a.value
            if isinstance(val, cst.Attribute) and val.attr.value == "bind":
                val = val.value  # `partial(p.bind, ...)`, `impl=p.bind`
            if isinstance(val, (cst.Name, cst.Attribute)):
                self._note_use(val, scope)

    def _loop_values(self, name: str):
        for anc in reversed(self.ctx.stack):
            if isinstance(anc, cst.For) and isinstance(anc.target, cst.Name) and anc.target.value == name:
                if isinstance(anc.iter, (cst.List, cst.Tuple, cst.Set)):
                    return [e.value for e in anc.iter.elements]
                return None
        return None

    def _tangent_binds(self, rule, kinds, api) -> list:
        """Primitives a JVP rule binds with tangent-derived arguments (linear use -> EQX302)."""
        ctx = self.ctx
        fns = ctx.resolve_functions(rule, ctx.scope) if not isinstance(rule, cst.Lambda) else [ctx.scope_of.get(id(rule))]
        if not fns and isinstance(rule, cst.Call):
            for a in rule.args:
                fns.extend(ctx.resolve_functions(a.value, ctx.scope))
        out = []
        for fn in fns:
            if fn is None:
                continue
            params = list(fn.params)
            if not params:
                continue
            if api and api.endswith(("defjvp", "defjvp2")):
                tainted = {params[0]}  # g: the tangent of one input
            else:
                tainted = {params[1]} if len(params) > 1 else set()  # (primals, tangents)
            body = fn.node.body
            for node in iter_subtree(body, (cst.Assign, cst.Call)):
                if isinstance(node, cst.Assign):
                    for t in node.targets:
                        _taint_targets(t.target, node.value, tainted)
                elif isinstance(node.func, cst.Attribute) and node.func.attr.value == "bind":
                    if any(_mentions(a.value, tainted) for a in node.args):
                        t = self._target(node.func.value, fn)
                        if t is not None and t[0] == "q":
                            out.append(t[1])
            for call in iter_subtree(body, (cst.Call,)):
                # `zeros_like`-style helpers do not bind; project helpers that bind are followed
                # one level when they are defined in this file.
                if isinstance(call.func, cst.Name) and any(_mentions(a.value, tainted) for a in call.args):
                    for callee in fn.lookup_def(call.func.value):
                        if callee.kind == "function":
                            for inner in iter_subtree(callee.node.body, (cst.Call,)):
                                if isinstance(inner.func, cst.Attribute) and inner.func.attr.value == "bind":
                                    t = self._target(inner.func.value, callee)
                                    if t is not None and t[0] == "q":
                                        out.append(t[1])
        return sorted(set(out))

    def end_file(self) -> None:
        if self.enabled:
            # A `Primitive` subclass overriding `abstract_eval` (or `impl`) as a method evaluates
            # abstractly without `def_abstract_eval`: a class registration, like those on `self`.
            for cls in self.ctx.module_scope.children:
                # (The index applies it only to instances of `Primitive` subclasses.)
                if cls.kind == "class" and "abstract_eval" in cls.defs and cls.node.bases:
                    self.regs.append({"qual": f"{self.ctx.module_name}.{cls.name}",
                                      "kinds": ["abstract_eval"], "binds": [], "on_self": True})
        if self.defs or self.regs or self.factories or self.helper_calls or self.value_aliases or self.dynamic or self.bind_sites or self.prim_uses:
            self.ctx.facts["primitives"] = {
                "bind_sites": self.bind_sites,
                "uses": sorted(set(self.prim_uses)),
                "dynamic": self.dynamic,
                "aliases": self.value_aliases,
                "defs": self.defs,
                "regs": self.regs,
                "factories": self.factories,
                "helpers": self.helper_calls,
            }


import re as _re

_INSPECTING = frozenset({"getattr", "setattr", "hasattr", "isinstance", "id", "str", "repr", "print", "type", "hash", "len"})


_PRIMITIVE_NAME = _re.compile(r"(?i)(^|_)p$|prim")


def _looks_primitive(target: str, factory: str) -> bool:
    """A call of a project function counts as a candidate primitive definition when the bound
    name (`relu_p`, `_CONCAT_PRIM`) or the factory (`make_jnp_primitive`, `create_vprim`) says so;
    every other module-level `x = f(...)` is left out of the index."""
    return bool(_PRIMITIVE_NAME.search(target) or _PRIMITIVE_NAME.search(factory.rsplit(".", 1)[-1]))


def _taint_targets(target, value, tainted: set) -> None:
    """`(x,), (t,) = primals, tangents`: taint element-wise when both sides are tuples of the
    same length; otherwise every name bound is tainted iff the value mentions a tainted name."""
    if isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, (cst.Tuple, cst.List)):
        tel = [e.value for e in target.elements]
        vel = [e.value for e in value.elements]
        if len(tel) == len(vel) and not any(isinstance(e, cst.StarredElement) for e in target.elements + value.elements):
            for t, v in zip(tel, vel):
                _taint_targets(t, v, tainted)
            return
    if _mentions(value, tainted):
        for n in iter_subtree(target, (cst.Name,)):
            tainted.add(n.value)


def _mentions(expr, names: set) -> bool:
    if not names:
        return False
    for n in iter_subtree(expr, (cst.Name,)):
        if n.value in names:
            return True
    return False


class FunctionFacts:
    """Collector: every function's summary from the value analysis (its parameters, the calls
    and hand-overs it makes with the conditions of their arguments, what it returns, which key
    parameters it consumes), for the project call graph (`eqxlint.project.callgraph`)."""

    def __init__(self, ctx: FileContext):
        self.ctx = ctx

    def end_file(self) -> None:
        from ..semantics import cond as C
        from ..syntax.lines import LineLocator

        ctx = self.ctx
        fv = ctx.values
        loc = LineLocator(ctx.source)
        rows = loc.def_rows([s for s in ctx.scopes if s.kind in ("function", "class")])
        out = {}
        for scope in [ctx.module_scope] + ctx.scopes:
            summ = fv.summaries.get(id(scope))
            if summ is None:
                continue
            s = scope
            while s is not None and id(s) not in rows:
                s = s.parent
            row = rows.get(id(s), 1) if s is not None else 1
            edges = []
            seen: dict = {}  # label -> node ids, for the k-th call of a name
            for e in summ.edges:
                name = e.label.rsplit(".", 1)[-1]
                ids = seen.setdefault(name, [])
                if id(e.node) not in ids:
                    ids.append(id(e.node))
                if isinstance(e.node, cst.Decorator):
                    target = ctx.refs.get(e.to)
                    erow = loc.call_row(name, rows.get(id(target), row), decorator=True)
                else:
                    erow = loc.call_row(name, row + (0 if scope.kind == "module" else 1), ids.index(id(e.node)))
                edges.append([
                    e.to, e.kind, [[k, C.to_json(c)] for k, c in e.args], C.to_json(e.star),
                    [[k, r, list(v)] for k, r, v in e.fnargs], list(e.via), e.skip, erow, e.label,
                    1 if e.virtual else 0, [[k, c] for k, c in e.classes],
                ])
            fact = {"row": row, "params": summ.params, "edges": edges}
            if summ.ret:
                fact["ret"] = C.to_json(summ.ret)
            if summ.ret_fn:
                fact["ret_fn"] = [summ.ret_fn[0], list(summ.ret_fn[1])]
            if summ.consumes:
                fact["consumes"] = summ.consumes
            flags = {k: v for k, v in summ.flags.items() if v}
            if flags:
                fact["flags"] = flags
            if scope.kind == "module":
                fact["module"] = 1
            if scope.kind in ("function", "lambda"):
                owner = scope.parent
                while owner is not None and owner.kind == "class":
                    owner = owner.parent
                if owner is not None and owner.kind != "module":
                    fact["owner"] = owner.ref
                if scope.cls is not None:
                    fact["cls"] = scope.cls.ref
                if scope.kind == "lambda":
                    fact["lambda"] = 1
            out[scope.ref or "<module>"] = fact
        ctx.facts["functions"] = out


COLLECTORS = (ModuleFacts, PrimitiveFacts, FunctionFacts)
