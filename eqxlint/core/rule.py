"""The base classes a rule module subclasses.

A rule is one module in `eqxlint/checks/` holding one `Rule` subclass with a `code`, plus its
catalogue entry `rules/<code>.md` (name, severity, docs, valid/invalid examples). Handlers are
methods named after LibCST node types: `visit_Call(self, node)`, `leave_FunctionDef(self, node)`;
`end_file(self)` runs after the file's last node. Nothing else needs editing to add a rule.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Sequence, Union

import libcst as cst

from .diagnostics import SAFE, UNSAFE, Cited  # noqa: F401  (SAFE, UNSAFE re-exported for rule modules)


@dataclasses.dataclass
class RuleFix:
    """A fix as a rule describes it: node replacements plus imports the new code needs."""

    message: str
    applicability: str = SAFE
    # (old node, new node or replacement source text)
    replacements: Sequence[tuple[cst.CSTNode, Union[cst.CSTNode, str]]] = ()
    # (module, alias) pairs, e.g. ("equinox", "eqx") -> `import equinox as eqx` when missing.
    imports: Sequence[tuple[str, Optional[str]]] = ()


class Rule:
    """A per-file rule. Subclasses set `code` and define `visit_*`/`leave_*` handlers."""

    code: ClassVar[str] = ""
    # Options read from `[tool.eqxlint.<code>]`, with their defaults.
    options: ClassVar[dict] = {}
    # Node types the rule needs to see among `ctx.stack` (the recorded ancestors) without
    # handling them itself.
    stack_types: ClassVar[tuple] = ()

    def __init__(self, ctx, options: Optional[dict] = None):
        self.ctx = ctx
        self.opts = dict(self.options)
        if options:
            self.opts.update(options)

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        fix: Optional[RuleFix] = None,
        requires: Optional[tuple] = None,
        refs: tuple = (),
    ) -> None:
        """`refs`: the rows of this file that `message` cites as "line N" (see `Diagnostic.refs`)."""
        if refs:
            message = Cited(message, refs)
        self.ctx.report(self.code, node, message, fix=fix, requires=requires)

    def report_traced(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        cond=None,
        fix: Optional[RuleFix] = None,
        scope=None,
        requires: Optional[tuple] = None,
    ) -> None:
        """Report a finding that stands only where the enclosing function is traced (anywhere in
        the project) and `cond` (a tracedness condition from `ctx.values`) holds there. Write
        `{trace}` in the message where the reason belongs: it becomes the call chain that makes
        the function traced ("`kl_term` is traced: called by `loss_fn` (model.py:31), ...")."""
        req = self.ctx.traced_requirement(cond, scope)
        if req is None:
            return
        reqs = (req,) if requires is None else (req,) + tuple(requires if not isinstance(requires[0], str) else (requires,))
        self.ctx.report(self.code, node, message, fix=fix, requires=reqs)

    def end_file(self) -> None:  # pragma: no cover - default
        pass


class ProjectRule:
    """A rule decided on the whole project's index (cross-file facts), not one file.

    `check_project(index)` returns `(path, fact_location, message)` triples; locations come from
    the facts the engine extracted when it linted each file."""

    code: ClassVar[str] = ""
    options: ClassVar[dict] = {}

    @classmethod
    def check_project(cls, index, options: dict) -> list:  # pragma: no cover - abstract
        raise NotImplementedError
