"""EQX306 primitive-matched-by-name: a primitive identified by its name string.

Reported forms, where `P` is a primitive expression (`<x>.primitive`, a name `prim`/`primitive`/
`*_prim`/`*_primitive`/`*_p`... see `_is_primitive_expr`):

- `P.name == "add"`, `P.name != "add"`, `P.name in ("add", "sub")`, `P.name not in {...}`, with
  the strings written inline or in a module-level constant (`_NAMES = {"cond", "scan"}`);
- `str(P) == "add"` / `str(P) in {...}` / `repr(P) ...`;
- `P.name.startswith("custom_")` / `.endswith(...)`;
- the same through a local variable (`name = eqn.primitive.name` ... `if name == "scan"`);
- `match P.name:` with string `case` patterns.

One finding per `if` statement (its `elif`/`else` branches and the statements nested in them
included: at its first name test, listing the names of all), not one per branch.

Left alone: `.name` read for printing, logging, sorting keys, f-strings, dict keys, or compared
with another non-literal expression; test files (jaxpr-structure assertions in tests read
`eqn.primitive.name` idiomatically; option `include-tests`).
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..project.paths import is_test_path
from ..semantics import names as S

_PRIM_NAMES = ("primitive", "prim")
_PRIM_SUFFIXES = ("_primitive", "_prim", "_p")


def _is_primitive_expr(expr) -> bool:
    """`eqn.primitive`, `self.primitive`, `prim`, `primitive`, `my_prim`, `add_p`, `eqn.prim`."""
    if isinstance(expr, cst.Attribute):
        name = expr.attr.value
    elif isinstance(expr, cst.Name):
        name = expr.value
    else:
        return False
    low = name.lower()
    return low in _PRIM_NAMES or low.endswith(_PRIM_SUFFIXES)


def _is_eqn(expr) -> bool:
    """A jaxpr equation: `eqn`, `e`, `new_eqn`, `eqns[0]`, `jaxpr.eqns[i]`."""
    if isinstance(expr, cst.Subscript):
        expr = expr.value
    if isinstance(expr, cst.Attribute):
        expr = expr.attr
    return isinstance(expr, cst.Name) and (expr.value == "e" or "eqn" in expr.value.lower() or "equation" in expr.value.lower())


def _strings(expr) -> Optional[list]:
    """The string values of a literal string or a literal collection of strings, else None."""
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        v = expr.evaluated_value
        return [v] if isinstance(v, str) else None
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        out = []
        for el in expr.elements:
            if not isinstance(el, cst.Element):
                return None
            sub = _strings(el.value)
            if sub is None or len(sub) != 1:
                return None
            out.extend(sub)
        return out or None
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in ("frozenset", "set", "tuple"):
        if len(expr.args) == 1:
            return _strings(expr.args[0].value)
    return None


class PrimitiveMatchedByName(Rule):
    code = "EQX306"
    options = {"include-tests": False}

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self.skip = is_test_path(ctx.path) and not self.opts.get("include-tests")
        self._consts: Optional[dict] = None
        self._root: dict = {}  # id(If) -> id of the first If of its if/elif chain
        self._chains: dict = {}  # id(first If) -> [(node, desc, vals, how)] found in its tests

    # -- what is a "name of a primitive" ---------------------------------------------------
    def _name_expr(self, expr) -> Optional[str]:
        """Describe `expr` if it evaluates to a primitive's name string, else None."""
        if isinstance(expr, cst.Attribute) and expr.attr.value == "name" and _is_primitive_expr(expr.value):
            return f"`{_one_line(self.ctx, expr)}`"
        if (
            isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name)
            and expr.func.value in ("str", "repr") and len(expr.args) == 1
            and expr.args[0].keyword is None and _is_primitive_expr(expr.args[0].value)
            and self.ctx.qualname(expr.func) == expr.func.value
        ):
            return f"`{_one_line(self.ctx, expr)}`"
        if (
            isinstance(expr, cst.Attribute) and expr.attr.value == "primitive"
            and _is_eqn(expr.value)
        ):
            # `eqn.primitive == "scan"`: never true (a Primitive is not equal to its name).
            return f"`{_one_line(self.ctx, expr)}`"
        if isinstance(expr, cst.Name):
            fn = self.ctx.scope.function
            if fn is not None:
                origin = fn.info.get("eqx306_vars", {}).get(expr.value)
                if origin is not None:
                    return f"`{expr.value}` (= `{origin}`)"
        return None

    def _module_constants(self) -> dict:
        if self._consts is None:
            out: dict = {}
            for stmt in self.ctx.module.body:
                if not isinstance(stmt, cst.SimpleStatementLine):
                    continue
                for small in stmt.body:
                    targets = []
                    if isinstance(small, cst.Assign) and len(small.targets) == 1:
                        targets = [small.targets[0].target]
                    elif isinstance(small, cst.AnnAssign) and small.value is not None:
                        targets = [small.target]
                    for t in targets:
                        if isinstance(t, cst.Name):
                            vals = _strings(small.value)
                            if vals is not None:
                                out[t.value] = vals
                            else:
                                out.pop(t.value, None)
            self._consts = out
        return self._consts

    def _string_side(self, expr) -> Optional[list]:
        vals = _strings(expr)
        if vals is not None:
            return vals
        if isinstance(expr, cst.Name):
            fn = self.ctx.scope.function
            if fn is not None and (expr.value in fn.params or expr.value in fn.defs):
                return None
            return self._module_constants().get(expr.value)
        return None

    # -- handlers --------------------------------------------------------------------------
    def visit_If(self, node: cst.If) -> None:
        if self.skip:
            return
        root = self._root.setdefault(id(node), id(node))
        if type(node.orelse) is cst.If:
            self._root[id(node.orelse)] = root

    def leave_If(self, node: cst.If) -> None:
        if self.skip or self._root.get(id(node)) != id(node):
            return
        found = self._chains.pop(id(node), None)
        if found:
            vals: list = []
            for _, _, vs, _ in found:
                vals.extend(v for v in vs if v not in vals)
            first, desc, _, how = found[0]
            self._report(first, desc, vals, how, chain=len(found) > 1)

    def _chain(self, node) -> Optional[int]:
        """The outermost `if` statement of the function that holds `node` (in a test or a
        branch), when there is one."""
        found = None
        for anc in reversed(self.ctx.stack[:-1]):
            if type(anc) is cst.If:
                found = anc
            elif type(anc) in (cst.FunctionDef, cst.ClassDef, cst.Lambda):
                break
        return self._root.get(id(found)) if found is not None else None

    def _found(self, node, desc: str, vals: list, how: str) -> None:
        root = self._chain(node)
        if root is None:
            self._report(node, desc, vals, how)
        else:
            self._chains.setdefault(root, []).append((node, desc, vals, how))
    def visit_Assign(self, node: cst.Assign) -> None:
        if self.skip:
            return
        fn = self.ctx.scope.function
        if fn is None or len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        name = node.targets[0].target.value
        vars_ = fn.info.setdefault("eqx306_vars", {})
        described = self._name_expr(node.value)
        if described is not None and not isinstance(node.value, cst.Name):
            vars_[name] = _one_line(self.ctx, node.value)
        else:
            vars_.pop(name, None)

    def visit_Comparison(self, node: cst.Comparison) -> None:
        if self.skip:
            return
        left = node.left
        for target in node.comparisons:
            op = target.operator
            right = target.comparator
            if isinstance(op, (cst.Equal, cst.NotEqual)):
                for a, b in ((left, right), (right, left)):
                    desc = self._name_expr(a)
                    vals = self._string_side(b) if desc is not None else None
                    if vals is not None:
                        self._found(node, desc, vals, "==" if isinstance(op, cst.Equal) else "!=")
                        return
            elif isinstance(op, (cst.In, cst.NotIn)):
                desc = self._name_expr(left)
                vals = self._string_side(right) if desc is not None else None
                if vals is not None:
                    self._found(node, desc, vals, "in")
                    return
            left = right

    def visit_Call(self, node: cst.Call) -> None:
        if self.skip:
            return
        func = node.func
        if (
            isinstance(func, cst.Attribute) and func.attr.value in ("startswith", "endswith")
            and len(node.args) == 1
        ):
            desc = self._name_expr(func.value)
            vals = _strings(node.args[0].value) if desc is not None else None
            if vals is not None:
                self._found(node, desc, vals, func.attr.value)

    def visit_Match(self, node: cst.Match) -> None:
        if self.skip:
            return
        desc = self._name_expr(node.subject)
        if desc is None:
            return
        vals = []
        for case in node.cases:
            pat = case.pattern
            if isinstance(pat, cst.MatchValue):
                got = _strings(pat.value)
                if got:
                    vals.extend(got)
            elif isinstance(pat, cst.MatchOr):
                for el in pat.patterns:
                    if isinstance(el.pattern, cst.MatchValue):
                        vals.extend(_strings(el.pattern.value) or [])
        if vals:
            self._report(node.subject, desc, vals, "match")

    def _report(self, node, desc: str, vals: list, how: str, chain: bool = False) -> None:
        shown = ", ".join(repr(v) for v in vals[:3]) + (", ..." if len(vals) > 3 else "")
        if chain:
            found = f"an `if` statement and its branches test {desc} against name strings ({shown})"
        elif how in ("startswith", "endswith"):
            found = f"{desc} tested with `.{how}({shown})`"
        elif how == "match":
            found = f"`match` on {desc} with name strings ({shown})"
        else:
            found = f"{desc} compared with name string{'s' if len(vals) > 1 else ''} {shown}"
        fix = ("Compare the primitive object itself: `eqn.primitive is my_p`, or `eqn.primitive "
               "in MY_PRIMITIVES` with a set of primitive objects (for JAX's own primitives, import "
               "them, e.g. from `jax.extend.core.primitives`).")
        # A former name tested beside its current one is compatibility code: not stale.
        former = [v for v in vals if v in S.FORMER_PRIMITIVE_NAMES and S.FORMER_PRIMITIVE_NAMES[v] not in vals]
        if former:
            now = [f"`{v}` (now `{S.FORMER_PRIMITIVE_NAMES[v]}`)" if S.FORMER_PRIMITIVE_NAMES[v]
                   else f"`{v}` (gone)" for v in former]
            why = (f"{', '.join(now)} {'is' if len(former) == 1 else 'are'} no longer the name of "
                   f"any JAX primitive (JAX {S.JAX_PRIMITIVE_NAMES_VERSION}) and the current name is "
                   "not tested, so the test no longer matches those primitives and what it guards "
                   "silently stops running for them: the hazard of name tests, as JAX renames "
                   "primitives across versions.")
        elif all(v in S.JAX_PRIMITIVE_NAMES for v in vals):
            one = len(vals) == 1
            why = (f"{'This is a' if one else 'These are'} current JAX primitive name{'' if one else 's'}, "
                   "so the test works today; but names are not identities: JAX renames primitives "
                   "across versions (`pjit` became `jit`), and a string test then silently stops "
                   "matching.")
        else:
            why = ("Names are not identities: two primitives can share a name, JAX renames "
                   "primitives across versions (`pjit` became `jit`), and a string test then "
                   "silently stops matching.")
        self.report(node, f"Primitive identified by its name: {found}. {why} {fix}")


def _one_line(ctx, node, limit: int = 50) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
