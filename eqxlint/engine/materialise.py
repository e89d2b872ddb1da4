"""Turning rule reports into diagnostics: positions, fix edits, and the reports whose fate only
the whole project decides.

A report that carries conditions (`requires=`) is first decided on this file's own facts. The
conditions are monotone (more files can only add traced contexts, Module classes, key-consuming
callees), so a report true on the file alone is true in every project: it is materialised now,
exactly as an unconditional one. A report not decided yet becomes a *candidate*: its node is
recorded by type and ordinal in the walk, and only if the project makes it true does `finalize`
re-read that one file to compute its position and fix (`materialise_candidates`). Findings that
hinge on other files are rare; every other file is parsed once.
"""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..core.diagnostics import Diagnostic, Edit, Fix
from ..core.rule import RuleFix
from ..suppress import noqa
from ..syntax.positions import LocalPositions
from . import registry

_NEWLINE = re.compile(r"\r\n|\r|\n")


def line_starts(source: str) -> list:
    starts = [0]
    for m in _NEWLINE.finditer(source):
        starts.append(m.end())
    return starts


def scope_path(scope) -> str:
    names = []
    while scope is not None:
        if scope.name:
            names.append(scope.name)
        elif scope.kind == "lambda":
            names.append("<lambda>")
        scope = scope.parent
    return ".".join(reversed(names))


def materialise(ctx, run, result, local_index) -> list:
    """Diagnostics for the reports decided now; undecided ones go to `result.candidates`."""
    out = []
    if not ctx.reports:
        return out
    starts = None
    # A finding on a line that ends inside a multi-line string or with a backslash is silenced
    # by a `# noqa` on the line where that string/continuation ends (as Ruff).
    noqa_rows = None
    docs = {c: registry.doc(c) for c in {r[0] for r in ctx.reports}}
    deferred = []
    for report in ctx.reports:
        code, node, message, rfix, requires, scope, hint = report
        if requires is not None and not local_index.satisfies(requires):
            deferred.append(report)
            continue
        pos = ctx.position(node, hint)
        if pos is None:
            continue
        row, col, end_row, end_col = pos
        fix = None
        if rfix is not None:
            if starts is None:
                starts = line_starts(ctx.source)
            fix = build_fix(ctx, rfix, starts, hint)
        if noqa_rows is None:
            noqa_rows = noqa.comment_rows(ctx.source)
        doc = docs.get(code)
        fn = scope.function if scope is not None else None
        out.append(
            Diagnostic(
                code=code, message=message, filename=ctx.path, row=row, column=col + 1,
                end_row=end_row, end_column=end_col + 1,
                severity=doc.severity if doc else "warning", fix=fix, noqa_row=noqa_rows.get(row, row),
                requires=requires, context=scope_path(fn),
                line_text=" ".join(ctx.line_comment(row).split()),
            )
        )
    if deferred:
        result.candidates = _candidates(ctx, deferred)
    return out


# ---------------------------------------------------------------------------- candidates
def _ordinals(ctx, nodes: list) -> dict:
    """{id(node): (type name, ordinal among the nodes of that type in walk order)}."""
    from ..syntax.walker import walk_module

    types = {type(n) for n in nodes}
    recorded = {type(n) for n, _ in ctx.events} if types - set(ctx.want) else None
    if recorded is None or not (types - recorded):
        events = ctx.events
    else:
        events, _ = walk_module(ctx.module, frozenset(types))
    counts: dict = {}
    out: dict = {}
    wanted = {id(n) for n in nodes}
    for n, leave in events:
        if leave:
            continue
        tp = type(n)
        if tp not in types:
            continue
        k = counts.get(tp, 0)
        counts[tp] = k + 1
        if id(n) in wanted:
            out[id(n)] = (tp.__name__, k)
    return out


def _candidates(ctx, reports: list) -> list:
    nodes = []
    for code, node, message, rfix, requires, scope, hint in reports:
        nodes.append(node)
        if rfix is not None:
            nodes.extend(old for old, _ in rfix.replacements)
    where = _ordinals(ctx, nodes)
    out = []
    for code, node, message, rfix, requires, scope, hint in reports:
        loc = where.get(id(node))
        if loc is None:
            continue
        cand = {"code": code, "node": list(loc), "message": message, "requires": _plain(requires),
                "context": scope_path(scope.function if scope is not None else None)}
        if rfix is not None:
            reps = []
            for old, new in rfix.replacements:
                oloc = where.get(id(old))
                if oloc is None:
                    reps = None
                    break
                reps.append([list(oloc), new if isinstance(new, str) else ctx.module.code_for_node(new)])
            if reps is not None:
                imports = [[m, a] for m, a in rfix.imports if not _imported(ctx, m, a)]
                cand["fix"] = {"message": rfix.message, "applicability": rfix.applicability,
                               "replacements": reps, "imports": imports}
        out.append(cand)
    return out


