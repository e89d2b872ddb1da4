"""EQX103 traced-control-flag: non-static Module fields / jitted arguments steering Python
control flow or shapes/dtypes."""

from __future__ import annotations

from typing import Callable, Iterator, Optional

import libcst as cst

from ..core.rule import UNSAFE, Rule, RuleFix
from ..semantics import tracing as T
from ..semantics import types as TY
from ..syntax.walker import children
from ._modules import bound_in, decorator_names, iter_local, iter_with_parents, method_self, methods

_SETUP = frozenset({"__init__", "__post_init__", "__check_init__", "__new__", "__repr__",
                    "__str__", "__hash__", "__eq__"})
_NEUTRAL_CALLS = frozenset({"isinstance", "callable", "hasattr", "getattr", "type", "id", "len",
                            "repr", "str"})
_CONSTRUCTORS = frozenset(
    f"{m}.{f}" for m in ("jax.numpy", "numpy")
    for f in ("zeros", "ones", "empty", "full", "eye", "identity", "arange", "linspace", "tri")
) | frozenset({"jax.random.normal", "jax.random.uniform", "jax.random.bernoulli",
               "jax.random.randint", "jax.random.split"})


def _key_self(self_name: str) -> Callable:
    def key(expr) -> Optional[str]:
        if (isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name)
                and expr.value.value == self_name):
            return expr.attr.value
        return None
    return key


def _key_names(names: set) -> Callable:
    def key(expr) -> Optional[str]:
        if isinstance(expr, cst.Name) and expr.value in names:
            return expr.value
        return None
    return key


def _refs(ctx, expr, key) -> Iterator[tuple]:
    """(node, name) for references in `expr` that read the value itself: not under an
    `is None` comparison, `isinstance`/`len`/`callable`, or a further attribute access."""
    skip: set = set()
    guarded = set()  # `isinstance(self.p, float) and self.p == 0`: the code expects arrays too
    for node in iter_local(expr, (cst.Call,), into_scopes=True):
        if ctx.qualname(node.func) == "isinstance" and node.args:
            g = key(node.args[0].value)
            if g is not None:
                guarded.add(g)
    for node, parent in iter_with_parents(expr, into_scopes=True):
        if id(node) in skip:
            for c in _children(node):
                skip.add(id(c))
            continue
        if isinstance(node, cst.Comparison) and any(
            isinstance(t.operator, (cst.Is, cst.IsNot)) for t in node.comparisons
        ):
            for c in _children(node):
                skip.add(id(c))
            continue
        if isinstance(node, cst.Call) and ctx.qualname(node.func) in _NEUTRAL_CALLS:
            for c in _children(node):
                skip.add(id(c))
            continue
        name = key(node)
        if name is None or name in guarded:
            continue
        if isinstance(parent, cst.Attribute) and parent.value is node:
            continue  # self.cfg.x: reads an attribute of the field
        if isinstance(parent, cst.Subscript) and parent.value is node:
            continue
        yield node, name


def _children(node):
    return children(node)


def uses(ctx, body, key) -> Iterator[tuple]:
    """(node, name, how) for control-flow / shape / dtype uses of the keyed values."""
    for node in iter_local(body, into_scopes=True):
        if isinstance(node, (cst.If, cst.While)):
            for ref, name in _refs(ctx, node.test, key):
                yield ref, name, "an `if`/`while` condition" if isinstance(node, cst.If) else "a `while` condition"
        elif isinstance(node, cst.IfExp):
            for ref, name in _refs(ctx, node.test, key):
                yield ref, name, "a conditional expression"
        elif isinstance(node, cst.Call):
            qn = ctx.qualname(node.func)
            if qn == "range":
                for a in node.args:
                    for ref, name in _refs(ctx, a.value, key):
                        yield ref, name, "a `range(...)` bound"
                continue
            for a in node.args:
                if a.keyword is not None and a.keyword.value in ("dtype", "shape"):
                    for ref, name in _refs(ctx, a.value, key):
                        yield ref, name, f"`{a.keyword.value}=`"
            if qn in _CONSTRUCTORS:
                pos = [a for a in node.args if a.keyword is None and not a.star]
                idx = 1 if qn.startswith("jax.random.") else 0
                if qn.endswith("full") or qn.endswith("arange") or qn.endswith("linspace"):
                    idx = -1 if qn.endswith("full") else 0
                if idx >= 0 and len(pos) > idx:
                    for ref, name in _refs(ctx, pos[idx].value, key):
                        yield ref, name, f"the shape of `{ctx.code(node.func)}`"
            elif isinstance(node.func, cst.Attribute) and node.func.attr.value in ("astype", "reshape"):
                for a in node.args:
                    if a.keyword is None:
                        for ref, name in _refs(ctx, a.value, key):
                            yield ref, name, f"`.{node.func.attr.value}(...)`"


def _array_assigned(ctx, cls_chain, name: str) -> bool:
    """`self.name = jnp.asarray(...)` (or any jax/numpy call) in some __init__: really an array."""
    for c in cls_chain:
        init = methods(c).get("__init__")
        if init is None:
            continue
        for node in iter_local(init.body, (cst.Assign,)):
            for t in node.targets:
                tt = t.target
                if isinstance(tt, cst.Attribute) and tt.attr.value == name and isinstance(node.value, cst.Call):
                    qn = ctx.qualname(node.value.func) or ""
                    if qn.startswith(("jax.", "numpy.")):
                        return True
    return False


