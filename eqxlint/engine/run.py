"""Lints one file: decode, parse once with LibCST, walk once, build the shared context, replay the
recorded events to every enabled rule, then turn reports into diagnostics with positions and fix
edits. `finalize` then applies what needs the whole project: cross-file rules over the project
index, conditions on cross-file facts, per-file ignores, `# noqa` and unused suppressions."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import operator
import re
import sys
import traceback
from typing import Optional

import libcst as cst

from ..suppress import noqa
from . import registry
from ..syntax.parsing import parse_module
from ..semantics import names as S
from ..semantics.context import CONTEXT_TYPES, SCOPE_TYPES, FileContext
from ..core.diagnostics import Diagnostic
from ..core.rule import ProjectRule, Rule
from ..core.source import decode, digest
from ..syntax.walker import walk_module
from ..project.index import ProjectIndex
from .materialise import materialise

_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass
class FileResult:
    path: str
    diagnostics: list  # Diagnostic, before suppression
    facts: dict
    directives: list  # serialised noqa directives
    errors: list  # internal errors (strings)
    notes: list  # non-finding notes (e.g. LibCST could not parse valid Python)
    # Findings only the whole project decides (see eqxlint.engine.materialise), and the digest
    # of the text they were computed from.
    candidates: list = dataclasses.field(default_factory=list)
    digest: str = ""
    # The text, kept in memory (never cached) while candidates may need it.
    text: Optional[str] = dataclasses.field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "facts": self.facts,
            "directives": self.directives,
            "errors": self.errors,
            "notes": self.notes,
            "candidates": self.candidates,
            "digest": self.digest,
        }

    @classmethod
    def from_json(cls, data: dict) -> "FileResult":
        return cls(
            path=data["path"],
            diagnostics=[Diagnostic.from_dict(d) for d in data["diagnostics"]],
            facts=data["facts"],
            directives=data["directives"],
            errors=data["errors"],
            notes=data.get("notes", []),
            candidates=data.get("candidates", []),
            digest=data.get("digest", ""),
        )


class RunConfig:
    """Everything a worker needs to lint files: enabled rules, dispatch tables, options."""

    def __init__(self, settings, enabled: Optional[frozenset] = None):
        self.settings = settings
        self.enabled = enabled if enabled is not None else settings.enabled_codes()
        rules = registry.all_rules()
        from ..project.collectors import COLLECTORS

        self.rule_classes = [
            cls for code, cls in rules.items()
            if code in self.enabled and issubclass(cls, Rule)
        ]
        self.project_rules = [
            cls for code, cls in rules.items()
            if code in self.enabled and issubclass(cls, ProjectRule)
        ]
        self.collectors = list(COLLECTORS)
        self.visit: dict = {}
        self.leave: dict = {}
        types = set(CONTEXT_TYPES)
        for idx, cls in enumerate(self.collectors + self.rule_classes):
            types.update(getattr(cls, "stack_types", ()))
            for attr in dir(cls):
                if attr.startswith("visit_") or attr.startswith("leave_"):
                    tp = getattr(cst, attr[6:], None)
                    if isinstance(tp, type) and issubclass(tp, cst.CSTNode):
                        table = self.visit if attr.startswith("visit_") else self.leave
                        table.setdefault(tp, []).append((idx, attr))
                        types.add(tp)
        self.want = frozenset(types)
        transforms = dict(S.TRANSFORMS)
        for qn in settings.jit_decorators:
            transforms[qn] = transforms["jax.jit"]
        for qn in settings.transforms:
            transforms.setdefault(qn, ((0, "fun"),))
        self.transforms = transforms
        self.solvers = frozenset(S.SOLVERS | set(settings.solvers))


def syntax_diagnostic(path: str, message: str, row: int, col: int) -> Diagnostic:
    return Diagnostic(
        code="EQX001", message=message, filename=path, row=max(row, 1), column=max(col, 1),
        end_row=max(row, 1), end_column=max(col, 1), severity="error",
    )


def lint_bytes(data: bytes, path: str, run: RunConfig, module_name: str = "", is_package: bool = False) -> FileResult:
    try:
        source, _ = decode(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as e:
        msg = f"Cannot decode file: {e}. Save it as UTF-8 (or declare its encoding)."
        return FileResult(path, [syntax_diagnostic(path, msg, 1, 1)], {}, [], [], [])
    return lint_source(source, path, run, module_name, is_package)


def lint_source(source: str, path: str, run: RunConfig, module_name: str = "", is_package: bool = False,
                parse=None) -> FileResult:
    """`parse`: a drop-in for `parse_module` (the language server's incremental parser)."""
    result = FileResult(path, [], {}, [], [], [])
    sup = noqa.parse(source)
    result.directives = [_directive(d) for d in sup.lines.values()] + [
        dict(_directive(d), file=True) for d in sup.file_directives
    ]
    if source.startswith("\ufeff"):
        source = source[1:]
    if len(source) > MAX_SOURCE_CHARS:
        # Generated files (tables, vendored bundles): minutes of analysis for nothing a person
        # wrote. Checked for syntax only, and said so.
        err = _python_syntax_error(source)
        if err is not None:
            result.diagnostics.append(syntax_diagnostic(path, *err))
        result.notes.append(
            f"file larger than {MAX_SOURCE_CHARS // 1_000_000} MB: checked for syntax errors only"
        )
        return result
    if _deeply_nested(source):
        # LibCST's native parser overflows the C stack (a segfault, not an exception) on a few
        # thousand nested brackets or lambdas; CPython rejects such files cleanly.
        err = _python_syntax_error(source)
        if err is not None:
            result.diagnostics.append(syntax_diagnostic(path, *err))
            return result
    try:
        module = (parse or parse_module)(source)
    except Exception as e:  # ParserSyntaxError, RecursionError, ...
        err = _python_syntax_error(source)
        if err is not None:
            result.diagnostics.append(syntax_diagnostic(path, *err))
        else:
            result.notes.append(f"LibCST cannot parse this file ({type(e).__name__}); skipped")
        return result
    ctx = None
    try:
        events, bounds = walk_module(module, run.want)
        ctx = FileContext(
            module, source, path, module_name, is_package=is_package,
            transforms=run.transforms, solvers=run.solvers,
            options=run.settings.rule_options,
        )
        ctx.events, ctx.event_bounds = events, bounds
        ctx.want = run.want
        ctx.reports = []
        stack = ctx.stack
        ctx.report = lambda code, node, message, fix=None, requires=None: ctx.reports.append(
            (code, node, message, fix, requires, ctx.scope, stack[-1] if stack else None)
        )
        ctx.build(events)
        ctx.values  # the value analysis: every collector and most rules ask it
        _replay(ctx, events, run, result)
        result.facts = _portable_facts(ctx.facts)
        if any(r[4] is not None for r in ctx.reports):
            result.digest = digest(source)
            result.text = source
            local = ProjectIndex.from_results([result])
        else:
            local = None
        result.diagnostics.extend(materialise(ctx, run, result, local))
        if not result.candidates:
            result.text = None
    except RecursionError:
        result.notes.append("file too deeply nested to analyse; skipped")
    finally:
        if ctx is not None:
            ctx.release()
    return result


_BRACKET = re.compile(r"[()\[\]{}]")
_DELTA = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}
MAX_NESTING = 150  # beyond CPython's own limit of 200 nested brackets, far below LibCST's
MAX_SOURCE_CHARS = 2_000_000  # 5x the largest file of the real-package corpus (lax.py, 389 kB)


