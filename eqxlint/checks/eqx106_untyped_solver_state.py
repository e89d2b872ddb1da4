"""EQX106 untyped-solver-state: abstract solver Modules whose state is `Any` or untyped."""

from __future__ import annotations

from typing import Optional


from ..core.rule import Rule
from ._modules import declares_abstract, is_abstractmethod, methods

_STATE_METHODS = ("init", "step")


def _is_state_param(name: str) -> bool:
    return name == "state" or name.endswith("_state")


class UntypedSolverState(Rule):
    code = "EQX106"

    def end_file(self) -> None:
        ctx = self.ctx
        for cls in ctx.scopes:
            if cls.kind != "class" or not ctx.is_module_class(cls) or not declares_abstract(ctx, cls):
                continue
            ms = methods(cls)
            abstract = {n: f for n, f in ms.items() if n in _STATE_METHODS and is_abstractmethod(ctx, f)}
            if not abstract:
                continue
            init = abstract.get("init")
            if init is not None:
                problem = self._untyped(init.returns.annotation if init.returns else None)
                if problem:
                    self._report(cls, init.name, f"`{cls.name}.init` returns the solver state {problem}")
            step = abstract.get("step")
            if step is not None:
                p = step.params
                for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                    if not _is_state_param(prm.name.value):
                        continue
                    problem = self._untyped(prm.annotation.annotation if prm.annotation else None)
                    if problem:
                        self._report(cls, prm.name, f"`{cls.name}.step` takes `{prm.name.value}` {problem}")

    def _untyped(self, ann) -> Optional[str]:
        if ann is None:
            return "without a type"
        if self.ctx.qualname(ann) in ("typing.Any", "Any"):
            return "typed as `Any`"
        return None

    def _report(self, cls, node, what: str) -> None:
        self.report(
            node,
            f"{what}: each concrete solver has its own state PyTree, and `Any` hides its structure "
            "from type checkers and readers. Declare `_State = TypeVar(\"_State\")`, subclass "
            f"`Generic[_State]` in `{cls.name}`, and annotate `init(...) -> _State` and "
            "`step(..., state: _State)`.",
        )
