"""Output formats, following Ruff: concise, full, json (Ruff's schema), json-lines, github,
sarif; plus `--statistics`."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Optional

from .. import __version__
from ..engine import registry
from ..core.diagnostics import SAFE


def _url(code: str) -> Optional[str]:
    doc = registry.doc(code)
    return doc.url if doc else None


def _name(code: str) -> str:
    doc = registry.doc(code)
    return doc.name if doc else ""


class _Texts:
    """Lazily read files to turn fix offsets into rows/columns."""

    def __init__(self):
        self.cache: dict = {}

    def rowcol(self, filename: str, offset: int, cell_source: Optional[str] = None):
        text = cell_source
        if text is None:
            if filename not in self.cache:
                try:
                    from ..core.source import decode

                    with open(filename, "rb") as f:
                        self.cache[filename] = decode(f.read())[0]
                except Exception:
                    self.cache[filename] = ""
            text = self.cache[filename]
        before = text[:offset]
        row = before.count("\n") + 1
        col = offset - (before.rfind("\n") + 1) + 1
        return {"row": row, "column": col}


def _file_region(d, texts: _Texts) -> tuple:
    """(line, column, end line, end column) of a finding in the file itself: for a notebook
    finding, the lines of the `.ipynb` JSON that hold the flagged source (tools that annotate
    the file, like GitHub and SARIF viewers, count those); else the finding's own."""
    if d.cell is None:
        return d.row, d.column, d.end_row, d.end_column
    key = ("ipynb", d.filename)
    if key not in texts.cache:
        try:
            with open(d.filename, "rb") as f:
                texts.cache[key] = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            texts.cache[key] = None
    text = texts.cache[key]
    from . import notebook

    start = notebook.file_position(text, d.cell, d.row, d.column) if text else None
    if start is None:
        return 1, 1, 1, 1
    end = notebook.file_position(text, d.cell, d.end_row, d.end_column) or start
    return start + end


def _cell_message(d) -> str:
    if d.cell is None:
        return d.message
    return f"cell {d.cell}, line {d.row}, column {d.column}: {d.message}"


def to_json_dict(d, texts: _Texts) -> dict:
    fix = None
    if d.fix is not None:
        fix = {
            "applicability": d.fix.applicability,
            "message": d.fix.message,
            "edits": [
                {
                    "content": e.content,
                    "location": texts.rowcol(d.filename, e.start, getattr(d, "_cell_source", None)),
                    "end_location": texts.rowcol(d.filename, e.end, getattr(d, "_cell_source", None)),
                }
                for e in d.fix.edits
            ],
        }
    out = {
        "cell": d.cell,
        "code": d.code,
        "end_location": {"column": d.end_column, "row": d.end_row},
        "filename": os.path.abspath(d.filename),
        "fix": fix,
        "location": {"column": d.column, "row": d.row},
        "message": d.message,
        "noqa_row": d.noqa_row,
        "severity": d.severity,
        "url": _url(d.code),
        "trace": _json_trace(d),
    }
    return out


def _json_trace(d) -> Optional[list]:
    """Why the code is traced, when the reason is not local: the steps of the call chain,
    innermost first (docs/output.md)."""
    if not d.trace:
        return None
    out = []
    for s in d.trace:
        step = {
            "function": s.get("function"),
            "how": s.get("how"),
            "by": s.get("by"),
            "transform": s.get("transform"),
            "filename": os.path.abspath(s["path"]) if s.get("path") else None,
            "row": s.get("row"),
        }
        if s.get("cell") is not None:
            step["cell"] = s["cell"]
        out.append(step)
    return out


def _trace_lines(d, pad: str) -> list:
    """The call chain under a finding in `full` output, one step a line."""
    if not d.trace:
        return []
    out = []
    for i, s in enumerate(d.trace):
        head = f"{pad} = trace: " if i == 0 else f"{pad}          "
        where = s.get("path") or "?"
        if s.get("cell") is not None:
            where += f":cell {s['cell']}"
        where += f":{s.get('row')}"
        how = s.get("how") or ""
        by = s.get("by")
        if by and how.endswith(" by"):
            text = f"`{s.get('function')}` {how} `{by}` ({where})"
        elif by:
            text = f"`{s.get('function')}` {how} in `{by}` ({where})"
        else:
            text = f"`{s.get('function')}` {how} ({where})"
        out.append(head + text)
    return out


