"""The project phase: cross-file rules over the project index, the conditions of per-file
findings decided on it (and the candidates it confirms materialised), the call chains that
explain findings in traced code, per-file ignores, `# noqa` and unused suppressions."""

from __future__ import annotations

from typing import Callable, Optional

from ..core.diagnostics import SAFE, Diagnostic, Edit, Fix
from ..core.source import digest
from ..project.callgraph import describe_chain
from ..project.index import ProjectIndex, conditions
from ..suppress import noqa
from . import registry
from .materialise import materialise_candidates

TRACE_MARK = "{trace}"


def finalize(results: list, run, read: Optional[Callable[[str], Optional[str]]] = None,
             parse: Optional[Callable] = None) -> list:
    """Cross-file rules, conditions, per-file ignores and suppressions -> final diagnostics.

    The rare findings that other files decide (candidates, see `eqxlint.engine.materialise`)
    need their file's text again: the result's in-memory text when it was linted in this
    process, else `read(path)` (default: the file on disk), which must be the text the result
    was computed from (its digest is checked; otherwise those findings are dropped, with a note
    on the result). `parse(path, text)`, when given, parses that text instead of
    `parse_module(text)` (the language server's incremental parser)."""
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
        if r.candidates:
            diags += _confirmed(r, index, run, read, parse)
        for d in diags:
            if d.requires is not None:
                explain(d, index)
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


def _unused(sup: noqa.Suppressions, path: str, run, docs) -> list:
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


def _confirmed(r, index, run, read, parse=None) -> list:
    """Materialise the candidates of one file that the project makes true."""
    todo = [c for c in r.candidates if c["code"] in run.enabled and index.satisfies(c["requires"])]
    if not todo:
        return []
    source = r.text
    if source is None:
        source = read(r.path) if read is not None else _read(r.path)
    if source is None or (r.digest and digest(source) != r.digest):
        r.notes.append("the file changed since it was linted: findings that depend on other files were skipped")
        return []
    try:
        return materialise_candidates(r.path, source, todo, run,
                                      parse=(lambda text: parse(r.path, text)) if parse else None)
    except Exception as e:  # never let the project phase fail on one file
        r.errors.append(f"could not place findings in {r.path}: {type(e).__name__}: {e}")
        return []




def _read(path: str) -> Optional[str]:
    from ..core.source import decode

    try:
        with open(path, "rb") as f:
            return decode(f.read())[0]
    except (OSError, UnicodeDecodeError, SyntaxError, LookupError):
        return None


def explain(d: Diagnostic, index) -> None:
    """Fill the `{trace}` mark of a message with why the code is traced, from the project's
    call graph, and keep the whole chain on the diagnostic (JSON, `full` output)."""
    if TRACE_MARK not in d.message:
        return
    fn = None
    reverse = False
    for c in conditions(d.requires):
        if c[0] in ("traced", "reverse"):
            fn, reverse = c[1], c[0] == "reverse"
            break
    steps = index.graph.chain(fn, limit=CHAIN_LIMIT, reverse=reverse) if fn is not None else []
    d.message = d.message.replace(TRACE_MARK, short_chain(steps, len(steps) >= CHAIN_LIMIT))
    if len(steps) > 1 or steps and steps[0]["path"] != d.filename:
        d.trace = steps


CHAIN_LIMIT = 32  # steps kept on a finding (JSON, `full` output); the message shows at most three


def short_chain(steps: list, cut: bool = False) -> str:
    """The one-line reason: all steps up to three, else the first two, how many steps it leaves
    out (and through which functions), and the last one; `cut`: the chain goes on past its last
    step. Every call site cited is a real one: the steps left out are said to be left out."""
    if len(steps) <= 3:
        line = describe_chain(steps)
    else:
        last = steps[-1]
        through = [s["function"] for s in steps[3:-1]]
        n = len(steps) - 3
        gap = f"{n} more step{'s' if n > 1 else ''}"
        if through:
            gap += " through " + ", ".join(f"`{f}`" for f in through[:3]) + (", ..." if len(through) > 3 else "")
        tail = describe_chain([last]).replace(" is traced: ", " is ", 1)
        line = f"{describe_chain(steps[:2])}, ... ({gap}), and {tail}"
    return line + (", ... (and further callers)" if cut else "")