def _deeply_nested(source: str) -> bool:
    """An upper bound on the nesting of brackets (the most opening minus closing brackets over
    any stretch of text, so brackets in strings only ever raise it), many lambdas, or a line
    so long (an operator chain thousands of terms long) that LibCST would take minutes."""
    if source.count("lambda") > MAX_NESTING or max(map(len, source.splitlines()), default=0) > 10_000:
        return True
    found = _BRACKET.findall(source)
    if len(found) <= MAX_NESTING:
        return False
    prefix = list(itertools.accumulate(map(_DELTA.__getitem__, found), initial=0))
    return max(map(operator.sub, prefix, itertools.accumulate(prefix, min))) > MAX_NESTING


def _directive(d) -> dict:
    """A noqa directive as JSON (without its run-time `used` set)."""
    out = dataclasses.asdict(d)
    out.pop("used", None)
    return out


def _portable_facts(facts: dict) -> dict:
    """The facts a file contributes to the project index, as plain JSON values. Keys starting
    with `_` are per-file scratch space of rules and are dropped; sets become sorted lists. So a
    result read back from the cache is exactly the result computed now."""
    import json

    def default(obj):
        if isinstance(obj, (set, frozenset)):
            return sorted(obj, key=repr)
        if isinstance(obj, tuple):
            return list(obj)
        raise TypeError(f"fact of type {type(obj).__name__} is not serialisable")

    kept = {k: v for k, v in facts.items() if isinstance(k, str) and not k.startswith("_")}
    return json.loads(json.dumps(kept, default=default))


