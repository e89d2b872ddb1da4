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

from .. import __version__
from ..suppress import noqa
from . import registry
from ..syntax.parsing import parse_module
from ..semantics import names as S
from ..semantics.context import CONTEXT_TYPES, SCOPE_TYPES, FileContext
from ..core.diagnostics import SAFE, UNSAFE, Diagnostic, Edit, Fix
from ..core.rule import ProjectRule, Rule, RuleFix
from ..core.source import decode
from ..syntax.walker import walk_module

# Words of which a file must contain one for the per-file rules to have anything to find.
TRIGGERS = ("jax", "equinox", "eqx", "lax", "Primitive", "primitive", "noqa")
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass
class FileResult:
    path: str
    diagnostics: list  # Diagnostic, before suppression
    facts: dict
    directives: list  # serialised noqa directives
    errors: list  # internal errors (strings)
    notes: list  # non-finding notes (e.g. LibCST could not parse valid Python)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "facts": self.facts,
            "directives": self.directives,
            "errors": self.errors,
            "notes": self.notes,
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
        )


class RunConfig:
    """Everything a worker needs to lint files: enabled rules, dispatch tables, options."""

    def __init__(self, settings, enabled: Optional[frozenset] = None):
        self.settings = settings
        self.enabled = enabled if enabled is not None else settings.enabled_codes()
        rules = registry.all_rules()
        from ..project.index import COLLECTORS

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
        self.triggers = TRIGGERS + tuple(
            {q.split(".")[0] for q in settings.jit_decorators + settings.transforms + settings.solvers}
        )


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


def lint_source(source: str, path: str, run: RunConfig, module_name: str = "", is_package: bool = False) -> FileResult:
    result = FileResult(path, [], {}, [], [], [])
    sup = noqa.parse(source)
    result.directives = [_directive(d) for d in sup.lines.values()] + [
        dict(_directive(d), file=True) for d in sup.file_directives
    ]
    if source.startswith("\ufeff"):
        source = source[1:]
    if not any(t in source for t in run.triggers):
        # Nothing JAX-related to find: only check that the file is valid Python (for CPython or,
        # newer syntax on an older interpreter, for LibCST: EQX001 only when neither accepts it).
        err = _python_syntax_error(source)
        if err is not None and not _deeply_nested(source) and _libcst_parses(source):
            err = None
        if err is not None:
            result.diagnostics.append(syntax_diagnostic(path, *err))
        return result
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
        module = parse_module(source)
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
        ctx.reports = []
        stack = ctx.stack
        ctx.report = lambda code, node, message, fix=None, requires=None: ctx.reports.append(
            (code, node, message, fix, requires, ctx.scope, stack[-1] if stack else None)
        )
        ctx.build(events)
        _replay(ctx, events, run, result)
        result.diagnostics.extend(_materialise(ctx, run, result))
        result.facts = _portable_facts(ctx.facts)
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


def _libcst_parses(source: str) -> bool:
    try:
        parse_module(source)
        return True
    except Exception:
        return False


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


def line_starts(source: str) -> list[int]:
    starts = [0]
    for m in _NEWLINE.finditer(source):
        starts.append(m.end())
    return starts


def _materialise(ctx: FileContext, run: RunConfig, result: FileResult) -> list:
    out = []
    if not ctx.reports:
        return out
    starts = None
    # A finding on a line that ends inside a multi-line string or with a backslash is silenced
    # by a `# noqa` on the line where that string/continuation ends (as Ruff).
    noqa_rows = noqa.comment_rows(ctx.source)
    docs = {c: registry.doc(c) for c in {r[0] for r in ctx.reports}}
    for code, node, message, rfix, requires, scope, hint in ctx.reports:
        pos = ctx.position(node, hint)
        if pos is None:
            continue
        row, col, end_row, end_col = pos
        fix = None
        if rfix is not None:
            if starts is None:
                starts = line_starts(ctx.source)
            fix = _build_fix(ctx, rfix, starts, hint)
        doc = docs.get(code)
        fn = scope.function if scope is not None else None
        out.append(
            Diagnostic(
                code=code, message=message, filename=ctx.path, row=row, column=col + 1,
                end_row=end_row, end_column=end_col + 1,
                severity=doc.severity if doc else "warning", fix=fix, noqa_row=noqa_rows.get(row, row),
                requires=requires, context=_scope_path(fn),
                line_text=" ".join(ctx.line_comment(row).split()),
            )
        )
    return out


def _scope_path(scope) -> str:
    names = []
    while scope is not None:
        if scope.name:
            names.append(scope.name)
        elif scope.kind == "lambda":
            names.append("<lambda>")
        scope = scope.parent
    return ".".join(reversed(names))


def _offset(starts: list[int], row: int, col: int) -> int:
    return starts[row - 1] + col


def _build_fix(ctx: FileContext, rfix: RuleFix, starts: list[int], hint=None) -> Optional[Fix]:
    edits = []
    for old, new in rfix.replacements:
        rng = ctx.whitespace_range(old, hint)
        if rng is None:
            return None
        start = _offset(starts, rng[0], rng[1])
        end = _offset(starts, rng[2], rng[3])
        old_code = ctx.module.code_for_node(old)
        if ctx.source[start:end] != old_code:
            return None  # the node's text does not round-trip: never guess
        new_code = new if isinstance(new, str) else ctx.module.code_for_node(new)
        edits.append(Edit(start, end, new_code))
    for module, alias in rfix.imports:
        if (alias or module) in ctx.aliases and ctx.aliases[alias or module] == module:
            continue
        if alias is None and module in ctx.aliases:
            continue
        edits.append(_import_edit(ctx, module, alias, starts))
    edits.sort(key=lambda e: (e.start, e.end))
    for a, b in zip(edits, edits[1:]):
        if a.end > b.start:
            return None
    return Fix(rfix.message, rfix.applicability, tuple(edits))


