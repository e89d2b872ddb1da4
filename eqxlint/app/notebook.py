"""Jupyter notebooks (`.ipynb`): lint every code cell as one module, in file order, and map each
finding back to its cell; apply fixes by rewriting only the `source` of the cells that change.

How it works (see docs/notebooks.md):

- The code cells are concatenated, in order, into one *virtual module*, so imports, aliases and
  traced scopes carry from cell to cell as they do when the notebook runs top to bottom. Every
  cell keeps its own rows: line k of a cell is one line of the module.
- IPython syntax (`%magic`, `%%cell_magic`, `!shell`, `x = !cmd`, `obj?`) is replaced, line for
  line, by a placeholder statement `pass  # eqxlint-magic:N`, so the rows still map 1:1. A cell
  magic whose body is Python (`%%time`, `%%timeit`, `%%capture`, ...) keeps its body; any other
  cell magic (`%%bash`, `%%writefile`, ...) hides the whole cell. A cell that is not valid Python
  on its own is one EQX001 finding in that cell and is left out of the module (as blank lines).
- Cell numbers are 1-based positions in the notebook's `cells` array, markdown cells included:
  `cell 5` is `nb["cells"][4]`, the fifth cell you scroll past in Jupyter.
- The file is read and patched as plain JSON text, not through nbformat: a fix replaces only the
  characters of the changed cells' `"source"` values (reusing the original JSON text of every line
  that did not change), so indentation, key order, outputs, metadata, escapes and the trailing
  newline stay byte for byte. nbformat would re-serialise the whole file (and may upgrade or
  normalise it), which is exactly what a linter must not do.
"""

from __future__ import annotations

import ast
import bisect
import dataclasses
import json
import re
from json.decoder import scanstring
from pathlib import Path
from typing import Optional

from ..engine import run as engine
from . import fixes
from ..core.diagnostics import Diagnostic, Edit, Fix

# Cell magics whose body is ordinary Python.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "memit", "snakeviz", "px"})
_PLACEHOLDER = "pass  # eqxlint-magic:{}"
_PLACEHOLDER_RE = re.compile(r"^(?P<indent>[ \t]*)pass  # eqxlint-magic:(?P<k>\d+)$")
_ASSIGN_MAGIC = re.compile(r"^[ \t]*[A-Za-z_][\w.,\[\]() \t*]*=[ \t]*[!%]")
_HELP = re.compile(r"^[ \t]*[?]*[A-Za-z_][\w.\[\]()]*[?]{1,2}[ \t]*$")
_LINES = re.compile(r"[^\n]*\n|[^\n]+")


def split_lines(text: str) -> list:
    """Lines with their '\\n' (as Jupyter stores `source`); the last may lack one."""
    return _LINES.findall(text)


@dataclasses.dataclass
class Cell:
    index: int  # 1-based position in `cells` (all cell types)
    original: str  # the cell's source as stored
    virtual: str  # the cell as it appears in the virtual module (always ends with '\n' if non-empty)
    magics: list  # original lines replaced by placeholders, by placeholder number
    row: int = 0  # 1-based virtual row of the cell's first line
    offset: int = 0  # character offset of the cell in the virtual module
    syntax_error: Optional[tuple] = None  # (message, row, col) within the cell

    @property
    def nlines(self) -> int:
        return self.virtual.count("\n")


@dataclasses.dataclass
class VirtualModule:
    path: str
    cells: list  # Cell, code cells only, in order
    source: str
    rows: list  # first virtual row of each cell (for bisect)

    def cell_at_row(self, row: int) -> Optional[Cell]:
        if not self.cells:
            return None
        i = bisect.bisect_right(self.rows, row) - 1
        return self.cells[max(i, 0)]

    def cell_at_offset(self, off: int, insertion: bool = False) -> Cell:
        """The cell holding character `off`; an insertion exactly at a cell boundary belongs to
        the earlier cell (an import added after the last import of cell 1 stays in cell 1)."""
        starts = [c.offset for c in self.cells]
        i = (bisect.bisect_left(starts, off) - 1) if insertion else (bisect.bisect_right(starts, off) - 1)
        return self.cells[max(i, 0)]


# ---------------------------------------------------------------------------- reading
class NotebookError(ValueError):
    pass


