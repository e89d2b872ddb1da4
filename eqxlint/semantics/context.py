"""The per-file semantic context every rule shares.

Built once per file from the walker's event list (no second traversal): import aliases, a scope
tree (module, classes, functions, lambdas), the transforms and rule registrations applied to each
function in this file (`Scope.sites`), and which classes are Equinox Modules. Whether code is
traced is the project call graph's answer (`traced_requirement`, `Rule.report_traced`).
"""

from __future__ import annotations

import builtins
from typing import Iterable, Optional

import libcst as cst

from ..syntax.nodes import dotted as dotted
from ..syntax.positions import LocalPositions
from . import names as S

_BUILTINS = frozenset(dir(builtins))


class TraceSite:
    """A transform applied to a function in this file, by decorator or call, or its registration
    as a custom differentiation/primitive rule."""

    __slots__ = ("kind", "qualname", "node")

    def __init__(self, kind: str, qualname: str, node):
        self.kind = kind  # "decorator" | "call" | "rule"
        self.qualname = qualname
        self.node = node  # the Decorator / Call / Assign node (for kwargs such as static_argnums)

    def keyword(self, name: str) -> Optional[cst.BaseExpression]:
        call = self.node
        if isinstance(call, cst.Decorator):
            call = call.decorator
        if isinstance(call, cst.Call):
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value == name:
                    return arg.value
        return None


class Scope:
    __slots__ = (
        "node", "kind", "name", "parent", "cls", "children", "defs", "calls",
        "sites", "params", "info", "ref", "_lambdas",
    )

    def __init__(self, node, kind: str, name: Optional[str], parent: Optional["Scope"]):
        self.node = node
        self.kind = kind  # "module" | "class" | "function" | "lambda"
        self.name = name
        self.parent = parent
        # The class a function is a method of.
        self.cls: Optional[Scope] = parent if parent is not None and parent.kind == "class" else None
        self.children: list[Scope] = []
        self.defs: dict[str, list[Scope]] = {}
        self.calls: list[cst.Call] = []
        # The transforms and rule registrations applied to this function in this file (what
        # traces it is the project's call graph: `ctx.traced_requirement`, `report_traced`).
        self.sites: list[TraceSite] = []
        self.params: tuple[str, ...] = ()
        self.info: dict = {}  # per-rule scratch space
        # The function's (class's) name across the project: `pkg.mod.f`, `pkg.mod.C.m`,
        # `pkg.mod.f.<locals>.g`, `pkg.mod.f.<lambda2>` (see `FileContext._push`).
        self.ref: str = ""
        self._lambdas = 0

    @property
    def function(self) -> Optional["Scope"]:
        """The nearest enclosing function or lambda scope (self included)."""
        s: Optional[Scope] = self
        while s is not None and s.kind not in ("function", "lambda"):
            s = s.parent
        return s

    def lookup_def(self, name: str) -> list["Scope"]:
        """Function/class definitions visible under `name` from this scope (Python's rules:
        class bodies are not enclosing scopes for their methods)."""
        s: Optional[Scope] = self
        first = True
        while s is not None:
            if s.kind != "class" or first:
                found = s.defs.get(name)
                if found:
                    return found
            first = False
            s = s.parent
        return []

    def __repr__(self):  # pragma: no cover
        return f"<Scope {self.kind} {self.name}>"


def _param_names(params: cst.Parameters) -> tuple[str, ...]:
    names = [p.name.value for p in params.posonly_params]
    names += [p.name.value for p in params.params]
    if isinstance(params.star_arg, cst.Param):
        names.append(params.star_arg.name.value)
    names += [p.name.value for p in params.kwonly_params]
    if params.star_kwarg is not None:
        names.append(params.star_kwarg.name.value)
    return tuple(names)


def canonical(qualname: str) -> str:
    parts = qualname.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        repl = S.CANONICAL_PREFIXES.get(prefix)
        if repl is not None:
            qualname = ".".join([repl] + parts[i:])
            break
    return S.CANONICAL_NAMES.get(qualname, qualname)


CONTEXT_TYPES = frozenset(
    {
        cst.Module, cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.Call, cst.Import,
        cst.ImportFrom, cst.Assign,
    }
)
SCOPE_TYPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


