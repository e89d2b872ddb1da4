"""What is traced across the project: the call graph over every file's function summaries, and
each function's calling context as a fixed point.

A function's *context* is the union of the contexts it is traced in: which of its parameters hold
tracers, whether it runs under a jaxpr trace (staged), whether reverse-mode AD runs through it.
Conditions are monotone (`eqxlint.semantics.cond`), so deciding them on the union is exact.

Roots are the applications of transforms (`jax.jit(f)`, `@eqx.filter_jit`, `lax.scan(body, ...)`,
custom rules): a function given to a transform is traced wherever that happens. From a traced
function, tracing follows calls (through imports, re-exports, methods of instances and of `self`
with their overrides in subclasses, `functools.partial`), functions handed to other functions
(`tree_map`, parameters that are called, project wrappers that return `jax.jit(f)`), to a fixed
point. Each reached function remembers the first step that reached it, for messages.
"""

from __future__ import annotations

from typing import Optional

from ..semantics import cond as C
from ..semantics import names as S
from ..semantics import tracing as T

# Edge list layout in the facts (see `FunctionFacts`).
TO, KIND, ARGS, STAR, FNARGS, VIA, SKIP, ROW, LABEL, VIRTUAL, CLASSES = range(11)
MAX_RETURN_DEPTH = 4


class Ctx:
    __slots__ = ("params", "staged", "reverse", "why", "rwhy", "classes", "rules")

    def __init__(self):
        self.params: set = set()
        self.rules: set = set()  # kinds of custom rules ("jvp", "transpose", ...) it runs in
        self.classes: dict = {}  # parameter -> classes of the instances callers pass
        self.staged = False
        self.reverse = False
        self.why = None  # (caller ref or None, edge, path) of the first step that reached it
        self.rwhy = None  # the same for the first step that brought reverse-mode AD


class Fn:
    __slots__ = ("ref", "path", "fact", "edges", "ret", "positional", "by_name", "star", "kwstar", "owner", "cls", "custom", "rule")

    def __init__(self, ref: str, path: str, fact: dict):
        self.ref, self.path, self.fact = ref, path, fact
        self.edges = fact.get("edges", ())
        self.ret = C.from_json(fact["ret"]) if fact.get("ret") else C.FALSE
        params = fact.get("params", ())
        self.positional = [p["n"] for p in params if not p.get("kw") and not p.get("st")]
        self.by_name = {p["n"]: p for p in params if not p.get("st")}
        self.star = next((p["n"] for p in params if p.get("st") == "*"), None)
        self.kwstar = next((p["n"] for p in params if p.get("st") == "**"), None)
        self.owner = fact.get("owner")
        self.cls = fact.get("cls")
        self.custom = False
        self.rule = None


