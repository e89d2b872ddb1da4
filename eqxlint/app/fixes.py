"""Applying fixes to text: non-overlapping edits in one pass, checked to re-parse."""

from __future__ import annotations

import ast
import os
import re
import tempfile
from pathlib import Path
from typing import Optional

from ..core.diagnostics import SAFE


def applicable(diag, unsafe: bool) -> bool:
    return diag.fix is not None and (diag.fix.applicability == SAFE or unsafe)


def apply_edits(source: str, diagnostics: list, unsafe: bool) -> tuple[str, list]:
    """Apply the fixes of `diagnostics` that do not overlap an earlier one. Returns the new text
    and the diagnostics whose fixes were applied."""
    chosen = []
    taken: list = []
    for d in sorted((d for d in diagnostics if applicable(d, unsafe)), key=lambda d: d.fix.edits[0].start):
        spans = [(e.start, e.end) for e in d.fix.edits]
        if any(_overlaps(s, t) for s in spans for t in taken):
            continue
        # Two identical import insertions from different fixes are one edit.
        taken.extend(spans)
        chosen.append(d)
    edits = []
    seen = set()
    for d in chosen:
        for e in d.fix.edits:
            if e.start == e.end and (e.start, e.content) in seen:
                continue
            seen.add((e.start, e.content))
            edits.append(e)
    edits.sort(key=lambda e: (e.start, e.end), reverse=True)
    out = source
    for e in edits:
        out = out[: e.start] + e.content + out[e.end :]
    return out, chosen


def _overlaps(a, b) -> bool:
    if a[0] == a[1] and b[0] == b[1]:
        return False  # two insertions
    return a[0] < b[1] and b[0] < a[1]


def reparses(source: str, original: Optional[str] = None) -> bool:
    """The fixed text parses. When the original itself is newer syntax than this CPython
    accepts (PEP 695 on 3.11), LibCST, which linted it, is the judge instead."""
    try:
        ast.parse(source)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    if original is None or reparses(original):
        return False
    import libcst

    try:
        libcst.parse_module(source)
        return True
    except Exception:
        return False


_NEWLINE = re.compile(r"\r\n|\r|\n")
_IMPORT_INSERT = re.compile(
    r"\A(?:\r\n|\r|\n)?(?:import [\w.]+(?: as \w+)?|from [\w.]+ import \w+(?: as \w+)?)(?:\r\n|\r|\n)\Z"
)


def outside_finding(source: str, diag) -> bool:
    """True when the fix edits text outside the lines of its finding; inserting one import
    line is the only edit allowed elsewhere."""
    starts = [0] + [m.end() for m in _NEWLINE.finditer(source)]
    if not 1 <= diag.row <= diag.end_row <= len(starts):
        return True
    lo = starts[diag.row - 1]
    hi = starts[diag.end_row] if diag.end_row < len(starts) else len(source)
    for e in diag.fix.edits:
        if lo <= e.start <= e.end <= hi:
            continue
        if e.start == e.end and _IMPORT_INSERT.match(e.content) and (e.start in starts or e.start == len(source)):
            continue
        return True
    return False


class FileChanged(OSError):
    """The file changed on disk after it was read: its fixes are not written."""


def write_atomic(path: Path, text: str, encoding: str, expected: Optional[bytes] = None) -> None:
    """Write `text` next to `path` and rename over it: readers see the old or the new file, never
    half of one. Keeps the file's mode; the encoding (BOM included) is the file's own. A symlink
    is written through (its target changes, the link stays). With `expected`, the file is left
    alone (FileChanged) when its bytes are no longer those the fixes were computed from."""
    data = text.encode(encoding)
    path = Path(os.path.realpath(path))
    if expected is not None:
        with open(path, "rb") as f:
            if f.read() != expected:
                raise FileChanged(f"{path} changed on disk while it was being fixed")
    replace_atomic(path, data, mode=os.stat(path).st_mode & 0o7777)


def replace_atomic(path: Path, data: bytes, mode=None) -> None:
    """Write `data` to a temp file in `path`'s folder, then rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".eqxlint-tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