def _plain(requires):
    if requires is None:
        return None
    if isinstance(requires[0], str):
        return [list(requires)]
    return [list(c) for c in requires]


class _Parsed:
    """What positions and fixes need of a re-read file (a light `FileContext`)."""

    def __init__(self, module, source, events, bounds, aliases):
        self.module, self.source, self.events, self.event_bounds = module, source, events, bounds
        self.aliases = aliases
        self._pos = LocalPositions(self, inclusive=False)
        self._ws = LocalPositions(self, inclusive=True)
        self.stack: list = []

    def position(self, node, hint=None):
        return self._pos.get(node, hint)

    def whitespace_range(self, node, hint=None):
        return self._ws.get(node, hint)

    def line_comment(self, row: int) -> str:
        lines = self.source.splitlines()
        return lines[row - 1] if 0 < row <= len(lines) else ""


def materialise_candidates(path: str, source: str, candidates: list, run, parse=None) -> list:
    """Diagnostics for `candidates` of one file whose conditions the project made true, from
    the file's text (read again: it must be the text the candidates were computed from).
    `parse`: a drop-in for `parse_module` (the language server's incremental parser)."""
    from ..syntax.parsing import parse_module
    from ..syntax.walker import walk_module

    text = source[1:] if source.startswith("\ufeff") else source
    module = (parse or parse_module)(text)
    types = set()
    for c in candidates:
        types.add(c["node"][0])
        for (tname, _), _new in (c.get("fix") or {}).get("replacements", ()):
            types.add(tname)
    want = frozenset(getattr(cst, t) for t in types) | frozenset({cst.Module, cst.SimpleStatementLine})
    events, bounds = walk_module(module, want)
    by_type: dict = {}
    for n, leave in events:
        if not leave:
            by_type.setdefault(type(n).__name__, []).append(n)
    parsed = _Parsed(module, text, events, bounds, {})
    starts = None
    noqa_rows = noqa.comment_rows(text)
    out = []
    for c in candidates:
        tname, k = c["node"]
        nodes = by_type.get(tname, [])
        if k >= len(nodes):
            continue
        node = nodes[k]
        pos = parsed.position(node)
        if pos is None:
            continue
        row, col, end_row, end_col = pos
        fix = None
        f = c.get("fix")
        if f is not None:
            if starts is None:
                starts = line_starts(text)
            reps = []
            for (rt, rk), new in f["replacements"]:
                cands = by_type.get(rt, [])
                if rk < len(cands):
                    reps.append((cands[rk], new))
            if len(reps) == len(f["replacements"]):
                fix = build_fix(parsed, RuleFix(f["message"], f["applicability"], reps, [tuple(i) for i in f["imports"]]), starts)
        doc = registry.doc(c["code"])
        out.append(
            Diagnostic(
                code=c["code"], message=c["message"], filename=path, row=row, column=col + 1,
                end_row=end_row, end_column=end_col + 1,
                severity=doc.severity if doc else "warning", fix=fix, noqa_row=noqa_rows.get(row, row),
                requires=tuple(tuple(x) for x in c["requires"]) if c.get("requires") else None,
                context=c.get("context", ""),
                line_text=" ".join(parsed.line_comment(row).split()),
            )
        )
    return out


# ---------------------------------------------------------------------------- fixes
def _offset(starts: list, row: int, col: int) -> int:
    return starts[row - 1] + col


def _imported(ctx, module: str, alias: Optional[str]) -> bool:
    aliases = ctx.aliases
    if (alias or module) in aliases and aliases[alias or module] == module:
        return True
    return alias is None and module in aliases


def build_fix(ctx, rfix: RuleFix, starts: list, hint=None) -> Optional[Fix]:
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
        if _imported(ctx, module, alias):
            continue
        edits.append(_import_edit(ctx, module, alias, starts))
    edits.sort(key=lambda e: (e.start, e.end))
    for a, b in zip(edits, edits[1:]):
        if a.end > b.start:
            return None
    return Fix(rfix.message, rfix.applicability, tuple(edits))


def _import_edit(ctx, module: str, alias: Optional[str], starts: list) -> Edit:
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
