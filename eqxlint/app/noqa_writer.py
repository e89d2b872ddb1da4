"""`eqxlint check --add-noqa`: write `# noqa: CODE` on every line with findings, as Ruff does.

- An existing directive on the line is merged with, never duplicated: `# noqa: E501` becomes
  `# noqa: E501, EQX209` (other tools' codes are kept, in their order; ours are appended sorted).
  A blanket `# noqa` already covers everything and is left alone.
- The comment goes on the finding's `noqa_row`. When that line ends inside a multi-line string or
  with a backslash continuation, a comment there would change the code (or break it), so it goes
  on the first line after it where a comment is possible: the line the string or the continuation
  ends on.
- Notebooks: the comment goes on the line in its cell; only the changed cells' `source` is
  rewritten (see eqxlint.notebook).
- EQX001 (the file does not parse) and EQX002 (unused `noqa`) are never silenced this way.
- Running it twice changes nothing: the second run finds the findings suppressed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..engine import run as engine
from . import fixes
from ..suppress import noqa
from ..suppress.noqa import comment_rows
from ..core.source import decode
from ..engine.materialise import line_starts

NOT_SILENCED = ("EQX001", "EQX002")


def add_to_source(source: str, codes_by_row: dict, tokenize_source: Optional[str] = None) -> tuple:
    """Add `# noqa: CODES` to the given rows (1-based) of `source`. Returns (new source, number
    of lines changed). `tokenize_source` (same rows) is used to find strings and continuations
    when `source` itself does not tokenize (notebook cells with magics)."""
    moved = comment_rows(tokenize_source if tokenize_source is not None else source)
    wanted: dict = {}
    for row, codes in codes_by_row.items():
        wanted.setdefault(moved.get(row, row), set()).update(codes)
    sup = noqa.parse(source)
    starts = line_starts(source)
    edits = []
    for row, codes in sorted(wanted.items()):
        if row - 1 >= len(starts):
            continue
        d = sup.lines.get(row)
        if d is not None:
            if d.codes is None:
                continue  # blanket `# noqa` already covers every code
            merged = list(d.codes) + sorted(c for c in codes if c not in d.codes)
            if merged == list(d.codes):
                continue
            edits.append((d.start, d.end, "# noqa: " + ", ".join(merged)))
            continue
        begin = starts[row - 1]
        end = starts[row] if row < len(starts) else len(source)
        line = source[begin:end]
        body = line.rstrip("\r\n")
        content = body.rstrip(" \t")
        if not content.strip():
            continue
        edits.append((begin + len(content), begin + len(body), "  # noqa: " + ", ".join(sorted(codes))))
    out = source
    for s, e, text in sorted(edits, reverse=True):
        out = out[:s] + text + out[e:]
    return out, len(edits)


def _group(diags: list) -> dict:
    """{filename: {cell or None: {row: {codes}}}}"""
    out: dict = {}
    for d in diags:
        if d.code in NOT_SILENCED:
            continue
        row = d.noqa_row or d.row
        out.setdefault(d.filename, {}).setdefault(d.cell, {}).setdefault(row, set()).add(d.code)
    return out


def _write_py(path: Path, by_row: dict, report) -> int:
    try:
        source, encoding = decode(path.read_bytes())
    except (OSError, UnicodeDecodeError, SyntaxError, LookupError) as e:
        report.rejected.append(f"{path}: cannot add noqa: {e}")
        return 0
    new, n = add_to_source(source, by_row)
    if n and new != source:
        try:
            fixes.write_atomic(path, new, encoding)
        except (OSError, UnicodeEncodeError) as e:
            report.rejected.append(f"{path}: could not write: {e}")
            return 0
    return n


def _write_notebook(path: Path, by_cell: dict, report) -> int:
    from . import notebook

    try:
        text, nb = notebook.load(path)
    except (notebook.NotebookError, OSError) as e:
        report.rejected.append(f"{path}: cannot add noqa: {e}")
        return 0
    sources = dict(notebook.code_cells(nb))
    changed = {}
    total = 0
    for cell, by_row in by_cell.items():
        if cell not in sources:
            continue
        masked, _ = notebook._mask_magics(sources[cell])
        new, n = add_to_source(sources[cell], by_row, tokenize_source=masked)
        if n and new != sources[cell]:
            changed[cell] = new
            total += n
    if changed:
        try:
            fixes.write_atomic(path, notebook.patch_sources(text, changed), "utf-8")
        except (OSError, UnicodeEncodeError) as e:
            report.rejected.append(f"{path}: could not write: {e}")
            return 0
    return total


def add_noqa(paths, settings, *, jobs: Optional[int] = None, cache: bool = True):
    """Add `# noqa` directives for every finding under `paths`. Returns the report of a check run
    afterwards (what is left: EQX001/EQX002 and anything that could not take a comment), with the
    number of lines changed as `report.added`."""
    from . import api

    first = api.check_paths(paths, settings=settings, jobs=jobs, cache=cache)
    added = 0
    rejected: list = list(first.rejected)
    holder = api.CheckReport([], 0, [], [], [], [], {}, rejected)
    for filename, by_cell in sorted(_group(first.diagnostics).items()):
        p = Path(filename)
        if p.suffix == ".ipynb":
            added += _write_notebook(p, by_cell, holder)
        else:
            added += _write_py(p, by_cell.get(None, {}), holder)
    report = api.check_paths(paths, settings=settings, jobs=jobs, cache=cache) if added else first
    report.rejected = rejected + [r for r in report.rejected if r not in rejected]
    report.added = added
    return report