def _import_edit(ctx: FileContext, module: str, alias: Optional[str], starts: list[int]) -> Edit:
    """Insert `import module as alias` after the last top-level import (or the docstring)."""
    text = f"import {module} as {alias}" if alias and alias != module else f"import {module}"
    newline = "\r\n" if "\r\n" in ctx.source[:4096] else "\n"
    anchor = None
    for i, stmt in enumerate(ctx.module.body):
        small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) and stmt.body else None
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            anchor = stmt
        elif i == 0 and isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString):
            anchor = stmt  # the module docstring
        elif anchor is not None or not isinstance(stmt, cst.SimpleStatementLine):
            break
    if anchor is not None:
        rng = ctx.whitespace_range(anchor)
        off = _offset(starts, rng[2], rng[3])
    else:
        off = 0
        if ctx.module.body:
            off = _offset(starts, ctx.position(ctx.module.body[0])[0], 0)
    if off >= len(ctx.source) and ctx.source and not ctx.source.endswith(("\n", "\r")):
        return Edit(off, off, newline + text + newline)
    return Edit(off, off, text + newline)


# ---------------------------------------------------------------------------- project phase
def finalize(results: list, run: RunConfig) -> list:
    """Cross-file rules, conditions, per-file ignores and suppressions -> final diagnostics."""
    from ..project.index import ProjectIndex

    index = ProjectIndex.from_results(results)
    by_path = {r.path: r for r in results}
    extra: dict = {}
    for cls in run.project_rules:
        opts = dict(cls.options)
        opts.update(run.settings.rule_options.get(cls.code, {}))
        for diag in cls.check_project(index, opts):
            if diag.filename in by_path:
                extra.setdefault(diag.filename, []).append(diag)
    final = []
    docs = registry.catalogue.load_all()
    for r in results:
        diags = [d for d in r.diagnostics if d.code in run.enabled or d.code == "EQX001"]
        diags += extra.get(r.path, [])
        diags = [d for d in diags if d.requires is None or index.satisfies(d.requires)]
        ignored = run.settings.ignored_for(r.path)
        diags = [d for d in diags if d.code not in ignored]
        sup = _suppressions(r.directives)
        kept = [d for d in diags if not sup.suppresses(d.code, d.noqa_row or d.row)]
        if "EQX002" in run.enabled and "EQX002" not in ignored:
            kept.extend(_unused(sup, r.path, run, docs))
        for d in kept:
            doc = docs.get(d.code)
            if doc is not None:
                d.severity = doc.severity
        final.extend(kept)
    final.sort(key=Diagnostic.sort_key)
    return final


def _suppressions(directives: list) -> noqa.Suppressions:
    sup = noqa.Suppressions(lines={})
    codes = []
    for d in directives:
        d = dict(d)
        is_file = d.pop("file", False)
        d["used"] = set()
        directive = noqa.Directive(**d)
        if is_file:
            sup.file_directives.append(directive)
            if directive.codes is None:
                sup.file_all = True
            else:
                codes.extend(directive.codes)
        else:
            sup.lines[directive.row] = directive
    sup.file_codes = tuple(codes)
    return sup


def _unused(sup: noqa.Suppressions, path: str, run: RunConfig, docs) -> list:
    out = []
    known = set(registry.all_codes())
    for d in list(sup.lines.values()) + sup.file_directives:
        if d.codes is None:
            continue
        ours = [c for c in d.codes if c.startswith("EQX")]
        unknown = [c for c in ours if c not in known and not any(k.startswith(c) for k in known)]
        unused = [
            c for c in ours
            if c not in unknown and not any(u.startswith(c) for u in d.used)
            and any(k.startswith(c) for k in run.enabled)
        ]
        if not unknown and not unused:
            continue
        parts = []
        if unused:
            parts.append("unused: " + ", ".join(unused))
        if unknown:
            parts.append("unknown code: " + ", ".join(unknown))
        remaining = [c for c in d.codes if c not in unused and c not in unknown]
        message = f"Unused `noqa` directive ({'; '.join(parts)})"
        fix = _remove_codes_fix(d, remaining, path)
        out.append(
            Diagnostic(
                code="EQX002", message=message, filename=path, row=d.row, column=d.col + 1,
                end_row=d.row, end_column=d.end_col + 1, severity="warning", fix=fix,
                noqa_row=d.row, line_text=d.text,
            )
        )
    return out


def _remove_codes_fix(d, remaining: list, path: str) -> Optional[Fix]:
    """Rewrite the directive without the unused codes, or remove it (with the spaces before it)."""
    if remaining:
        return Fix("Remove unused `noqa` codes", SAFE, (Edit(d.start, d.end, f"# noqa: {', '.join(remaining)}"),))
    return Fix("Remove unused `noqa` directive", SAFE, (Edit(d.ws_start, d.end, ""),))


__all__ = ["RunConfig", "FileResult", "lint_source", "lint_bytes", "finalize", "UNSAFE", "__version__"]
