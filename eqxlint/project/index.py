"""The project index: the facts of every file merged after all files are linted (classes and
their Module-ness across files, custom primitives and their rules, the call graph and what is
traced across modules), and the conditions per-file findings carry, decided on it."""

from __future__ import annotations

from typing import Optional

from ..semantics import keys as SK
from ..semantics import names as S
from .collectors import KINDS as KINDS


class Primitive:
    __slots__ = ("qual", "name", "path", "row", "col", "end_row", "end_col", "nondiff", "rules", "binds", "via", "line_text", "on_class", "cls", "sites", "used")

    def __init__(self, d: dict, path: str):
        self.qual = d["qual"]
        self.name = d.get("name")
        self.path = path
        self.row, self.col, self.end_row, self.end_col = d["row"], d["col"], d["end_row"], d["end_col"]
        self.nondiff = d.get("nondiff", False)
        self.via = d.get("via")
        self.line_text = d.get("line_text", "")
        self.rules: dict = {}  # kind -> list of "path" strings where registered
        self.on_class = False  # stored as (or aliased by) a class attribute
        self.binds: set = set()  # primitives its JVP rule binds on tangents
        self.cls = d.get("cls")  # the project `Primitive` subclass it is an instance of
        self.sites: list = []  # its `.bind(...)` sites: {"n", "zt", "nb"} (see PrimitiveFacts)
        self.used = False  # handed on somewhere (a call, a container, a return): bound unknown