def read_notebook(text: str) -> dict:
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        raise NotebookError(f"not valid JSON ({e.msg}: line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise NotebookError("not valid JSON (nested too deeply)") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        if isinstance(nb, dict) and "worksheets" in nb:
            raise NotebookError("nbformat 3 notebooks are not supported; upgrade it with `jupyter nbconvert --to notebook`")
        raise NotebookError("not a Jupyter notebook (no `cells` list)")
    return nb


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _is_python(nb: dict) -> bool:
    meta = nb.get("metadata") or {}
    lang = (meta.get("language_info") or {}).get("name") or (meta.get("kernelspec") or {}).get("language")
    return lang is None or str(lang).lower() in ("python", "python3", "ipython", "ipython3")


def _cell_is_python(cell: dict) -> bool:
    lang = ((cell.get("metadata") or {}).get("vscode") or {}).get("languageId")
    return lang is None or lang == "python"


def code_cells(nb: dict) -> list:
    """(1-based index, source) of the Python code cells."""
    if not _is_python(nb):
        return []
    out = []
    for i, cell in enumerate(nb["cells"], 1):
        if isinstance(cell, dict) and cell.get("cell_type") == "code" and _cell_is_python(cell):
            out.append((i, _source(cell)))
    return out


def _mask_magics(text: str) -> tuple:
    """Replace IPython-only lines by placeholders. Returns (python text, replaced lines)."""
    lines = split_lines(text)
    magics: list = []
    out: list = []

    def hide(line: str) -> str:
        body = line.rstrip("\r\n")
        nl = line[len(body):]
        indent = body[: len(body) - len(body.lstrip(" \t"))]
        magics.append(body)
        return indent + _PLACEHOLDER.format(len(magics) - 1) + nl

    first = next((i for i, l in enumerate(lines) if l.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = lines[first].lstrip()[2:].split(None, 1)[0] if lines[first].strip() != "%%" else ""
        if name not in PYTHON_CELL_MAGICS:
            return "".join(hide(l) if l.strip() else l for l in lines), magics
    continuation = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        is_magic = continuation or (
            (first is not None and i == first and stripped.startswith("%%"))
            or stripped.startswith(("%", "!"))
            or (stripped.startswith("?") and len(stripped) > 1)
            or bool(_HELP.match(line.rstrip("\r\n")))
            or bool(_ASSIGN_MAGIC.match(line))
        )
        if is_magic:
            out.append(hide(line))
            continuation = stripped.endswith("\\")
        else:
            out.append(line)
    return "".join(out), magics


def _syntax_error(text: str) -> Optional[tuple]:
    flags = ast.PyCF_ONLY_AST | getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
    try:
        compile(text, "<cell>", "exec", flags=flags, dont_inherit=True)
    except SyntaxError as e:
        return f"SyntaxError: {e.msg}", e.lineno or 1, e.offset or 1
    except (ValueError, RecursionError, MemoryError) as e:
        return f"SyntaxError: {e}", 1, 1
    return None


def build_virtual(path: str, cells: list) -> VirtualModule:
    """`cells`: (index, source) of the code cells, in order."""
    out = []
    parts = []
    row, offset = 1, 0
    for index, original in cells:
        text, magics = _mask_magics(original)
        err = _syntax_error(text) if text.strip() else None
        if text and not text.endswith("\n"):
            text += "\n"
        if err is not None:
            text = "\n" * text.count("\n")  # keep the rows, leave the code out
        c = Cell(index, original, text, magics, row, offset, err)
        out.append(c)
        parts.append(text)
        row += c.nlines
        offset += len(text)
    return VirtualModule(path, out, "".join(parts), [c.row for c in out])


def restore(cell: Cell, virtual_text: str) -> str:
    """The cell's source from (possibly edited) virtual text: placeholders back to the original
    IPython lines, no trailing newline added where the cell had none."""
    lines = split_lines(virtual_text)
    for i, line in enumerate(lines):
        body = line.rstrip("\n")
        m = _PLACEHOLDER_RE.match(body)
        if m and int(m.group("k")) < len(cell.magics):
            lines[i] = cell.magics[int(m.group("k"))] + line[len(body):]
    text = "".join(lines)
    if not cell.original.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    return text


# ---------------------------------------------------------------------------- linting
def _error_result(path: str, message: str) -> engine.FileResult:
    d = engine.syntax_diagnostic(path, f"Cannot lint notebook: {message}", 1, 1)
    return engine.FileResult(path, [d], {}, [], [], [])


def load(path: Path) -> tuple:
    """(text, notebook dict) or raises NotebookError / OSError."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotebookError(f"not UTF-8 ({e.reason} at byte {e.start})") from None
    return text, read_notebook(text.lstrip("\ufeff"))


def lint_notebook(path: Path, run: engine.RunConfig) -> engine.FileResult:
    """Lint a notebook. The result is in *virtual-module* coordinates (rows of the concatenated
    code cells; noqa directives included), with the mapping attached as `result.notebook`;
    `localize` turns final diagnostics into cell coordinates."""
    spath = str(path)
    try:
        _, nb = load(path)
    except NotebookError as e:
        return _error_result(spath, str(e))
    except OSError as e:
        r = engine.FileResult(spath, [], {}, [], [], [f"cannot read notebook ({e.strerror or e}); skipped"])
        return r
    return lint_virtual(build_virtual(spath, code_cells(nb)), run)


def lint_virtual(vm: VirtualModule, run: engine.RunConfig) -> engine.FileResult:
    try:
        res = engine.lint_source(vm.source, vm.path, run, "", False)
    except Exception as e:  # never let one file stop the run
        res = engine.FileResult(vm.path, [], {}, [], [f"internal error on {vm.path}: {type(e).__name__}: {e}"], [])
    for c in vm.cells:
        if c.syntax_error is not None:
            msg, row, col = c.syntax_error
            res.diagnostics.append(engine.syntax_diagnostic(vm.path, msg, c.row + row - 1, col))
    res.notebook = vm
    return res


def localize(results: list, diags: list) -> list:
    """Final diagnostics with notebook findings moved from virtual rows to (cell, row in cell);
    fix edits become offsets into their cell's source. Returns new Diagnostic objects for
    notebook findings (the results are left untouched)."""
    maps = {r.path: r.notebook for r in results if getattr(r, "notebook", None) is not None}
    if not maps:
        return diags
    out = []
    for d in diags:
        vm = maps.get(d.filename)
        if vm is None or d.cell is not None or not vm.cells:
            out.append(d)
            continue
        out.append(_localize_one(vm, d))
    out.sort(key=Diagnostic.sort_key)
    return out


def _localize_one(vm: VirtualModule, d: Diagnostic) -> Diagnostic:
    cell = vm.cell_at_row(d.row)
    last = cell.row + max(cell.nlines, 1) - 1

    def rel(r):
        return min(max(r, cell.row), last) - cell.row + 1

    fix = d.fix
    if fix is not None:
        fix = Fix(fix.message, fix.applicability, tuple(_edit_in_cell(vm, e) for e in fix.edits))
    nd = dataclasses.replace(
        d, row=rel(d.row), end_row=rel(d.end_row) if d.end_row >= d.row else rel(d.row),
        noqa_row=rel(d.noqa_row) if d.noqa_row else None, cell=cell.index, fix=fix,
        message=cite(vm, d.message, d.refs), refs=(), trace=_trace_in_cells(vm, d.trace),
    )
    nd._cell_source = cell.original  # for reporters: rows/columns of fix edits, snippets
    return nd


def _where(vm: VirtualModule, row: int) -> Optional[str]:
    cell = vm.cell_at_row(row)
    return None if cell is None else f"cell {cell.index}, line {row - cell.row + 1}"


def cite(vm: VirtualModule, message: str, refs: tuple) -> str:
    """The message with each row it cites written as the reader finds it: "line 7"
    (`Diagnostic.refs`) becomes "cell 3, line 2", and "nb.ipynb:13" (a step of a call chain
    in this notebook) becomes "nb.ipynb, cell 3, line 2". Rows are those of the concatenated
    code cells."""
    for row in refs:
        where = _where(vm, row)
        if where is not None:
            message = re.sub(rf"\bline {row}\b", where, message, count=1)
    base = vm.path.replace("\\", "/").rsplit("/", 1)[-1]

    def step(m):
        where = _where(vm, int(m.group(1)))
        return m.group(0) if where is None else f"{base}, {where}"

    return re.sub(re.escape(base) + r":(\d+)\b", step, message)


def _trace_in_cells(vm: VirtualModule, trace: Optional[list]) -> Optional[list]:
    """Call-chain steps in this notebook: rows within their cell, with the cell."""
    if not trace:
        return trace
    out = []
    for s in trace:
        cell = vm.cell_at_row(s.get("row", 0)) if s.get("path") == vm.path else None
        if cell is not None:
            s = dict(s, cell=cell.index, row=s["row"] - cell.row + 1)
        out.append(s)
    return out


def file_position(text: str, cell: int, row: int, column: int) -> Optional[tuple]:
    """(line, column), both 1-based, in the notebook file's own text (`text`: its JSON) of
    column `column` of row `row` of cell `cell` (1-based, as `Diagnostic` gives them): where
    an annotation must point for tools that show the `.ipynb` file itself (GitHub, SARIF
    viewers). None when the cell has no such row."""
    try:
        span = source_spans(text).get(cell)
    except (ValueError, IndexError, json.JSONDecodeError):
        return None
    if span is None:
        return None
    s, e = span
    pieces = list(_items(text, s)) if text[s] == "[" else [(s, e)]
    # Find character `column - 1` of row `row` among the pieces (each a JSON string: a line, as
    # Jupyter stores them, or any part of the source).
    want_row, want_col = row, column - 1
    cur_row, cur_col = 1, 0
    for a, b in pieces:
        try:
            piece = json.loads(text[a:b])
        except (ValueError, RecursionError):
            return None
        if not isinstance(piece, str):
            continue
        for index, ch in enumerate(piece):
            if cur_row == want_row and cur_col == want_col:
                return _line_col(text, _raw_offset(text, a, b, index))
            if ch == "\n":
                if cur_row == want_row:  # past the end of the wanted row: its last character
                    return _line_col(text, _raw_offset(text, a, b, index))
                cur_row, cur_col = cur_row + 1, 0
            else:
                cur_col += 1
        if cur_row == want_row and cur_col == want_col:
            return _line_col(text, _raw_offset(text, a, b, len(piece)))
    return None


def _line_col(text: str, offset: int) -> tuple:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _raw_offset(text: str, start: int, end: int, index: int) -> int:
    """The offset in `text` of character `index` of the JSON string literal text[start:end]."""
    i, n = start + 1, 0
    while i < end - 1 and n < index:
        if text[i] != "\\":
            i += 1
        elif text[i + 1] != "u":
            i += 2
        elif 0xD800 <= int(text[i + 2: i + 6], 16) < 0xDC00 and text[i + 6: i + 8] == "\\u":
            i += 12  # a surrogate pair: one character
        else:
            i += 6
        n += 1
    return i


def _edit_in_cell(vm: VirtualModule, e: Edit) -> Edit:
    """A virtual-module edit as offsets into its own cell's original source."""
    cell = vm.cell_at_offset(e.start, insertion=e.start == e.end)

    def conv(off: int) -> int:
        rel = min(max(off - cell.offset, 0), len(cell.virtual))
        before = cell.virtual[:rel]
        row = before.count("\n")
        col = rel - (before.rfind("\n") + 1)
        lines = split_lines(cell.original)
        return sum(len(l) for l in lines[:row]) + col

    return Edit(conv(e.start), conv(e.end), e.content)


# ---------------------------------------------------------------------------- fixing
def apply_virtual_edits(vm: VirtualModule, chosen: list) -> dict:
    """Apply the fix edits of `chosen` (virtual coordinates) cell by cell. Returns
    {cell index: new cell source} for the cells that change."""
    per_cell: dict = {}
    seen = set()
    for d in chosen:
        for e in d.fix.edits:
            if e.start == e.end:
                if (e.start, e.content) in seen:
                    continue
                seen.add((e.start, e.content))
            cell = vm.cell_at_offset(e.start, insertion=e.start == e.end)
            per_cell.setdefault(cell.index, (cell, []))[1].append(e)
    changed = {}
    for index, (cell, edits) in per_cell.items():
        text = cell.virtual
        for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
            s, t = e.start - cell.offset, e.end - cell.offset
            text = text[:s] + e.content + text[t:]
        new = restore(cell, text)
        if new != cell.original:
            changed[index] = new
    return changed


def fix_notebook(path: Path, diags: list, run: engine.RunConfig, unsafe: bool, *, write: bool = True,
                 report=None) -> tuple:
    """Apply fixes to a notebook until none applies (at most 10 rounds). Rewrites only the
    `source` of changed cells. Returns (remaining diagnostics, applied diagnostics), both in cell
    coordinates."""
    spath = str(path)
    try:
        text, nb = load(path)
    except (NotebookError, OSError):
        return list(diags), []
    cells = code_cells(nb)
    sources = {i: s for i, s in cells}
    applied_all: list = []
    final = None
    for _ in range(10):
        vm = build_virtual(spath, [(i, sources[i]) for i, _ in cells])
        res = lint_virtual(vm, run)
        final = engine.finalize([res], run)
        candidates = [d for d in final if fixes.applicable(d, unsafe)]
        if not candidates:
            break
        new_source, chosen = fixes.apply_edits(vm.source, candidates, unsafe)
        if not chosen or new_source == vm.source:
            break
        if not fixes.reparses(new_source):
            if report is not None:
                report.rejected.append(f"{spath}: a fix produced code that does not parse; not written")
            break
        changed = apply_virtual_edits(vm, chosen)
        if not changed:
            break
        applied_all.extend(localize([res], chosen))
        sources.update(changed)
        final = None
    if final is None:
        vm = build_virtual(spath, [(i, sources[i]) for i, _ in cells])
        res = lint_virtual(vm, run)
        final = engine.finalize([res], run)
    remaining = localize([res], final)
    changed = {i: s for i, s in sources.items() if s != dict(cells)[i]}
    if not changed:
        return remaining, []
    new_text = patch_sources(text, changed)
    if report is not None:
        report.diffs[spath] = (text, new_text)
    if write:
        try:
            fixes.write_atomic(Path(path), new_text, "utf-8", expected=text.encode("utf-8"))
        except (OSError, UnicodeEncodeError) as e:
            if report is not None:
                report.rejected.append(f"{spath}: could not write fixes: {e}")
            return list(diags), []
    return remaining, applied_all


# ---------------------------------------------------------------------------- JSON patching
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _ws(s: str, i: int) -> int:
    return _WS.match(s, i).end()


def _members(s: str, i: int):
    """(key, value start, value end) of the JSON object starting at s[i] == '{'."""
    i = _ws(s, i + 1)
    if s[i] == "}":
        return
    while True:
        key, i = scanstring(s, i + 1)
        i = _ws(s, i)
        i = _ws(s, i + 1)  # ':'
        _, end = _DECODER.raw_decode(s, i)
        yield key, i, end
        i = _ws(s, end)
        if s[i] == ",":
            i = _ws(s, i + 1)
            continue
        return


def _items(s: str, i: int):
    """(start, end) of each item of the JSON array starting at s[i] == '['."""
    i = _ws(s, i + 1)
    if s[i] == "]":
        return
    while True:
        _, end = _DECODER.raw_decode(s, i)
        yield i, end
        i = _ws(s, end)
        if s[i] == ",":
            i = _ws(s, i + 1)
            continue
        return


def source_spans(text: str) -> dict:
    """{1-based cell index: (start, end) of its "source" value} in the notebook's JSON text."""
    start = _ws(text, 1 if text.startswith("\ufeff") else 0)
    spans = {}
    for key, vs, ve in _members(text, start):
        if key != "cells":
            continue
        for n, (cs, ce) in enumerate(_items(text, vs), 1):
            if text[cs] != "{":
                continue
            for k, s, e in _members(text, cs):
                if k == "source":
                    spans[n] = (s, e)
    return spans


def _indent_unit(text: str) -> str:
    m = re.match(r"\ufeff?\{\n([ \t]+)", text)
    return m.group(1) if m else " "


def _render_source(text: str, s: int, e: int, new: str, ensure_ascii: bool) -> str:
    old = text[s:e]
    if old.startswith('"'):
        return json.dumps(new, ensure_ascii=ensure_ascii)
    items = list(_items(text, s))
    raw = {}
    for a, b in items:
        raw.setdefault(json.loads(text[a:b]), text[a:b])
    if items:
        open_ws = text[s + 1 : items[0][0]]
        close_ws = text[items[-1][1] : e - 1]
        sep = text[items[0][1] : items[1][0]] if len(items) > 1 else "," + open_ws
    else:
        line_start = text.rfind("\n", 0, s) + 1
        indent = re.match(r"[ \t]*", text[line_start:]).group(0)
        open_ws = "\n" + indent + _indent_unit(text)
        close_ws = "\n" + indent
        sep = "," + open_ws
    lines = split_lines(new)
    if not lines:
        return "[]"
    body = sep.join(raw.get(l) or json.dumps(l, ensure_ascii=ensure_ascii) for l in lines)
    return "[" + open_ws + body + close_ws + "]"


def patch_sources(text: str, changed: dict) -> str:
    """Replace the "source" of the cells in `changed` ({1-based index: new source}); every other
    character of `text` is kept."""
    spans = source_spans(text)
    ensure_ascii = not any(ord(ch) > 127 for ch in text) and "\\u" in text
    out = text
    for index in sorted(changed, key=lambda i: spans[i][0], reverse=True):
        s, e = spans[index]
        out = out[:s] + _render_source(text, s, e, changed[index], ensure_ascii) + out[e:]
    return out
