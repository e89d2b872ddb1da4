"""The project index: facts that cross files, extracted from each file during its one walk and
merged after all files are linted.

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

from . import semantics as S
from .context import FileContext, Scope
from .walker import iter_subtree

NONDIFF_MARK = "eqxlint: nondifferentiable"
KINDS = ("abstract_eval", "lowering", "jvp", "transpose", "batching")


def _is_test_path(path: str) -> bool:
    p = path.replace("\\", "/")
    name = p.rsplit("/", 1)[-1]
    return "/tests/" in p or p.startswith("tests/") or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


class ModuleFacts:
    """Collector: module name, import bindings, classes and their bases."""

    def __init__(self, ctx: FileContext):
        self.ctx = ctx

    def end_file(self) -> None:
        ctx = self.ctx
        mod = ctx.module_name
        classes = {}
        for s in ctx.scopes:
            if s.kind != "class" or s.parent is not ctx.module_scope:
                continue
            bases = []
            for b in s.node.bases:
                if b.keyword is None:
                    val = b.value.value if isinstance(b.value, cst.Subscript) else b.value
                    qn = ctx.qualname(val)
                    if qn:
                        bases.append(qn)
            fields = {}
            for stmt in s.node.body.body:
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                            fields[small.target.value] = _is_static_field(ctx, small.value)
            classes[f"{mod}.{s.name}"] = {
                "bases": bases,
                "module": ctx.is_module_class(s),
                "fields": fields,
            }
        ctx.facts["module"] = mod
        ctx.facts["path"] = ctx.path
        ctx.facts["exports"] = {k: v for k, v in ctx.aliases.items()}
        ctx.facts["classes"] = classes
        ctx.facts["test"] = _is_test_path(ctx.path)


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
        self.module_names: Optional[set] = None
        self.enabled = "rimitive" in ctx.source or "bind" in ctx.source or "ad." in ctx.source

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
            qn = ctx.qualname(expr)
            if qn:
                return ("q", qn)
        return None

    def _is_primitive_ctor(self, call: cst.Call) -> Optional[str]:
        """'direct' for Primitive(...) (or a local subclass), else the qualname of a project
        callable that may be a factory, else None."""
        ctx = self.ctx
        qn = ctx.qualname(call.func)
        if qn is None:
            return None
        if qn in S.PRIMITIVE_CLASSES:
            return "direct"
        if isinstance(call.func, cst.Name):
            for d in ctx.module_scope.lookup_def(call.func.value):
                if d.kind == "class":
                    for b in d.node.bases:
                        if ctx.qualname(b.value) in S.PRIMITIVE_CLASSES:
                            return "direct"
        top = qn.split(".")[0]
        mine = (ctx.module_name or "").split(".")[0]
        if (top == mine and mine) or qn.startswith(f"{ctx.module_name}."):
            return qn
        return None

    # -- handlers -----------------------------------------------------------------------
    def visit_Assign(self, node: cst.Assign) -> None:
        if not self.enabled:
            return
        ctx = self.ctx
        scope = ctx.scope
        val = node.value
        if isinstance(val, cst.Call):
            kind = self._is_primitive_ctor(val)
            if kind is not None:
                for t in node.targets:
                    tgt = t.target
                    if not isinstance(tgt, cst.Name):
                        continue
                    fn = scope.function
                    if fn is not None:
                        if kind == "direct":
                            fn.info.setdefault("prims", {})[tgt.value] = True
                        continue
                    self._add_def(tgt, val, kind)
        for t in node.targets:
            tgt = t.target
            if isinstance(tgt, cst.Subscript):
                kind = S.REGISTRATION_TABLES.get(ctx.qualname(tgt.value) or "")
                if kind is not None and tgt.slice and isinstance(tgt.slice[0].slice, cst.Index):
                    self._register(tgt.slice[0].slice.value, (kind,), node, rule=node.value)

    def _add_def(self, target: cst.Name, call: cst.Call, kind: str) -> None:
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
                "qual": f"{ctx.module_name}.{target.value}",
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
        if qn in S.REGISTRATION_CALLS and positional:
            rule = positional[1].value if len(positional) > 1 else None
            self._register(positional[0].value, S.REGISTRATION_CALLS[qn], node, rule=rule, api=qn)
            return
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in S.REGISTRATION_METHODS:
            kind = S.REGISTRATION_METHODS[func.attr.value]
            if kind != "impl":
                self._register(func.value, (kind,), node)
            return
        if qn is not None and positional and not qn.startswith(("jax.", "equinox.", "numpy.")):
            args = {}
            for i, a in enumerate(positional):
                t = self._target(a.value, ctx.scope)
                if t is not None and t[0] == "q":
                    args[str(i)] = t[1]
                elif t is not None and t[0] == "param":
                    args[str(i)] = ("param", t[2])
            if args:
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
                scope = self.ctx.scope.parent or self.ctx.scope
                self._register(dec.value, (kind,), node, scope=scope)

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
        fact = self.factories.setdefault(qual, {"creates": False, "returns": [], "registers": [], "params": {}})
        if isinstance(val, cst.Name) and val.value in fn.info.get("prims", {}):
            fact["creates"] = True
        elif isinstance(val, cst.Call):
            kind = self._is_primitive_ctor(val)
            if kind == "direct":
                fact["creates"] = True
            elif kind is not None:
                fact["returns"].append(kind)

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
            t = self._target(expr, scope)
            if t is None:
                continue
            if t[0] == "q":
                self.regs.append({"qual": t[1], "kinds": list(kinds), "binds": binds})
            else:
                fn = t[1]
                qual = self._fn_qual(fn)
                if qual is None:
                    continue
                fact = self.factories.setdefault(qual, {"creates": False, "returns": [], "registers": [], "params": {}})
                if t[0] == "local":
                    fact["registers"].extend(k for k in kinds if k not in fact["registers"])
                    fact.setdefault("binds", []).extend(binds)
                else:
                    lst = fact["params"].setdefault(str(t[2]), [])
                    lst.extend(k for k in kinds if k not in lst)

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
                    if _mentions(node.value, tainted):
                        for t in node.targets:
                            for n in iter_subtree(t.target, (cst.Name,)):
                                tainted.add(n.value)
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
        if self.defs or self.regs or self.factories or self.helper_calls:
            self.ctx.facts["primitives"] = {
                "defs": self.defs,
                "regs": self.regs,
                "factories": self.factories,
                "helpers": self.helper_calls,
            }


def _mentions(expr, names: set) -> bool:
    if not names:
        return False
    for n in iter_subtree(expr, (cst.Name,)):
        if n.value in names:
            return True
    return False


COLLECTORS = (ModuleFacts, PrimitiveFacts)


class Primitive:
    __slots__ = ("qual", "name", "path", "row", "col", "end_row", "end_col", "nondiff", "rules", "binds", "via", "line_text")

    def __init__(self, d: dict, path: str):
        self.qual = d["qual"]
        self.name = d.get("name")
        self.path = path
        self.row, self.col, self.end_row, self.end_col = d["row"], d["col"], d["end_row"], d["end_col"]
        self.nondiff = d.get("nondiff", False)
        self.via = d.get("via")
        self.line_text = d.get("line_text", "")
        self.rules: dict = {}  # kind -> list of "path" strings where registered
        self.binds: set = set()  # primitives its JVP rule binds on tangents


class ProjectIndex:
    def __init__(self):
        self.facts: dict = {}  # path -> facts
        self.modules: dict = {}  # module name -> facts
        self.module_classes: set = set()
        self.primitives: dict = {}  # canonical qual -> Primitive

    @classmethod
    def from_results(cls, results) -> "ProjectIndex":
        idx = cls()
        for r in results:
            if r.facts:
                idx.facts[r.path] = r.facts
                if r.facts.get("module"):
                    idx.modules[r.facts["module"]] = r.facts
        idx._resolve_classes()
        idx._resolve_primitives()
        return idx

    # -- names -----------------------------------------------------------------------------
    def canonical(self, qual: str, _depth: int = 0) -> str:
        """Follow re-exports: `pkg.p` where pkg/__init__.py has `from ._impl import p`."""
        if _depth > 20 or "." not in qual:
            return qual
        mod, _, name = qual.rpartition(".")
        facts = self.modules.get(mod)
        if facts is not None:
            target = facts.get("exports", {}).get(name)
            if target and target != qual:
                return self.canonical(target, _depth + 1)
            return qual
        # `pkg.sub.name` where pkg.sub is imported into pkg as a name
        outer, _, attr = mod.rpartition(".")
        if outer and outer in self.modules:
            target = self.modules[outer].get("exports", {}).get(attr)
            if target and target != mod:
                return self.canonical(f"{target}.{name}", _depth + 1)
        return qual

    # -- classes ---------------------------------------------------------------------------
    def _resolve_classes(self) -> None:
        classes = {}
        for facts in self.facts.values():
            classes.update(facts.get("classes", {}))
        mods = {q for q, c in classes.items() if c.get("module")}
        changed = True
        while changed:
            changed = False
            for q, c in classes.items():
                if q in mods:
                    continue
                for b in c.get("bases", []):
                    cb = self.canonical(b)
                    if cb in mods or cb in S.MODULE_BASES or cb.startswith(S.EQX_NN_PREFIX):
                        mods.add(q)
                        changed = True
                        break
        self.classes = classes
        self.module_classes = mods

    def satisfies(self, requires) -> bool:
        kind, arg = requires[0], requires[1]
        if kind == "module_class":
            return self.canonical(arg) in self.module_classes
        return True

    def class_fields(self, qual: str) -> dict:
        """Fields of a class and its project bases: name -> static?"""
        out: dict = {}
        seen = set()
        todo = [self.canonical(qual)]
        while todo:
            q = todo.pop()
            if q in seen or q not in self.classes:
                continue
            seen.add(q)
            c = self.classes[q]
            for k, v in c.get("fields", {}).items():
                out.setdefault(k, v)
            todo.extend(self.canonical(b) for b in c.get("bases", []))
        return out

    # -- primitives ------------------------------------------------------------------------
    def _resolve_primitives(self) -> None:
        factories: dict = {}
        for path, facts in self.facts.items():
            p = facts.get("primitives")
            if p:
                for q, f in p["factories"].items():
                    factories[self.canonical(q)] = f

        def factory_info(q: str, seen=()):
            """(creates a primitive?, kinds it registers on it, binds) through factory chains."""
            q = self.canonical(q)
            f = factories.get(q)
            if f is None or q in seen:
                return False, set(), set()
            creates = f.get("creates", False)
            kinds = set(f.get("registers", []))
            binds = set(f.get("binds", []))
            for r in f.get("returns", []):
                c, k, b = factory_info(r, seen + (q,))
                creates = creates or c
                kinds |= k
                binds |= b
            return creates, kinds, binds

        for path, facts in self.facts.items():
            p = facts.get("primitives")
            if not p or facts.get("test"):
                continue
            for d in p["defs"]:
                prim = Primitive(d, path)
                if prim.via is not None:
                    creates, kinds, binds = factory_info(prim.via)
                    if not creates:
                        continue
                    for k in kinds:
                        prim.rules.setdefault(k, []).append(f"{prim.via} (factory)")
                    prim.binds |= binds
                self.primitives[self.canonical(prim.qual)] = prim
        # Registration helpers: functions registering rules on one of their parameters.
        helpers: dict = {}
        for q, f in factories.items():
            if f.get("params"):
                helpers[q] = {int(k): set(v) for k, v in f["params"].items()}
        # Helpers that forward their parameter to another helper.
        for path, facts in self.facts.items():
            p = facts.get("primitives")
            if not p:
                continue
            for call in p["helpers"]:
                if call.get("fn") and call.get("param_args"):
                    inner = helpers.get(self.canonical(call["callee"]))
                    if inner:
                        outer = helpers.setdefault(self.canonical(call["fn"]), {})
                        for pos, param in call["param_args"].items():
                            outer.setdefault(int(param), set()).update(inner.get(int(pos), ()))
        for path, facts in self.facts.items():
            p = facts.get("primitives")
            if not p:
                continue
            for reg in p["regs"]:
                prim = self.primitives.get(self.canonical(reg["qual"]))
                if prim is not None:
                    for k in reg["kinds"]:
                        prim.rules.setdefault(k, []).append(path)
                    prim.binds.update(self.canonical(b) for b in reg.get("binds", []))
            for call in p["helpers"]:
                kinds_by_pos = helpers.get(self.canonical(call["callee"]))
                if not kinds_by_pos:
                    continue
                for pos, qual in call["args"].items():
                    prim = self.primitives.get(self.canonical(qual))
                    if prim is not None:
                        for k in kinds_by_pos.get(int(pos), ()):
                            prim.rules.setdefault(k, []).append(f"{call['callee']} (helper)")