def _loc(d) -> str:
    if d.cell is not None:
        return f"{d.filename}:cell {d.cell}:{d.row}:{d.column}"
    return f"{d.filename}:{d.row}:{d.column}"


def _fixable_mark(d, unsafe: bool) -> str:
    if d.fix is not None and (d.fix.applicability == SAFE or unsafe):
        return "[*] "
    return ""


def render(diags: list, fmt: str, *, unsafe_fixes: bool = False, show_fixes: bool = False,
           fixed: Optional[list] = None, files: int = 0, all_passed: bool = True,
           hidden: Optional[tuple] = None) -> str:
    """`all_passed=False`: never say "All checks passed!" (some paths could not be checked, or
    the run added `# noqa` directives instead). `hidden`: (count, baseline path) of the findings
    a baseline hid, for the summary."""
    texts = _Texts()
    if fmt == "json":
        return json.dumps([to_json_dict(d, texts) for d in diags], indent=2, sort_keys=True) + "\n"
    if fmt == "json-lines":
        return "".join(json.dumps(to_json_dict(d, texts), sort_keys=True) + "\n" for d in diags)
    if fmt == "github":
        lines = []
        for d in diags:
            level = {"error": "error", "warning": "warning", "info": "notice"}.get(d.severity, "warning")
            row, col, end_row, end_col = _file_region(d, texts)
            lines.append(
                f"::{level} title=eqxlint ({d.code}),file={os.path.abspath(d.filename)},line={row},"
                f"col={col},endLine={end_row},endColumn={end_col}::"
                f"{_loc(d)}: {d.code} {d.message}"
            )
        return "\n".join(lines) + ("\n" if lines else "")
    if fmt == "sarif":
        return json.dumps(_sarif(diags, texts), indent=2) + "\n"
    out = []
    for d in diags:
        out.append(f"{_loc(d)}: {d.code} {_fixable_mark(d, unsafe_fixes)}{d.message}")
        if fmt == "full":
            out.extend(_snippet(d, texts))
    out.extend(_summary(diags, unsafe_fixes, show_fixes, fixed or [], all_passed, hidden))
    return "\n".join(out) + ("\n" if out else "")


def _snippet(d, texts: _Texts) -> list:
    if d.cell is not None:
        src = getattr(d, "_cell_source", None) or ""
    else:
        texts.rowcol(d.filename, 0)
        src = texts.cache.get(d.filename, "")
    lines = src.splitlines()
    if not (0 < d.row <= len(lines)):
        return []
    width = len(str(d.end_row))
    pad = " " * width
    line = lines[d.row - 1]
    end_col = d.end_column if d.end_row == d.row else len(line) + 1
    caret = " " * (d.column - 1) + "^" * max(1, end_col - d.column)
    out = [f"{pad} |", f"{str(d.row).rjust(width)} | {line}", f"{pad} | {caret} {d.code}", f"{pad} |"]
    if d.fix is not None:
        tag = "" if d.fix.applicability == SAFE else " (unsafe)"
        out.append(f"{pad} = help: {d.fix.message}{tag}")
    out.extend(_trace_lines(d, pad))
    doc = registry.doc(d.code)
    if doc is not None:
        out.append(f"{pad} = docs: eqxlint rule {d.code}")
    out.append("")
    return out


SEVERITIES = ("error", "warning", "info")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 or word == "info" else "s")


def by_severity(diags) -> str:
    """`3 errors, 2 warnings, 1 info`: how many findings of each severity."""
    counts = Counter(d.severity for d in diags)
    order = list(SEVERITIES) + sorted(set(counts) - set(SEVERITIES))
    return ", ".join(_plural(counts[s], s) for s in order if counts[s])