def _python_syntax_error(source: str):
    try:
        ast.parse(source)
    except SyntaxError as e:
        msg = f"SyntaxError: {e.msg}"
        return msg, e.lineno or 1, (e.offset or 1)
    except (ValueError, RecursionError, MemoryError) as e:
        return f"SyntaxError: {e}", 1, 1
    return None


def _replay(ctx: FileContext, events: list, run: RunConfig, result: FileResult) -> None:
    instances = []
    for cls in run.collectors:
        instances.append(cls(ctx))
    for cls in run.rule_classes:
        instances.append(cls(ctx, run.settings.rule_options.get(cls.code)))
    broken: set = set()
    visit: dict = {}
    leave: dict = {}
    for tp, handlers in run.visit.items():
        visit[tp] = [(i, getattr(instances[i], name)) for i, name in handlers]
    for tp, handlers in run.leave.items():
        leave[tp] = [(i, getattr(instances[i], name)) for i, name in handlers]
    scope_types = SCOPE_TYPES
    scope_of = ctx.scope_of
    stack = ctx.stack
    # The try is inline: this loop runs for every event and every handler, so a helper call
    # per handler would cost more than most handlers do.
    for node, is_leave in events:
        tp = type(node)
        if is_leave:
            hs = leave.get(tp)
        else:
            if tp in scope_types:
                ctx.scope = scope_of[id(node)]
            stack.append(node)
            hs = visit.get(tp)
        if hs:
            for i, fn in hs:
                if broken and i in broken:
                    continue
                try:
                    fn(node)
                except Exception:
                    broken.add(i)
                    _internal_error(result, instances[i], ctx)
        if is_leave:
            stack.pop()
            if tp in scope_types:
                ctx.scope = ctx.scope.parent
    for i, inst in enumerate(instances):
        end = getattr(inst, "end_file", None)
        if end is not None and i not in broken:
            try:
                end()
            except Exception:
                _internal_error(result, inst, ctx)


def _internal_error(result: FileResult, inst, ctx) -> None:
    name = getattr(inst, "code", "") or type(inst).__name__
    tb = traceback.format_exc(limit=-3)
    result.errors.append(f"{name} failed on {ctx.path}: {tb.strip().splitlines()[-1]}")
    if "EQXLINT_DEBUG" in __import__("os").environ:
        sys.stderr.write(tb)




def finalize(results: list, run, read=None) -> list:
    from .finalize import finalize as _finalize

    return _finalize(results, run, read)


__all__ = ["RunConfig", "FileResult", "lint_source", "lint_bytes", "finalize"]