class FileContext:
    """Semantic facts about one file, shared by all rules."""

    def __init__(
        self,
        module: cst.Module,
        source: str,
        path: str,
        module_name: str,
        *,
        is_package: bool = False,
        transforms: Optional[dict] = None,
        solvers: frozenset = S.SOLVERS,
        known_module_classes: Iterable[str] = (),
        options: Optional[dict] = None,
    ):
        self.module = module
        self.source = source
        self.path = path
        self.module_name = module_name
        self.is_package = is_package
        self.transforms = transforms if transforms is not None else S.TRANSFORMS
        self.solvers = solvers
        self.options = options or {}
        self.aliases: dict[str, str] = {}
        self.raw_aliases: dict[str, str] = {}  # as written, before canonicalisation
        self._qn_cache: dict = {}
        self.module_scope = Scope(module, "module", None, None)
        self.module_scope.ref = module_name
        self.refs: dict = {}  # ref -> Scope, for the functions and classes of this file
        self._values = None
        self.scope_of: dict[int, Scope] = {}
        self.scopes: list[Scope] = []
        self.calls: list[tuple[cst.Call, Scope]] = []
        self.assigns: list[tuple[cst.Assign, Scope]] = []
        self.classes: dict[str, Scope] = {}  # module-level and nested classes by name
        self.external_module_classes = set(known_module_classes)
        self.module_classes: set[int] = set()  # id(ClassDef) of Module classes
        self.unresolved_bases: dict[int, list[str]] = {}
        self._lines: Optional[list[str]] = None
        # Replay state, maintained by the engine while rules run.
        self.scope: Scope = self.module_scope
        self.stack: list[cst.CSTNode] = []
        self._positions = None
        self._ws_positions = None
        self.diagnostics: list = []
        self.facts: dict = {}

    # ------------------------------------------------------------------ building
    def release(self) -> None:
        """Drop everything once the file is done. The context and its scopes refer to each
        other (and the context's `report` closure to the context), so without this the whole
        syntax tree would stay alive until the next cyclic garbage collection, which would then
        have to traverse it."""
        if self._values is not None:
            self._values.release()
        for scope in self.scopes:
            scope.parent = scope.cls = None
            scope.children, scope.defs, scope.sites, scope.info = [], {}, [], {}
        self.__dict__.clear()

    def build(self, events: list) -> None:
        cur = self.module_scope
        stack = [cur]
        for node, leave in events:
            tp = type(node)
            if leave:
                if tp in (cst.FunctionDef, cst.Lambda, cst.ClassDef):
                    stack.pop()
                    cur = stack[-1]
                continue
            if tp is cst.Call:
                self.calls.append((node, cur))
                cur.calls.append(node)
            elif tp is cst.FunctionDef:
                s = Scope(node, "function", node.name.value, cur)
                s.params = _param_names(node.params)
                cur.defs.setdefault(s.name, []).append(s)
                self._push(s, cur)
                stack.append(s)
                cur = s
            elif tp is cst.Lambda:
                s = Scope(node, "lambda", None, cur)
                s.params = _param_names(node.params)
                self._push(s, cur)
                stack.append(s)
                cur = s
            elif tp is cst.ClassDef:
                s = Scope(node, "class", node.name.value, cur)
                cur.defs.setdefault(s.name, []).append(s)
                self.classes.setdefault(s.name, s)
                self._push(s, cur)
                stack.append(s)
                cur = s
            elif tp is cst.Import:
                self._add_import(node)
            elif tp is cst.ImportFrom:
                self._add_import_from(node)
            elif tp is cst.Assign:
                self.assigns.append((node, cur))
        self._compute_module_classes()
        self._compute_sites()

    def _push(self, s: Scope, parent: Scope) -> None:
        base = parent.ref
        if s.kind == "lambda":
            parent._lambdas += 1
            name = f"<lambda{parent._lambdas}>"
        else:
            name = s.name
        if parent.kind == "function" or parent.kind == "lambda":
            base = f"{base}.<locals>"
        ref = f"{base}.{name}" if base else name
        if ref in self.refs:
            n = 2
            while f"{ref}#{n}" in self.refs:
                n += 1
            ref = f"{ref}#{n}"
        s.ref = ref
        self.refs[ref] = s
        parent.children.append(s)
        self.scope_of[id(s.node)] = s
        self.scopes.append(s)

    def _add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = canonical(full)
                self.raw_aliases[alias.asname.name.value] = full
            else:
                top = full.split(".")[0]
                self.aliases[top] = top
                self.raw_aliases[top] = top

    def _resolve_relative(self, node: cst.ImportFrom) -> Optional[str]:
        mod = dotted(node.module) if node.module is not None else None
        level = len(node.relative)
        if level == 0:
            return mod
        parts = self.module_name.split(".") if self.module_name else []
        if not self.is_package:
            parts = parts[:-1]
        if level > 1:
            parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
        base = ".".join(parts)
        if mod:
            return f"{base}.{mod}" if base else mod
        return base or None

    def _add_import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        base = self._resolve_relative(node)
        if base is None:
            return
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            name = alias.name.value
            bound = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                bound = alias.asname.name.value
            self.aliases[bound] = canonical(f"{base}.{name}")
            self.raw_aliases[bound] = f"{base}.{name}"

    # ------------------------------------------------------------------ names
    def qualname(self, expr) -> Optional[str]:
        """Canonical qualified name of a Name/Attribute chain, through import aliases.
        Module-level definitions resolve to `<this module>.<name>`; builtins to their name.
        Memoised per node: every rule asks about the same calls."""
        key = id(expr)
        cache = self._qn_cache
        if key in cache:
            return cache[key]
        out = cache[key] = self._qualname(expr)
        return out

    def _qualname(self, expr) -> Optional[str]:
        parts = []
        while isinstance(expr, cst.Attribute):
            parts.append(expr.attr.value)
            expr = expr.value
        if not isinstance(expr, cst.Name):
            return None
        head = expr.value
        base = self.aliases.get(head)
        if base is None:
            if head in self.module_scope.defs:
                base = f"{self.module_name}.{head}" if self.module_name else head
            elif head in _BUILTINS:
                base = head
            else:
                return None
        if parts:
            return canonical(base + "." + ".".join(reversed(parts)))
        return base

    def imports_module(self, prefix: str) -> bool:
        return any(v == prefix or v.startswith(prefix + ".") for v in self.aliases.values())

    def alias_for(self, qualname: str) -> Optional[str]:
        """The local name under which a module is imported as itself (`equinox` -> `eqx`);
        `from jax._src import api` is not an alias of `jax` even though its names are."""
        for local, full in self.raw_aliases.items():
            if full == qualname:
                return local
        return None

    def spell(self, qualname: str) -> str:
        """How this file writes `qualname`, through its own imports: `jax.random.split` is
        `jr.split` under `import jax.random as jr`, `random.split` under `from jax import
        random`, `jax.random.split` under `import jax` (and when nothing imported it)."""
        best = None
        for local, full in self.aliases.items():
            if full == qualname:
                return local
            if qualname.startswith(full + ".") and (best is None or len(full) > len(best[1])):
                best = (local, full)
        if best is None:
            return qualname
        return best[0] + qualname[len(best[1]):]

    def resolve_functions(self, expr, scope: Scope) -> list[Scope]:
        """Scopes of the functions an expression passed as a callable refers to."""
        if isinstance(expr, cst.Lambda):
            s = self.scope_of.get(id(expr))
            return [s] if s is not None else []
        if isinstance(expr, cst.Name):
            return [d for d in scope.lookup_def(expr.value) if d.kind == "function"]
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            owner = expr.value.value
            fn = scope.function
            cls = fn.cls if fn is not None else None
            if owner in ("self", "cls") and cls is not None:
                return [d for d in cls.defs.get(expr.attr.value, []) if d.kind == "function"]
            klass = self.classes.get(owner)
            if klass is not None:
                return [d for d in klass.defs.get(expr.attr.value, []) if d.kind == "function"]
            return []
        if isinstance(expr, cst.Call) and expr.args:
            qn = self.qualname(expr.func)
            if qn in ("functools.partial", "partial"):
                return self.resolve_functions(expr.args[0].value, scope)
        return []

    def function_args(self, call: cst.Call, spec: tuple) -> list[cst.BaseExpression]:
        """Arguments of `call` at the (position, keyword) pairs of a transform spec; a list or
        tuple literal (lax.switch branches) contributes its elements."""
        out = []
        positional = [a for a in call.args if a.keyword is None and not a.star]
        for pos, kw in spec:
            val = None
            if pos < len(positional):
                val = positional[pos].value
            else:
                for a in call.args:
                    if a.keyword is not None and a.keyword.value == kw:
                        val = a.value
            if val is None:
                continue
            if isinstance(val, (cst.List, cst.Tuple)):
                out.extend(e.value for e in val.elements if isinstance(e, cst.Element))
            else:
                out.append(val)
        return out

    def _compute_sites(self) -> None:
        """`Scope.sites`: the transforms and rule registrations this file applies to each of its
        functions (decorators, calls, rule tables). No propagation: whether a function is traced
        is the project call graph's answer."""
        def mark(scope: Scope, site: TraceSite) -> None:
            scope.sites.append(site)

        transforms = self.transforms
        # Decorators.
        for scope in self.scopes:
            if scope.kind != "function":
                continue
            for dec in scope.node.decorators:
                expr = dec.decorator
                if isinstance(expr, cst.Call):
                    qn = self.qualname(expr.func)
                    if qn in ("functools.partial", "partial") and expr.args:
                        inner = self.qualname(expr.args[0].value)
                        if inner in transforms:
                            mark(scope, TraceSite("decorator", inner, dec))
                        elif inner in S.EQXI_RULE_DECORATORS:
                            mark(scope, TraceSite("rule", inner, dec))
                    elif qn in transforms:
                        mark(scope, TraceSite("decorator", qn, dec))
                    elif qn in S.EQXI_RULE_DECORATORS:  # @eqxi.filter_primitive_jvp(...)
                        mark(scope, TraceSite("rule", qn, dec))
                    continue
                qn = self.qualname(expr)
                if qn in transforms:
                    mark(scope, TraceSite("decorator", qn, dec))
                elif qn in S.EQXI_RULE_DECORATORS:
                    mark(scope, TraceSite("rule", qn, dec))
                elif isinstance(expr, cst.Attribute) and expr.attr.value in S.CUSTOM_RULE_METHODS:
                    mark(scope, TraceSite("rule", expr.attr.value, dec))
        # Calls.
        for call, scope in self.calls:
            func = call.func
            qn = self.qualname(func)
            if qn is not None:
                spec = transforms.get(qn)
                if spec is not None:
                    for arg in self.function_args(call, spec):
                        for target in self.resolve_functions(arg, scope):
                            mark(target, TraceSite("call", qn, call))
                    continue
                if qn in S.HOST_CALLBACKS:
                    continue
                rule = S.RULE_FUNCTION_ARGS.get(qn)
                if rule is not None:
                    _, sl = rule
                    for arg in [a for a in call.args if a.keyword is None][sl]:
                        for target in self.resolve_functions(arg.value, scope):
                            mark(target, TraceSite("rule", qn, call))
                    continue
                if qn in S.EQXI_RULE_DECORATORS and call.args:
                    for target in self.resolve_functions(call.args[0].value, scope):
                        mark(target, TraceSite("rule", qn, call))
                    continue
            if isinstance(func, cst.Attribute) and func.attr.value in S.CUSTOM_RULE_METHODS:
                for arg in (a for a in call.args if a.keyword is None and not a.star):
                    for target in self.resolve_functions(arg.value, scope):
                        mark(target, TraceSite("rule", func.attr.value, call))
        # Assignments into rule tables: ad.primitive_jvps[p] = rule.
        for assign, scope in self.assigns:
            for target in assign.targets:
                t = target.target
                if isinstance(t, cst.Subscript):
                    kind = S.REGISTRATION_TABLES.get(self.qualname(t.value) or "")
                    if kind is not None:
                        for fn in self._rule_value_functions(assign.value, scope):
                            mark(fn, TraceSite("rule", kind, assign))

    def _rule_value_functions(self, expr, scope: Scope) -> list[Scope]:
        fns = self.resolve_functions(expr, scope)
        if fns:
            return fns
        if isinstance(expr, cst.Call):
            # eqxi.filter_primitive_jvp(f), partial(f, ...), wrappers(f)
            out = []
            for arg in expr.args:
                out.extend(self.resolve_functions(arg.value, scope))
            return out
        return []

    # ------------------------------------------------------------------ Modules
    def _compute_module_classes(self) -> None:
        changed = True
        infos = [s for s in self.scopes if s.kind == "class"]
        bases_of: dict[int, list] = {}
        for s in infos:
            quals = []
            for b in s.node.bases:
                if b.keyword is not None:
                    continue
                val = b.value
                if isinstance(val, cst.Subscript):  # Generic[...], Base[T]
                    val = val.value
                quals.append((val, self.qualname(val)))
            bases_of[id(s.node)] = quals
        while changed:
            changed = False
            for s in infos:
                key = id(s.node)
                if key in self.module_classes:
                    continue
                for val, qn in bases_of[key]:
                    if self._is_module_base(val, qn, s):
                        self.module_classes.add(key)
                        changed = True
                        break
        for s in infos:
            key = id(s.node)
            if key not in self.module_classes:
                unresolved = [
                    qn for _, qn in bases_of[key]
                    if qn and not qn.startswith(("jax.", "equinox.", "typing.", "abc.", "builtins"))
                    and qn not in _BUILTINS and "." in qn
                ]
                if unresolved:
                    self.unresolved_bases[key] = unresolved

    def _is_module_base(self, val, qn: Optional[str], scope: Scope) -> bool:
        if qn is not None:
            if qn in S.MODULE_BASES or qn.startswith(S.EQX_NN_PREFIX):
                return True
            if qn in self.external_module_classes:
                return True
        if isinstance(val, cst.Name):
            for d in scope.parent.lookup_def(val.value) if scope.parent else []:
                if d.kind == "class" and id(d.node) in self.module_classes:
                    return True
        return False

    def traced_requirement(self, cond=None, scope: Optional[Scope] = None) -> Optional[tuple]:
        """The condition a finding in traced code carries: the enclosing function (of `scope`,
        default the current one) is traced, and `cond` (a tracedness condition, default always)
        holds in its context. None at module level, which JAX never traces."""
        from . import cond as C

        fn = (scope or self.scope).function
        if fn is None:
            return None
        c = C.TRUE if cond is None else cond
        return ("traced", fn.ref or "<module>", C.to_json(c))

    def class_by_ref(self, ref: str) -> Optional[Scope]:
        """The class of this file that `ref` names (`pkg.mod.C`), if any."""
        s = self.refs.get(ref)
        return s if s is not None and s.kind == "class" else None

    @property
    def values(self):
        """The value analysis of this file (`eqxlint.semantics.values.FileValues`), computed on
        first use: what each expression holds, and each function's summary."""
        if self._values is None:
            from .values import FileValues

            self._values = FileValues(self)
            self._values.run()
        return self._values

    def is_module_class(self, scope: Scope) -> bool:
        return id(scope.node) in self.module_classes

    # ------------------------------------------------------------------ replay helpers
    @property
    def function(self) -> Optional[Scope]:
        return self.scope.function

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.source.splitlines()
        return self._lines

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def position(self, node: cst.CSTNode, hint: Optional[cst.CSTNode] = None):
        """(row, col, end_row, end_col), 1-based rows and 0-based columns: exactly LibCST's
        PositionProvider range, computed only for the top-level statement that holds the node
        (`hint`: a node known to be near it; during replay the current node is used)."""
        if self._positions is None:
            self._positions = LocalPositions(self, inclusive=False)
        if hint is None and self.stack:
            hint = self.stack[-1]
        return self._positions.get(node, hint)

    def whitespace_range(self, node: cst.CSTNode, hint: Optional[cst.CSTNode] = None):
        """As `position`, with LibCST's WhitespaceInclusivePositionProvider."""
        if self._ws_positions is None:
            self._ws_positions = LocalPositions(self, inclusive=True)
        if hint is None and self.stack:
            hint = self.stack[-1]
        return self._ws_positions.get(node, hint)

    def line_comment(self, row: int) -> str:
        """The text of a source line (1-based), for comment markers such as
        `# eqxlint: nondifferentiable`."""
        lines = self.lines
        return lines[row - 1] if 0 < row <= len(lines) else ""