class TracedControlFlag(Rule):
    code = "EQX103"

    def end_file(self) -> None:
        ctx = self.ctx
        for scope in ctx.scopes:
            if scope.kind == "class":
                is_mod, req = TY.module_of_class(ctx, scope)
                if is_mod is not False:
                    self._check_class(scope, req)
            elif scope.kind == "function":
                self._check_jitted(scope)

    # ------------------------------------------------------------------ Module fields
    def _check_class(self, cls, requires) -> None:
        """`requires`: the condition under which `cls` is a Module (a base in another file)."""
        ctx = self.ctx
        fields, _ = TY.all_fields(ctx, cls)
        if not fields:
            return
        chain, _ = TY.mro(ctx, cls)
        for mname, fn in methods(cls).items():
            if mname in _SETUP:
                continue
            decs = decorator_names(ctx, fn)
            if decs & {"staticmethod", "classmethod"}:
                continue
            self_name = method_self(fn)
            if self_name is None:
                continue
            seen = set()
            for ref, name, how in uses(ctx, fn.body, _key_self(self_name)):
                f = fields.get(name)
                if f is None or f.call_kind in ("static", "dynamic", "converter"):
                    continue
                tname = TY.static_type_text(ctx, f.ann)
                if tname is None or (name, id(ref)) in seen:
                    continue
                if _array_assigned(ctx, chain, name):
                    continue
                seen.add((name, id(ref)))
                owner = f.cls.name
                tname = " ".join(tname.split())
                self.report(
                    ref,
                    f"Module field `{owner}.{name}: {tname}` steers {how} in `{mname}` but is not "
                    "static: it is a PyTree leaf, so wherever the Module passes through `jax.jit`, "
                    "`jax.vmap` or a `lax` loop carry it becomes a tracer and this raises, and tree "
                    "maps over the Module (optimizer updates, `jax.tree_util.tree_map`) visit it. "
                    f"Declare it `{name}: {tname} = eqx.field(static=True)`.",
                    fix=self._fix(f),
                    requires=requires,
                )

    def _fix(self, f) -> Optional[RuleFix]:
        ctx = self.ctx
        eqx = ctx.alias_for("equinox")
        imports = []
        if eqx is None:
            eqx, imports = "eqx", [("equinox", "eqx")]
        node: cst.AnnAssign = f.node
        target = ctx.code(node.target)
        ann = ctx.code(node.annotation.annotation)
        value = node.value
        if value is None:
            new = f"{target}: {ann} = {eqx}.field(static=True)"
        elif f.call_kind == "field":
            if (ctx.qualname(value.func) or "") != "equinox.field":
                return None  # dataclasses.field has no static=
            args = ", ".join(ctx.code(a.value) if a.keyword is None else f"{a.keyword.value}={ctx.code(a.value)}"
                             for a in value.args if not a.star)
            if any(a.star for a in value.args):
                return None
            new = f"{target}: {ann} = {ctx.code(value.func)}(static=True, {args})"
        else:
            new = f"{target}: {ann} = {eqx}.field(static=True, default={ctx.code(value)})"
        return RuleFix(
            f"Mark `{target}` as `{eqx}.field(static=True)`",
            UNSAFE,  # changes the PyTree structure: the field leaves the leaves, joins the treedef
            replacements=[(node, new)],
            imports=imports,
        )

    # ------------------------------------------------------------------ jitted arguments
    def _check_jitted(self, fn) -> None:
        """Arguments that `jax.jit` traces (from the transform's spec: `static_argnums`,
        `static_argnames`, arguments bound by `functools.partial`) at every site of this file
        that jits the function."""
        ctx = self.ctx
        sites = [s for s in fn.sites if s.kind in ("decorator", "call") and s.qualname == "jax.jit"]
        if not sites or fn.node.decorators and any(
            s.kind == "decorator" and s.qualname != "jax.jit" for s in fn.sites
        ):
            return
        summ = ctx.values.summary(fn)
        if summ is None:
            return
        traced = None
        for site in sites:
            node = site.node
            if site.kind == "decorator":
                call = node.decorator if type(node.decorator) is cst.Call else None
                skip, skip_kw = 0, frozenset()
            else:
                call = node
                pos = [a for a in call.args if a.keyword is None and not a.star]
                v = ctx.values.of(pos[0].value) if pos else None
                skip = v.skip if v is not None else 0
                skip_kw = frozenset(k for k, _ in v.bound if isinstance(k, str)) if v is not None else frozenset()
            spec = T.wrap_spec("jax.jit", call)
            names = T.traced_params(spec, summ.params, skip, skip_kw)
            traced = names if traced is None else traced & names
        if not traced:
            return
        params = fn.node.params
        ordered = list(params.posonly_params) + list(params.params)
        cands = {}
        for p in ordered + list(params.kwonly_params):
            if p.annotation is not None and p.name.value in traced and TY.is_scalar_annotation(ctx, p.annotation):
                cands[p.name.value] = " ".join(ctx.code(p.annotation.annotation).split())
        if not cands:
            return
        cands = {k: v for k, v in cands.items() if k not in bound_in(fn.node.body)}
        eqx = (ctx.alias_for("equinox") or "eqx") if ctx.imports_module("equinox") else None
        for ref, name, how in uses(ctx, fn.node.body, _key_names(set(cands))):
            also = f", or use `{eqx}.filter_jit`, which keeps Python ints/bools/strs static" if eqx else ""
            self.report(
                ref,
                f"`{name}: {cands[name]}` is an argument of `jax.jit`-compiled `{fn.name}` used in "
                f"{how}: jax.jit traces it, so this fails at trace time (a tracer has no concrete "
                f"value). Pass it as static (`static_argnames=(\"{name}\",)`){also}.",
            )
