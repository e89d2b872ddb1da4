"""EQX105 module-abstract-or-final: concrete Modules subclassed (methods overridden, fields
split), and abstract members not declared as such."""

from __future__ import annotations

import libcst as cst

from ..core.rule import Rule
from ..semantics.types import local_bases, mro, own_fields
from ._modules import declares_abstract, decorator_names, definitely_concrete, is_abstractmethod, iter_local, methods

_ALLOWED_OVERRIDES = frozenset({"__check_init__"})


def _stub_kind(fn: cst.FunctionDef):
    """'raise' for a body that only raises NotImplementedError, 'ellipsis' for `...`, else
    None (a docstring is ignored)."""
    body = fn.body
    stmts = list(body.body) if isinstance(body, cst.IndentedBlock) else [body]
    smalls = []
    for st in stmts:
        if isinstance(st, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            smalls.extend(st.body)
        else:
            return None
    smalls = [s for s in smalls if not (isinstance(s, cst.Expr) and isinstance(s.value, (cst.SimpleString, cst.ConcatenatedString)))]
    if len(smalls) != 1:
        return None
    s = smalls[0]
    if isinstance(s, cst.Raise) and s.exc is not None:
        exc = s.exc.func if isinstance(s.exc, cst.Call) else s.exc
        if isinstance(exc, cst.Name) and exc.value == "NotImplementedError":
            return "raise"
    if isinstance(s, cst.Expr) and isinstance(s.value, cst.Ellipsis):
        return "ellipsis"
    return None


def _delegates(fn: cst.FunctionDef) -> bool:
    """The override calls `super().<same name>(...)`: it extends the base method (a
    convenience subclass fixing constructor arguments, a wrapper), it does not replace it."""
    for call in iter_local(fn.body, (cst.Call,)):
        f = call.func
        if (isinstance(f, cst.Attribute) and f.attr.value == fn.name.value
                and isinstance(f.value, cst.Call) and isinstance(f.value.func, cst.Name)
                and f.value.func.value == "super"):
            return True
    return False


class ModuleAbstractOrFinal(Rule):
    code = "EQX105"

    def end_file(self) -> None:
        ctx = self.ctx
        for cls in ctx.scopes:
            if cls.kind != "class" or not ctx.is_module_class(cls):
                continue
            self._check_subclass(cls)
            if declares_abstract(ctx, cls):
                self._check_undeclared(cls)

    def _check_subclass(self, cls) -> None:
        ctx = self.ctx
        bases, _ = local_bases(ctx, cls)
        mine = methods(cls)
        new_fields = own_fields(ctx, cls)
        for base in bases:
            if not ctx.is_module_class(base) or not definitely_concrete(ctx, base):
                continue
            chain, _ = mro(ctx, base)
            for name, fn in mine.items():
                if name in _ALLOWED_OVERRIDES or _delegates(fn):
                    continue
                for anc in chain:
                    bfn = methods(anc).get(name)
                    if bfn is None:
                        continue
                    if is_abstractmethod(ctx, bfn) or _stub_kind(bfn) or "typing.overload" in decorator_names(ctx, bfn):
                        break
                    self.report(
                        fn.name,
                        f"`{cls.name}.{name}` overrides the concrete method `{anc.name}.{name}` of "
                        f"the concrete Module `{base.name}`: which implementation runs then depends "
                        "on the subclass, which Equinox's abstract-or-final guideline advises against. Make "
                        f"the base abstract (`Abstract{base.name}` with `@abc.abstractmethod "
                        f"def {name}`) and give each concrete subclass its own implementation.",
                    )
                    break
            base_fields = {}
            for anc in chain:
                for k, v in own_fields(ctx, anc).items():
                    base_fields.setdefault(k, v)
            added = [f for k, f in new_fields.items() if k not in base_fields]
            if base_fields and added:
                f = added[0]
                self.report(
                    f.node.target,
                    f"`{cls.name}` adds field(s) {', '.join('`' + a.name + '`' for a in added[:3])} "
                    f"to the concrete Module `{base.name}`, which already has fields "
                    f"({', '.join('`' + k + '`' for k in list(base_fields)[:3])}): fields split "
                    "across a concrete hierarchy make `__init__` order and field ownership hard to "
                    f"follow. Make `{base.name}` abstract (declare shared attributes as "
                    "`eqx.AbstractVar[...]`) and put all fields in the final class.",
                )

    def _check_undeclared(self, cls) -> None:
        for name, fn in methods(cls).items():
            if fn.decorators:
                continue  # @abstractmethod, @property, @overload, ...: decided by its decorator
            kind = _stub_kind(fn)
            if kind is None or name.startswith("__") and name.endswith("__"):
                continue
            body = "`raise NotImplementedError`" if kind == "raise" else "`...`"
            self.report(
                fn.name,
                f"`{cls.name}.{name}` in abstract Module `{cls.name}` has only {body} as its body "
                "but is not declared abstract: a subclass that forgets it is still instantiable "
                "and fails only when called. Decorate it with `@abc.abstractmethod` (or use "
                "`eqx.AbstractVar[...]` for an attribute).",
            )