class ProjectIndex:
    def __init__(self):
        self.facts: dict = {}  # path -> facts
        self.modules: dict = {}  # module name -> facts
        self.module_classes: set = set()
        self.primitives: dict = {}  # canonical qual -> Primitive
        self.value_aliases: dict = {}
        # Rule kinds some base-class method registers on `getattr(cls, ...)`: unknown per class.
        self.dynamic_kinds: dict = {}  # top-level package -> kinds
        # Does the project register any lowering at all? (exporters such as jax2onnx never do)
        self.lowering_packages: set = set()  # top-level packages that lower some primitive

    @classmethod
    def from_results(cls, results) -> "ProjectIndex":
        idx = cls()
        for r in results:
            if r.facts:
                idx.facts[r.path] = r.facts
                if r.facts.get("module"):
                    idx.modules[r.facts["module"]] = r.facts
                prim = r.facts.get("primitives")
                if prim:
                    idx.value_aliases.update(prim.get("aliases", {}))
                    top = (r.facts.get("module") or "").split(".")[0]
                    idx.dynamic_kinds.setdefault(top, set()).update(prim.get("dynamic", []))
        idx._resolve_classes()
        idx._resolve_primitives()
        return idx

    # -- names -----------------------------------------------------------------------------
    def canonical(self, qual: str, _depth: int = 0) -> str:
        """Follow re-exports (`pkg.p` where pkg/__init__.py has `from ._impl import p`) and
        value aliases (`Plugin._PRIM = _CONCAT_PRIM`)."""
        if _depth > 20 or "." not in qual:
            return qual
        alias = self.value_aliases.get(qual)
        if alias is not None and alias != qual:
            return self.canonical(alias, _depth + 1)
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

    def _is_primitive_subclass(self, qual: str, _seen=()) -> bool:
        c = self.classes.get(qual)
        if c is None or qual in _seen:
            return False
        for b in c.get("bases", []):
            cb = self.canonical(b)
            if "HiPrimitive" in cb:
                return False  # jax hijax primitives define their rules as methods
            if cb in S.PRIMITIVE_CLASSES or cb.endswith(".Primitive") or self._is_primitive_subclass(cb, _seen + (qual,)):
                return True
        return False

    def _class_chain(self, qual: str, _seen=()) -> list:
        """The project class and its project bases, nearest first."""
        c = self.classes.get(qual)
        if c is None or qual in _seen:
            return [qual] if c is not None else []
        out = [qual]
        for b in c.get("bases", []):
            out.extend(self._class_chain(self.canonical(b), _seen + (qual,)))
        return out

    # -- conditions of per-file findings ---------------------------------------------------
    @property
    def graph(self):
        """The project call graph and what it traces (`eqxlint.project.callgraph`)."""
        g = self.__dict__.get("_graph")
        if g is None:
            from .callgraph import CallGraph

            g = self._graph = CallGraph(self)
        return g

    def satisfies(self, requires) -> bool:
        """Do all the conditions of a finding hold on the project? `requires` is one condition
        tuple or a tuple of them:
        - ("module_class", qual): the class is an `eqx.Module` subclass (across files);
        - ("traced", fn, cond): the function is traced and the condition (JSON, see
          `eqxlint.semantics.cond`) holds in its context;
        - ("reverse", fn): reverse-mode AD runs through the function;
        - ("rule", fn[, kinds]): the function runs inside a custom differentiation/batching rule
          (of one of `kinds`, e.g. ["jvp", "transpose"]);
        - ("custom", fn): the project function is given to `jax.custom_jvp`/`custom_vjp` (or
          an Equinox `filter_custom_*`): calling it runs its custom rules under AD;
        - ("consumes", callee, key): the project function draws from the key it receives at
          `key` (position or name), directly or through the functions it passes it to, or it
          is not the project's (assumed to consume it); a project class without an `__init__`
          of its own (a dataclass, a Module) only stores its arguments;
        - ("param_module", fn, params): some caller, anywhere in the project and traced or not,
          passes an `eqx.Module` instance to one of the function's parameters `params` (a list
          of names), directly, through parameters passed on unchanged, or as what a project
          function returns;
        - ("module_python_fields", qual): the class is an `eqx.Module` and it (or a project base)
          declares a field annotated as a Python value (int, str, Callable, ...) not marked static;
        - ("collective", fn): the function, or one it calls or traces (across the project),
          uses a named-axis collective (`lax.psum(x, "i")`, ...) or hands an `axis_name=` on;
        - ("not", c): the condition `c` (one of the above) does not hold. Unlike the others it
          is not monotone: true on one file, it may be false on the project (another file traces
          the function, passes the Module). That is safe because `finalize` decides every
          finding's conditions again on the whole project, and what holds on one file holds on
          every project that contains it. E.g. ("not", ("traced", fn, ["*"])): `fn` is never
          traced."""
        return all(self.holds(c) for c in conditions(requires))

    def holds(self, c) -> bool:
        kind = c[0]
        if kind == "module_class":
            return self.canonical(c[1]) in self.module_classes
        if kind == "traced":
            from ..semantics import cond as C

            return self.graph.holds(c[1], C.from_json(c[2]))
        if kind == "reverse":
            return self.graph.reverse(c[1])
        if kind == "rule":
            kinds = self.graph.rules(c[1])
            return bool(kinds & set(c[2])) if len(c) > 2 and c[2] else bool(kinds)
        if kind == "consumes":
            return self.consumes(c[1], c[2])
        if kind == "custom":
            g = self.graph
            return any(g.fns[t].custom for t in g.resolve(c[1]))
        if kind == "param_module":
            params = [c[2]] if isinstance(c[2], str) else c[2]
            return self.graph.passes_module(c[1], params)
        if kind == "module_python_fields":
            return self.python_fields(c[1]) is not None
        if kind == "collective":
            return self.graph.reaches_flag(c[1], "coll")
        if kind == "not":
            return not self.holds(tuple(c[1]))
        return True

    def consumes(self, callee: str, key, _depth: int = 0) -> bool:
        g = self.graph
        targets = g.resolve(callee)
        if not targets:
            canon = self.canonical(callee)
            cls, _, meth = canon.rpartition(".")
            cls = canon if canon in self.classes else self.canonical(cls) if meth == "__init__" else None
            if cls is not None and cls in self.classes and self._generated_init(cls):
                return False  # a project class with a generated `__init__` stores its arguments
            # not the project's (a library function, a method a project class inherits from a
            # library): assumed to draw from a key it takes, unless it only checks or stores it
            return SK.name_draws(meth or canon)
        for t in targets:
            fn = g.fns[t]
            name = g._param_at(fn, key, 0)
            if name is None:
                continue
            use = fn.fact.get("consumes", {}).get(name)
            if use is True:
                return True
            if isinstance(use, list) and _depth < 4:
                if any(self.consumes(r, k, _depth + 1) for r, k in use):
                    return True
        return False

    def _generated_init(self, qual: str, _seen=()) -> bool:
        """The class's `__init__` is generated (dataclass, NamedTuple, Module): no base outside
        the project brings one of its own."""
        if qual in _seen:
            return True
        for b in self.classes.get(qual, {}).get("bases", ()):
            cb = self.canonical(b)
            if cb in self.classes:
                if not self._generated_init(cb, _seen + (qual,)):
                    return False
            elif cb not in S.MODULE_BASES and cb not in _STORING_BASES and not cb.startswith("typing."):
                return False
        return True

    def python_fields(self, qual: str) -> Optional[list]:
        """The fields of a Module class (and its project bases) annotated as Python values and
        not static (collected as "py"), or None when it is not a Module or has none."""
        q = self.canonical(qual)
        if q in S.EQX_NN_PYTHON_FIELDS:
            return list(S.EQX_NN_PYTHON_FIELDS[q])
        if q not in self.module_classes:
            return None
        out: list = []
        seen = set()
        todo = [q]
        while todo:
            cur = todo.pop()
            if cur in seen or cur not in self.classes:
                continue
            seen.add(cur)
            c = self.classes[cur]
            out.extend(n for n in c.get("py", ()) if n not in out)
            todo.extend(self.canonical(b) for b in c.get("bases", []))
        return out or None

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
            if self._is_primitive_subclass(q):
                return True, set(), set()
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
        names: dict = {}
        for q, f in factories.items():
            names[q] = f.get("names", [])
            if f.get("params"):
                helpers[q] = {int(k): set(v) for k, v in f["params"].items()}

        def position(callee: str, key: str):
            if key.isdigit():
                return int(key)
            params = names.get(callee, [])
            return params.index(key) if key in params else None

        # Helpers that forward their parameter to another helper (chains: iterate).
        forwarding = [
            call
            for facts in self.facts.values()
            for call in (facts.get("primitives") or {}).get("helpers", [])
            if call.get("fn") and call.get("param_args")
        ]
        for _ in range(5):
            before = sum(len(v) for h in helpers.values() for v in h.values())
            for call in forwarding:
                callee = self.canonical(call["callee"])
                inner = helpers.get(callee)
                if inner:
                    outer = helpers.setdefault(self.canonical(call["fn"]), {})
                    for key, param in call["param_args"].items():
                        pos = position(callee, key)
                        if pos is not None:
                            outer.setdefault(int(param), set()).update(inner.get(pos, ()))
            if sum(len(v) for h in helpers.values() for v in h.values()) == before:
                break
        class_rules: dict = {}  # Primitive subclass -> kind -> [paths]: registered on `self`
        for path, facts in self.facts.items():
            p = facts.get("primitives")
            if not p:
                continue
            for reg in p["regs"]:
                if reg.get("on_self"):
                    rules = class_rules.setdefault(self.canonical(reg["qual"]), {})
                    for k in reg["kinds"]:
                        rules.setdefault(k, []).append(path)
                    rules.setdefault("_binds", []).extend(reg.get("binds", []))
                    continue
                prim = self.primitives.get(self.canonical(reg["qual"]))
                if prim is not None:
                    for k in reg["kinds"]:
                        prim.rules.setdefault(k, []).append(path)
                    prim.binds.update(self.canonical(b) for b in reg.get("binds", []))
            for call in p["helpers"]:
                callee = self.canonical(call["callee"])
                kinds_by_pos = helpers.get(callee)
                if not kinds_by_pos:
                    continue
                for key, qual in call["args"].items():
                    prim = self.primitives.get(self.canonical(qual))
                    pos = position(callee, key)
                    if prim is not None and pos is not None:
                        for k in kinds_by_pos.get(pos, ()):
                            prim.rules.setdefault(k, []).append(f"{call['callee']} (helper)")

        if class_rules:
            for prim in self.primitives.values():
                cls = prim.cls or (prim.via if prim.via and self._is_primitive_subclass(self.canonical(prim.via)) else None)
                for c in self._class_chain(self.canonical(cls)) if cls else ():
                    for k, where in class_rules.get(c, {}).items():
                        if k == "_binds":
                            prim.binds.update(self.canonical(b) for b in where)
                        else:
                            prim.rules.setdefault(k, []).extend(where)
        unresolved: set = set()  # `X.attr` bound or handed on, naming no known primitive
        for path, facts in self.facts.items():
            p = facts.get("primitives")
            if not p:
                continue
            for site in p.get("bind_sites", ()):
                prim = self.primitives.get(self.canonical(site["qual"]))
                if prim is not None:
                    prim.sites.append(site)
                else:
                    unresolved.add(self.canonical(site["qual"]))
            for q in p.get("uses", ()):
                prim = self.primitives.get(self.canonical(q))
                if prim is not None:
                    prim.used = True
                else:
                    unresolved.add(self.canonical(q))
        # A class-attribute primitive (`_PRIM: ClassVar = ...`) may be bound through `cls._PRIM`
        # in a base-class method, which names the base's attribute: bound somewhere unknown.
        owners: dict = {}  # primitive -> {(class, attribute)} holding it
        for alias, target in self.value_aliases.items():
            cls, _, attr = alias.rpartition(".")
            if cls in self.classes:
                owners.setdefault(self.canonical(target), set()).add((cls, attr))
        for q, prim in self.primitives.items():
            held = set(owners.get(q, ()))
            cls, _, attr = q.rpartition(".")
            if cls in self.classes:
                held.add((cls, attr))
            for cls, attr in held:
                # bound as `cls.<attr>` in a base-class method, or through a subclass
                if any(f"{c}.{attr}" in unresolved for c in self._class_chain(cls)[1:]):
                    prim.used = True
        sub_uses = {}
        for u in unresolved:
            x, _, attr = u.rpartition(".")
            if x in self.classes:
                for c in self._class_chain(x)[1:]:
                    sub_uses.setdefault((c, attr), True)
        if sub_uses:
            for q, prim in self.primitives.items():
                held = set(owners.get(q, ()))
                cls, _, attr = q.rpartition(".")
                if cls in self.classes:
                    held.add((cls, attr))
                if any(h in sub_uses for h in held):
                    prim.used = True
        for prim in self.primitives.values():
            # A factory that binds (or hands on) what it creates: its primitives are bound
            # somewhere unknown.
            todo, seen = [prim.via] if prim.via else [], set()
            while todo and not prim.used:
                q = self.canonical(todo.pop())
                if q in seen:
                    continue
                seen.add(q)
                f = factories.get(q) or {}
                prim.used = bool(f.get("bound"))
                todo.extend(f.get("returns", []))
        for alias, target in self.value_aliases.items():
            prim = self.primitives.get(self.canonical(target))
            if prim is not None and alias.rpartition(".")[0] in self.classes:
                prim.on_class = True
        for q, prim in self.primitives.items():
            if q.rpartition(".")[0] in self.classes:
                prim.on_class = True
            if prim.rules.get("lowering"):
                self.lowering_packages.add(_top(q))
        for top, kinds in self.dynamic_kinds.items():
            if "lowering" in kinds:
                self.lowering_packages.add(top)

    def lowers(self, prim) -> bool:
        """Does the primitive's own top-level package lower primitives to XLA at all? (An
        exporter such as jax2onnx never does; a monorepo may hold both kinds of package.)"""
        return _top(prim.qual) in self.lowering_packages

    def unbound(self, prim) -> bool:
        """The primitive is never bound in the project, nor handed on where it could be, and
        has no rule registered at all: a placeholder (a registry key, a name reserved for
        later), which no transformation ever meets."""
        # (A class attribute may get its rules and binds through `cls.<attr>` in a base class.)
        return not prim.sites and not prim.used and not prim.on_class and not any(prim.rules.values())

    def needs_rule(self, prim, kind: str) -> bool:
        """Can a transformation ever call the primitive's `kind` rule ("jvp", "batching")?
        JAX calls a JVP rule only when some operand's tangent is nonzero, and a batching rule
        only when some operand is batched. False only when every bind site in the project is
        known and shows operands that cannot carry one: none at all, or only static values
        (and, for a JVP, PRNG keys); unknown stays True."""
        if prim.used or not prim.sites:
            return True
        flag = "zt" if kind == "jvp" else "nb"
        return not all(site.get(flag) for site in prim.sites)

    def registered(self, prim, kind: str) -> Optional[bool]:
        """True/False, or None when a dynamic registration (in the primitive's own top-level
        package) makes it undecidable."""
        if prim.rules.get(kind):
            return True
        if prim.on_class and kind in self.dynamic_kinds.get(_top(prim.qual), ()):
            return None
        return False


# External bases whose subclasses get a generated `__init__` that stores its arguments.
_STORING_BASES = frozenset({"object", "abc.ABC", "flax.struct.PyTreeNode", "chex.dataclass", "equinox.Module"})


def _top(qual: str) -> str:
    return qual.split(".")[0]


def conditions(requires) -> tuple:
    """The condition tuples of a finding's `requires` (one condition or several)."""
    if not requires:
        return ()
    if isinstance(requires[0], str):
        return (tuple(requires),)
    return tuple(tuple(c) for c in requires)
