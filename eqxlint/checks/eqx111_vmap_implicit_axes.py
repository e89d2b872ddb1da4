"""EQX111 vmap-implicit-axes: `jax.vmap`/`eqx.filter_vmap` with the default `in_axes` where that
is wrong for an `eqx.Module`: a Module passed beside batched data (it must be shared,
`in_axes=None`), or, under `jax.vmap`, a Module holding non-array fields."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..semantics import names as S
from ..semantics import tracing as T
from ..semantics import types as TY
from ..semantics.values import FN, INST, RAW
from ..syntax.nodes import keyword, positional

VMAPS = frozenset({"jax.vmap", "equinox.filter_vmap", "equinox.internal.filter_vmap"})
PARTIAL = ("functools.partial", "partial")


class VmapImplicitAxes(Rule):
    code = "EQX111"

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self._decorated: Optional[dict] = None  # id(decorator call) -> FunctionDef

    # ------------------------------------------------------------ visit
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        ctx = self.ctx
        for d in node.decorators:
            expr = d.decorator
            if type(expr) in (cst.Name, cst.Attribute):
                qn = ctx.qualname(expr)
                if qn in VMAPS:
                    self._check(d, qn, ctx.scope_of.get(id(node)), 0, (), None, "decorator")

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if type(node.func) not in (cst.Name, cst.Attribute):
            return
        qn = ctx.qualname(node.func)
        if self._decorated is None:
            # A decorator is visited before its `def` (in the scope the `def` runs in).
            self._decorated = {}
            for s in ctx.scopes:
                if s.kind == "function":
                    for d in s.node.decorators:
                        if type(d.decorator) is cst.Call:
                            self._decorated[id(d.decorator)] = s.node
        dec = self._decorated.get(id(node))
        if qn in VMAPS:
            if _explicit_axes(node, 1):
                return
            pos = positional(node)
            fn = pos[0].value if pos else (keyword(node, "fun").value if keyword(node, "fun") is not None else None)
            if fn is None:
                if dec is not None:  # @eqx.filter_vmap(out_axes=...)
                    self._check(node, qn, ctx.scope_of.get(id(dec)), 0, (), None, "decorator-call")
                return
            self._function(node, qn, fn, self._applied(node))
        elif qn in PARTIAL and node.args:
            inner = ctx.qualname(node.args[0].value) if type(node.args[0].value) in (cst.Name, cst.Attribute) else None
            if inner not in VMAPS or _explicit_axes(node, 2):
                return
            pos = positional(node)
            if dec is not None and len(pos) == 1:
                self._check(node, inner, ctx.scope_of.get(id(dec)), 0, (), None, "partial")
            elif len(pos) > 1:
                self._function(node, inner, pos[1].value, None)

    # ------------------------------------------------------------ analysis
    def _applied(self, call: cst.Call) -> Optional[cst.Call]:
        """The call that applies the map on the spot: `jax.vmap(f)(model, xs)`."""
        stack = self.ctx.stack
        if len(stack) >= 2 and stack[-1] is call and type(stack[-2]) is cst.Call and stack[-2].func is call:
            return stack[-2]
        return None

    def _function(self, node, qn: str, fn_expr, applied: Optional[cst.Call]) -> None:
        ctx = self.ctx
        v = ctx.values.of(fn_expr)
        scope, skip, bound_kw = None, 0, ()
        if v.kind == FN and v.ref:
            if any(T.kind(s) in ("vmap", "fvmap", "jit", "fjit") for s in v.via):
                return  # an inner map or jit decides its own axes
            s = ctx.refs.get(v.ref)
            if s is not None and s.kind in ("function", "lambda"):
                scope, skip = s, v.skip
                bound_kw = tuple(k for k, _ in v.bound if isinstance(k, str))
        self._check(node, qn, scope, skip, bound_kw, applied, "call", fn_expr)

    def _check(self, node, qn: str, scope, skip: int, bound_kw: tuple, applied: Optional[cst.Call],
               form: str, fn_expr=None) -> None:
        """`scope`: the mapped function when it is known; `applied`: the on-the-spot call."""
        ctx = self.ctx
        if applied is not None and any(a.star for a in applied.args):
            return
        params = []  # (name, annotation) of the positional parameters the map feeds
        if scope is not None:
            p = scope.node.params
            plist = list(p.posonly_params) + list(p.params)
            plist = [x for x in plist[skip:] if x.name.value not in bound_kw]
            params = [(x.name.value, x.annotation, x.default is not None) for x in plist]
        slots = []  # (label, module evidence or None); evidence = (what, class ref, requires)
        if applied is not None:
            args = [a for a in applied.args if a.keyword is None]
            for i, a in enumerate(args):
                name = params[i][0] if i < len(params) else None
                slots.append((name, self._arg_module(a.value)))
        elif scope is not None:
            method_self = scope.cls is not None and skip == 0 and scope.kind == "function" and plist \
                and plist[0].name.value in ("self", "cls") and bound_kw == ()
            for i, (name, ann, has_default) in enumerate(params):
                if has_default:
                    break  # a map is rarely given the defaulted arguments
                if i == 0 and method_self:
                    is_mod, req = TY.module_of_class(ctx, scope.cls)
                    ev = (f"`{name}` (a `{scope.cls.name}`)", scope.cls.ref, req) if is_mod is not False else None
                else:
                    ev = self._annotated_module(name, ann)
                slots.append((name, ev))
        else:
            return
        certain = [i for i, s in enumerate(slots) if s[1] is not None and s[1][2] is None]
        maybe = [i for i, s in enumerate(slots) if s[1] is not None and s[1][2] is not None]
        plain = [i for i, s in enumerate(slots) if s[1] is None]
        # One alternative per candidate Module argument, each holding only where no earlier
        # one does (so the finding names its argument and is reported once). A candidate that
        # only the project can confirm (`module_class`, `param_module`) carries its condition;
        # a candidate standing for batched data carries the negation of its own.
        order = certain[:1] if certain else maybe
        for n, i in enumerate(order):
            reqs = () if certain else (slots[i][1][2],) + tuple(("not", slots[j][1][2]) for j in maybe[:n])
            data = list(plain)
            if not data:
                rest = [k for k in maybe if k != i and k not in order[:n]]
                if rest:
                    data = rest[:1]
                    reqs += (("not", slots[rest[0]][1][2]),)
            self._emit(node, qn, form, scope, fn_expr, slots, i, data, reqs)

    def _emit(self, node, qn, form, scope, fn_expr, slots, i, data, reqs) -> None:
        what, ref, _ = slots[i][1]
        py, py_req = self._python_fields(ref) if qn == "jax.vmap" else (None, None)
        if not data:
            if py is None and py_req is None:
                return  # a Module alone (an ensemble) under filter_vmap, or with array fields only
            if py is None:
                reqs += (py_req,)
        shown = [slots[k][0] or f"argument {k + 1}" for k in data]
        message = self._message(node, qn, form, scope, fn_expr, slots, i, what, shown, py)
        self.report(node, message, requires=reqs or None)

    def _arg_module(self, expr) -> Optional[tuple]:
        """Module evidence for an argument at the on-the-spot call: an instance of a Module
        class, or a parameter of the enclosing function to which callers pass a Module."""
        ctx = self.ctx
        v = ctx.values.of(expr)
        if v.kind == INST:
            is_mod, req = TY.module_of_ref(ctx, v.ref)
            if is_mod is not False:
                return f"`{_short(ctx, expr)}` (a `{_cls_name(v.ref)}`)", v.ref, req
            return None
        if v.kind == RAW and v.src is not None and type(expr) is cst.Name:
            fn = ctx.scope.function
            if fn is not None and v.src in fn.params:
                return f"`{v.src}`", None, ("param_module", fn.ref, [v.src])
        return None

    def _annotated_module(self, name: str, ann) -> Optional[tuple]:
        if ann is None:
            return None
        kind, ref = TY.annotation_kind(self.ctx, ann)
        if kind != "class":
            return None
        is_mod, req = TY.module_of_ref(self.ctx, ref)
        if is_mod is False:
            return None
        return f"`{name}: {_cls_name(ref)}`", ref.lstrip("?"), req

    def _python_fields(self, ref: Optional[str]) -> tuple:
        """(names, None) of a Module class's non-static Python-value fields known here, or
        (None, requires) when only the project knows, or (None, None)."""
        if not ref:
            return None, None
        ctx = self.ctx
        ref = ref.lstrip("?")
        if ref in S.EQX_NN_PYTHON_FIELDS:
            return list(S.EQX_NN_PYTHON_FIELDS[ref]), None
        cls = ctx.class_by_ref(ref)
        if cls is None:
            if ref.startswith(("equinox.", "jax.")):
                return None, None
            return None, ("module_python_fields", ref)
        fields, complete = TY.all_fields(ctx, cls)
        names = [f.name for f in fields.values() if f.kind == "static-type" and f.call_kind != "converter"]
        if names:
            return names, None
        if not complete and cls.parent is ctx.module_scope:
            return None, ("module_python_fields", ref)
        return None, None

    # ------------------------------------------------------------ words
    def _message(self, node, qn, form, scope, fn_expr, slots, i, what, data, py) -> str:
        ctx = self.ctx
        eqx = ctx.alias_for("equinox")
        raw = qn == "jax.vmap"
        name = "jax.vmap" if raw else f"{eqx or 'eqx'}.filter_vmap"
        fn = f"`{scope.name}`" if scope is not None and scope.name else (
            f"`{_short(ctx, fn_expr)}`" if fn_expr is not None else "this function")
        if data:
            axes = ", ".join(
                "None" if k == i or slots[k][1] is not None and slots[k][1][2] is None else ("0" if raw else f"{eqx or 'eqx'}.if_array(0)") for k in range(len(slots))
            )
            axes = axes + "," if len(slots) == 1 else axes
            if form in ("decorator", "decorator-call", "partial"):
                part = ctx.code(node.func) if form == "partial" else "functools.partial"
                use = (f"`@{part}(jax.vmap, in_axes=({axes}))`" if raw
                       else f"`@{name}(in_axes=({axes}))`")
            else:
                target = _short(ctx, fn_expr) if fn_expr is not None else "f"
                use = f"`{name}({target}, in_axes=({axes}))`"
            msg = (
                f"`{name}` over {fn} with the default `in_axes` maps every argument over axis 0, "
                f"including {what}, an `eqx.Module` passed beside batched data "
                f"({', '.join(f'`{d}`' if not d.startswith('argument') else d for d in data[:3])}): "
                "its weights would be mapped too, as if they were a batch of models. Share the "
                f"Module: {use}."
            )
            if py:
                msg += (f" (Under `jax.vmap` its non-array fields ({', '.join(f'`{p}`' for p in py[:3])}) "
                        "cannot be mapped either.)")
            return msg
        fields = f" ({', '.join(f'`{p}`' for p in py[:3])})" if py else ""
        if eqx:
            use = f"Use `{eqx}.filter_vmap`, which maps only the array leaves (or pass the Module with `in_axes=None` if it is shared)."
        else:
            use = "Pass the Module with `in_axes=None` if it is shared, or map only its array leaves (`eqx.filter_vmap`)."
        return (
            f"`jax.vmap` over {fn} with the default `in_axes` maps every leaf of {what}, an "
            f"`eqx.Module` with non-array fields{fields}: `jax.vmap` cannot map a function, int or "
            f"string leaf over axis 0, so the call raises. {use}"
        )


def _explicit_axes(call: cst.Call, npos: int) -> bool:
    """`in_axes=` given (by keyword, or positionally after the function), or `*args`/`**kw`
    that may carry it."""
    if keyword(call, "in_axes") is not None or any(a.star for a in call.args):
        return True
    return len(positional(call)) > npos


def _cls_name(ref: Optional[str]) -> str:
    ref = (ref or "").lstrip("?")
    return ref.replace("equinox.", "eqx.") if ref.startswith("equinox.") else ref.rsplit(".", 1)[-1]


def _short(ctx, node, limit: int = 40) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