class CallGraph:
    def __init__(self, index):
        self.index = index
        self.fns: dict = {}
        self.by_module: dict = {}
        for path, facts in index.facts.items():
            for ref, fact in (facts.get("functions") or {}).items():
                if ref not in self.fns or not facts.get("test"):
                    self.fns[ref] = Fn(ref, path, fact)
        self.ctx: dict = {}  # ref -> Ctx
        self.bindings: dict = {}  # (owner ref, param) -> set of refs
        self.children: dict = {}  # owner ref -> nested function refs
        self.subclasses: dict = {}
        for f in self.fns.values():
            if f.owner:
                self.children.setdefault(f.owner, []).append(f.ref)
        for q, c in index.classes.items():
            for b in c.get("bases", ()):
                self.subclasses.setdefault(index.canonical(b), []).append(q)
        self._resolved: dict = {}
        self._returns: dict = {}
        self._work: list = []
        self._queued: set = set()
        self._solve()

    # ------------------------------------------------------------------ names
    def resolve(self, ref: str, virtual: bool = False, _seen: frozenset = frozenset()) -> list:
        """The project functions a callee reference denotes (none when it is not the project's)."""
        if ref is None:
            return []
        if ref.startswith("%"):
            if ref in _seen:
                return []
            owner, _, param = ref[1:].rpartition(":")
            param, _, meth = param.partition(".")
            out: list = []
            if not meth:
                for r in self.bindings.get((owner, param), ()):
                    out.extend(x for x in self.resolve(r, False, _seen | {ref}) if x not in out)
            c = self.ctx.get(owner)
            classes = set(c.classes.get(param, ())) if c is not None else set()
            # What any caller passes, traced or not (`loss(model, x)` in an eager training loop
            # tells what the differentiated `loss` receives).
            for cls in self.param_classes(owner, param):
                if not cls.startswith("%"):
                    classes |= self._classes(cls, None)
            for cls in sorted(classes):
                found = self._method(cls, meth or "__call__") + self._overrides(cls, meth or "__call__")
                out.extend(x for x in found if x not in out)
            return out
        key = (ref, virtual)
        hit = self._resolved.get(key)
        if hit is not None:
            return hit
        self._resolved[key] = []
        out = self._resolve(ref, virtual)
        self._resolved[key] = out
        return out

    def _resolve(self, ref: str, virtual: bool) -> list:
        if ref[:2] == "()":
            # the function a project function returns (a decorator's wrapper); "()deco|0=f":
            # returned by `deco(f)`, whose parameter then holds `f` (read by the wrapper)
            base, _, given = ref[2:].partition("|")
            out = []
            for t in self.resolve(base):
                for item in given.split(";") if given else ():
                    key, _, fref = item.partition("=")
                    name = self._param_at(self.fns[t], int(key) if key.isdigit() else key, 0)
                    if name is not None and fref not in self.bindings.setdefault((t, name), set()):
                        self.bindings[(t, name)].add(fref)
                        self._resolved.pop((f"%{t}:{name}", False), None)
                rf = self.fns[t].fact.get("ret_fn")
                if rf and not rf[1] and rf[0] != ref:
                    out.extend(x for x in self.resolve(rf[0]) if x not in out)
            return out
        if ref in self.fns:
            found = [ref]
            cls, _, meth = ref.rpartition(".")
            if virtual and cls in self.index.classes:
                found += self._overrides(cls, meth)
            return found
        canon = self.index.canonical(ref)
        if canon != ref and canon in self.fns:
            return [canon]
        cls, _, meth = canon.rpartition(".")
        if cls:
            cls = self.index.canonical(cls)
            if cls in self.index.classes:
                found = self._method(cls, meth)
                if virtual:
                    found += self._overrides(cls, meth)
                return found
        if canon in self.index.classes:
            return self._method(canon, "__init__")
        return []

    def _method(self, cls: str, meth: str, seen=None) -> list:
        seen = seen if seen is not None else set()
        if cls in seen:
            return []
        seen.add(cls)
        ref = f"{cls}.{meth}"
        if ref in self.fns:
            return [ref]
        for b in self.index.classes.get(cls, {}).get("bases", ()):
            found = self._method(self.index.canonical(b), meth, seen)
            if found:
                return found
        return []

    def _overrides(self, cls: str, meth: str) -> list:
        out = []
        todo = list(self.subclasses.get(cls, ()))
        seen = set()
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            if f"{c}.{meth}" in self.fns:
                out.append(f"{c}.{meth}")
            todo.extend(self.subclasses.get(c, ()))
        return out

    # ------------------------------------------------------------------ the fixed point
    def _reach(self, ref: str, params: set, staged: bool, reverse: bool, why, classes: Optional[dict] = None,
               rules: frozenset = frozenset()) -> None:
        c = self.ctx.get(ref)
        fn = self.fns.get(ref)
        if fn is not None and (fn.custom or fn.rule):
            reverse = False  # reverse mode uses the custom rule, not the body
        if fn is not None and fn.custom:
            rules = frozenset()  # a custom-derivative function called in a rule evaluates the primal
        if c is None:
            c = self.ctx[ref] = Ctx()
            c.why = why
            changed = True
        else:
            changed = False
        if not params <= c.params:
            c.params |= params
            changed = True
        if staged and not c.staged:
            c.staged = changed = True
        if reverse and not c.reverse:
            c.reverse = changed = True
            c.rwhy = why
        if not rules <= c.rules:
            c.rules |= rules
            changed = True
        if classes:
            for p, cs in classes.items():
                have = c.classes.setdefault(p, set())
                if not cs <= have:
                    have |= cs
                    changed = True
        if changed:
            self._queue(ref)
            for child in self.children.get(ref, ()):
                if child in self.ctx:
                    self._queue(child)  # closures read the enclosing context

    def _queue(self, ref: str) -> None:
        if ref not in self._queued:
            self._queued.add(ref)
            self._work.append(ref)

    def _solve(self) -> None:
        # Custom-derivative functions and rules first: reverse mode stops at them.
        for f in self.fns.values():
            for e in f.edges:
                if e[KIND] == "custom":
                    for r in self.resolve(e[TO]):
                        self.fns[r].custom = True
                elif e[KIND] == "rule":
                    for r in self.resolve(e[TO]):
                        self.fns[r].rule = e[LABEL]
        # Roots: every function given to a transform, wherever that happens.
        for f in list(self.fns.values()):
            for e in f.edges:
                if e[KIND] in ("wrap", "rule"):
                    self._edge(f, e, None)
        while self._work:
            ref = self._work.pop()
            self._queued.discard(ref)
            f = self.fns.get(ref)
            if f is None:
                continue
            c = self.ctx[ref]
            for e in f.edges:
                self._edge(f, e, c)

    def _edge(self, f: Fn, e: list, c: Optional[Ctx]) -> None:
        kind = e[KIND]
        if kind in ("host", "custom", "custom_call"):
            return
        if c is None and kind not in ("wrap", "rule"):
            return
        if e[FNARGS]:
            for key, ref, _via in e[FNARGS]:
                for target in self.resolve(e[TO]):
                    tf = self.fns[target]
                    name = self._param_at(tf, key, 0)
                    if name is not None:
                        b = self.bindings.setdefault((target, name), set())
                        if ref not in b:
                            b.add(ref)
                            self._resolved.pop((f"%{target}:{name}", False), None)
                            if target in self.ctx:
                                self._queue(target)
                                for child in self.children.get(target, ()):
                                    if child in self.ctx:
                                        self._queue(child)
        targets = self.resolve(e[TO], bool(e[VIRTUAL]))
        if not targets:
            return
        via = e[VIA]
        staged = (c.staged if c is not None else False) or any(T.staged(v) for v in via)
        reverse = (c.reverse if c is not None else False) or any(T.reverse(v) for v in via)
        if reverse and any(v.get("t") in S.IMPLICIT_DIFF for v in via):
            reverse = False  # `lax.custom_root`/`custom_linear_solve` differentiate implicitly
        custom = any(v.get("t") in S.CUSTOM_JVP or v.get("t") in S.CUSTOM_VJP for v in via)
        if custom:
            reverse = False  # called through `jax.custom_vjp(f)`: reverse mode uses the rule
        why = (f.ref, e, f.path)
        for target in targets:
            tf = self.fns[target]
            params: set = set()
            skip = e[SKIP]
            if kind == "rule":
                self._reach(target, params, False, False, why, rules=frozenset({e[LABEL]}))
                continue
            skip_kw = frozenset(k for k, _ in e[ARGS] if isinstance(k, str))
            for v in via:
                params |= T.traced_params(v, tf.fact.get("params", ()), skip, skip_kw)
            if c is not None and kind in ("call", "wrap"):
                contexts = self._contexts(f.ref)
                for key, cj in e[ARGS]:
                    if C.evaluate(C.from_json(cj), contexts[0][0], contexts[0][1], self._returner(contexts), _outer=contexts):
                        if key == "**":
                            # `f(x, **kw)`: the dict fills `**kwargs` and the parameters the call
                            # needs and does not pass; a defaulted one may keep its default.
                            given = {k for k, _ in e[ARGS]}
                            for i, p in enumerate(tf.fact.get("params", ())):
                                n = p["n"]
                                if p.get("st") or p.get("d") or p.get("o") or n in given:
                                    continue
                                if p.get("kw") or i >= skip and i not in given:
                                    params.add(n)
                            if tf.kwstar:
                                params.add(tf.kwstar)
                            continue
                        name = self._param_at(tf, key, 0)
                        if name is not None:
                            params.add(name)
                if e[STAR] and C.evaluate(C.from_json(e[STAR]), contexts[0][0], contexts[0][1], self._returner(contexts), _outer=contexts):
                    used = {k for k, _ in e[ARGS] if isinstance(k, int)}
                    params |= {n for i, n in enumerate(tf.positional) if i >= skip and i not in used}
                    if tf.star:
                        params.add(tf.star)
            classes = None
            if len(e) > CLASSES and e[CLASSES]:
                classes = {}
                for key, cls in e[CLASSES]:
                    name = self._param_at(tf, key, 0)
                    if name is not None:
                        found = self._classes(cls, f)
                        if found:
                            classes.setdefault(name, set()).update(found)
            # Code run by a rule runs in it: called, traced (`lax.cond`, `jax.vjp`) or handed on.
            rules = frozenset(c.rules) if c is not None and kind in ("call", "wrap", "arg") and not custom else frozenset()
            self._reach(target, params, staged, reverse, why, classes, rules)

    def _classes(self, cls: str, caller: Fn, _depth: int = 0) -> set:
        """The project classes an instance argument may have: a class reference, or "()f" for
        the instances `f` returns, or a parameter of the caller that holds instances."""
        if cls.startswith("()"):
            if _depth > 4:
                return set()
            out: set = set()
            for t in self.resolve(cls[2:]):
                for c in self.fns[t].fact.get("flags", {}).get("ret_cls", ()):
                    out |= self._classes(c, self.fns[t], _depth + 1)
            canon = self.index.canonical(cls[2:])
            if canon in self.index.classes:
                out.add(canon)
            return out
        canon = self.index.canonical(cls)
        return {canon} if canon in self.index.classes or canon in self.fns or f"{canon}.__call__" in self.fns else set()

    @staticmethod
    def _param_at(fn: Fn, key, skip: int) -> Optional[str]:
        if isinstance(key, int):
            if 0 <= key < len(fn.positional):
                return fn.positional[key]
            return fn.star
        if key in fn.by_name:
            return key
        return fn.kwstar

    # ------------------------------------------------------------------ conditions
    def _contexts(self, ref: str) -> list:
        """[(params, staged)] of the function and its enclosing functions, innermost first."""
        out = []
        cur = ref
        while cur is not None:
            c = self.ctx.get(cur)
            out.append((c.params if c is not None else set(), c.staged if c is not None else False))
            f = self.fns.get(cur)
            cur = f.owner if f is not None else None
        return out

    def _returner(self, contexts, depth: int = 0):
        def returns(callee: str, args: dict, staged: bool) -> bool:
            return self._returns_traced(callee, args, staged, depth)
        return returns

    def _returns_traced(self, callee: str, args: dict, staged: bool, depth: int) -> bool:
        if depth >= MAX_RETURN_DEPTH:
            return False
        callee, _, item = callee.partition("@")  # "f@i": element `i` of what `f` returns
        targets = self.resolve(callee)
        if not targets:
            canon = self.index.canonical(callee)
            if canon.rsplit(".", 1)[0] in self.index.classes or canon in self.index.classes:
                return any(args.values())  # an instance built from traced values holds them
            return False
        for t in targets:
            fn = self.fns[t]
            params = frozenset(n for k, v in args.items() if v for n in [self._param_at(fn, k, 0)] if n)
            ret = fn.ret
            if item:
                items = fn.fact.get("flags", {}).get("ri")
                if items and int(item) < len(items):
                    ret = C.from_json(items[int(item)])
            key = (t, params, staged, item)
            hit = self._returns.get(key)
            if hit is None:
                self._returns[key] = False  # recursion
                hit = C.evaluate(ret, set(params), staged, self._returner(None, depth + 1))
                self._returns[key] = hit
            if hit:
                return True
        return False

    def holds(self, ref: str, cond: frozenset) -> bool:
        """Is `ref` traced (reached from some trace site) with `cond` true in its context?"""
        c = self.ctx.get(ref)
        if c is None:
            return False
        if C.is_true(cond):
            return True
        if not cond:
            return False
        contexts = self._contexts(ref)
        return C.evaluate(cond, contexts[0][0], contexts[0][1], self._returner(contexts), _outer=contexts)

    # ------------------------------------------------------------------ classes passed in
    def param_classes(self, ref: str, param: str) -> set:
        """What callers anywhere in the project (traced or not) pass to a parameter: class
        references, "()f" (what `f` returns) and "%g:p" (what `g`'s callers pass to `g`'s own
        parameter `p`, forwarded as it is). Unlike `Ctx.classes`, which follows traced calls
        only, this is every call's."""
        table = self.__dict__.get("_passed")
        if table is None:
            table = self._passed = {}
            for f in self.fns.values():
                for e in f.edges:
                    if e[KIND] != "call" or len(e) <= CLASSES or not e[CLASSES]:
                        continue
                    for target in self.resolve(e[TO], bool(e[VIRTUAL])):
                        tf = self.fns[target]
                        for key, cls in e[CLASSES]:
                            name = self._param_at(tf, key, 0)
                            if name is not None:
                                table.setdefault((target, name), set()).add(cls)
        return table.get((ref, param), set())

    def passes_module(self, ref: str, params) -> bool:
        """Does some caller pass an `eqx.Module` instance (a project Module class, an
        `eqx.nn` layer) to one of the function's `params`? Followed through parameters passed
        on unchanged and through what project functions return."""
        todo = [(ref, p) for p in params]
        seen: set = set()
        while todo:
            key = todo.pop()
            if key in seen or len(seen) > 200:
                continue
            seen.add(key)
            for cls in self.param_classes(*key):
                if cls.startswith("%"):
                    owner, _, param = cls[1:].rpartition(":")
                    todo.append((owner, param))
                elif self._is_module_class(cls, 0):
                    return True
        return False

    def reaches_flag(self, ref: str, flag: str, limit: int = 500) -> bool:
        """Does the function, or a project function it calls, traces or hands on (directly or
        not), carry `flag` in its summary (e.g. "coll": uses a named-axis collective)?"""
        todo = list(self.resolve(ref))
        seen: set = set()
        while todo and len(seen) < limit:
            r = todo.pop()
            if r in seen:
                continue
            seen.add(r)
            f = self.fns.get(r)
            if f is None:
                continue
            if f.fact.get("flags", {}).get(flag):
                return True
            for e in f.edges:
                if e[KIND] in ("call", "wrap", "arg"):
                    todo.extend(self.resolve(e[TO], bool(e[VIRTUAL])))
        return False

    def _is_module_class(self, cls: str, depth: int) -> bool:
        if cls.startswith("()"):
            if depth > MAX_RETURN_DEPTH:
                return False
            for t in self.resolve(cls[2:]):
                for c in self.fns[t].fact.get("flags", {}).get("ret_cls", ()):
                    if self._is_module_class(c, depth + 1):
                        return True
            cls = cls[2:]
        canon = self.index.canonical(cls)
        return canon in self.index.module_classes or canon.startswith(S.EQX_NN_PREFIX) or canon in S.MODULE_BASES

    def rules(self, ref: str) -> set:
        """The kinds of custom rules (JVP, VJP, transpose, batching, ...) the function runs in."""
        c = self.ctx.get(ref)
        return c.rules if c is not None else set()

    def reverse(self, ref: str) -> bool:
        c = self.ctx.get(ref)
        return c is not None and c.reverse

    # ------------------------------------------------------------------ explanations
    def chain(self, ref: str, limit: int = 6, reverse: bool = False) -> list:
        """The steps that reached `ref`, innermost first: dicts with `function`, `path`, `row`,
        `how` ("called by", "jitted by `jax.jit`", ...), `by` (the caller) and `transform` (the
        transform's short name, "eqx.filter_jit", on transform steps; else None). `reverse`: the
        steps that brought reverse-mode AD to it, where they differ."""
        out = []
        seen = set()
        cur = ref
        while cur is not None and cur not in seen and len(out) < limit:
            seen.add(cur)
            c = self.ctx.get(cur)
            if c is None or c.why is None:
                break
            caller, e, path = c.rwhy if reverse and c.rwhy is not None else c.why
            kind = e[KIND]
            caller_fn = self.fns.get(caller)
            step = {"function": _short_ref(cur), "path": path, "row": e[ROW],
                    "by": None if self._is_module(caller) else _short_ref(caller), "transform": None}
            if kind == "rule":
                step["how"] = "registered as a custom differentiation rule"
                out.append(step)
                break
            if kind == "wrap" or e[VIA]:
                qn = e[VIA][-1]["t"] if e[VIA] else ""
                step["how"] = T.describe(qn)
                step["transform"] = T.short(qn) if qn else None
                if kind == "wrap":
                    out.append(step)
                    # A transform applied inside a traced function: keep explaining the caller.
                    if caller_fn is not None and caller in self.ctx and caller != cur and not self._is_module(caller):
                        cur = caller
                        continue
                    break
            else:
                if kind == "call" and e[LABEL] not in _TREE_MAP_LABELS:
                    step["how"] = "called by"
                else:  # handed to an external function, or to a tree map that calls it on leaves
                    step["how"] = f"passed to `{e[LABEL]}` by"
            out.append(step)
            cur = caller if not self._is_module(caller) else None
        return out

    def _is_module(self, ref: str) -> bool:
        f = self.fns.get(ref)
        return f is not None and bool(f.fact.get("module"))


_TREE_MAP_LABELS = frozenset(T.short(q) for q in S.TREE_MAPS)


def _short_ref(ref: Optional[str]) -> Optional[str]:
    if ref is None:
        return None
    ref = ref.replace(".<locals>.", ".")
    parts = ref.split(".")
    # pkg.mod.Class.method -> Class.method; pkg.mod.func -> func
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return ".".join(parts[-2:])
    return parts[-1]


def describe_chain(steps: list) -> str:
    """One line: "`kl_term` is traced: called by `loss_fn` (model.py:31), differentiated by
    `eqx.filter_value_and_grad` in `step` (train.py:13), jitted by `eqx.filter_jit` (train.py:11)"."""
    if not steps:
        return "traced code"
    parts = []
    for s in steps:
        where = f"{_base(s['path'])}:{s['row']}"
        how = s["how"]
        if how.endswith(" by") and s.get("by"):
            parts.append(f"{how} `{s['by']}` ({where})")
        elif s.get("by") and how not in ("called by",):
            parts.append(f"{how} in `{s['by']}` ({where})")
        else:
            parts.append(f"{how} ({where})")
    return f"`{steps[0]['function']}` is traced: " + ", ".join(parts)


def _base(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]