def _summary(diags, unsafe: bool, show_fixes: bool, fixed: list, all_passed: bool = True,
             hidden: Optional[tuple] = None) -> list:
    out = []
    if show_fixes and fixed:
        out.append("")
        out.append(f"Fixed {_plural(len(fixed), 'finding')}:")
        by_file: dict = {}
        for d in fixed:
            by_file.setdefault(d.filename, Counter())[(d.code, _name(d.code))] += 1
        for f, counts in sorted(by_file.items()):
            out.append(f"- {f}:")
            for (code, name), n in sorted(counts.items()):
                out.append(f"    {n} × {code} ({name})")
    n = len(diags)
    if not diags:
        if fixed:
            out.append(f"Found {_plural(len(fixed), 'finding')} ({len(fixed)} fixed, 0 remaining).")
        elif all_passed:
            out.append("All checks passed!")
    elif fixed:
        out.append(f"Found {_plural(n + len(fixed), 'finding')} ({len(fixed)} fixed, {n} remaining: "
                   f"{by_severity(diags)}).")
    else:
        out.append(f"Found {_plural(n, 'finding')}: {by_severity(diags)}.")
    if hidden is not None and hidden[0]:
        out.append(f"{_plural(hidden[0], 'finding')} hidden by the baseline {hidden[1]}.")
    safe = sum(1 for d in diags if d.fix is not None and d.fix.applicability == SAFE)
    unsafe_n = sum(1 for d in diags if d.fix is not None and d.fix.applicability != SAFE)
    if unsafe:
        if safe + unsafe_n:
            out.append(f"[*] {safe + unsafe_n} fixable with the `--fix --unsafe-fixes` options.")
    else:
        if safe:
            msg = f"[*] {safe} fixable with the `--fix` option"
            if unsafe_n:
                msg += f" ({unsafe_n} hidden fix{'es' if unsafe_n != 1 else ''} can be enabled with the `--unsafe-fixes` option)"
            out.append(msg + ".")
        elif unsafe_n:
            out.append(f"No fixes available ({unsafe_n} hidden fix{'es' if unsafe_n != 1 else ''} can be enabled with the `--unsafe-fixes` option).")
    return out


def statistics(diags: list, fmt: str, unsafe: bool = False) -> str:
    counts = Counter(d.code for d in diags)
    fixable = {d.code for d in diags if d.fix is not None and (d.fix.applicability == SAFE or unsafe)}
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if fmt == "json":
        return json.dumps(
            [{"code": c, "name": _name(c), "count": n, "fixable": c in fixable} for c, n in rows], indent=2
        ) + "\n"
    width = max((len(str(n)) for _, n in rows), default=1)
    lines = [f"{str(n).rjust(width)}\t{c}\t{'[*] ' if c in fixable else '[ ] '}{_name(c)}" for c, n in rows]
    return "\n".join(lines) + ("\n" if lines else "")


def _sarif(diags: list, texts: Optional[_Texts] = None) -> dict:
    texts = texts or _Texts()
    codes = sorted({d.code for d in diags} | set(registry.all_codes()))
    rules = []
    for c in codes:
        doc = registry.doc(c)
        if doc is None:
            continue
        rules.append(
            {
                "id": c,
                "name": doc.name,
                "shortDescription": {"text": doc.summary or doc.name},
                "helpUri": doc.url,
                "properties": {"severity": doc.severity},
            }
        )
    level = {"error": "error", "warning": "warning", "info": "note"}
    results = []
    for d in diags:
        row, col, end_row, end_col = _file_region(d, texts)
        region = {"startLine": row, "startColumn": col, "endLine": end_row, "endColumn": end_col}
        results.append(
            {
                "ruleId": d.code,
                "level": level.get(d.severity, "warning"),
                "message": {"text": _cell_message(d)},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": os.path.relpath(d.filename).replace(os.sep, "/")},
                            "region": region,
                        }
                    }
                ],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "eqxlint",
                        "version": __version__,
                        "informationUri": "https://github.com/eqxlint/eqxlint",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
