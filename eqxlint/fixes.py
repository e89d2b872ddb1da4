"""Applying fixes to text: non-overlapping edits in one pass, checked to re-parse."""

from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path

from .diagnostics import SAFE


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


def reparses(source: str) -> bool:
    try:
        ast.parse(source)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def write_atomic(path: Path, text: str, encoding: str) -> None:
    """Write `text` next to `path` and rename over it: readers see the old or the new file, never
    half of one. Keeps the file's mode; the encoding (BOM included) is the file's own."""
    replace_atomic(path, text.encode(encoding), mode=os.stat(path).st_mode & 0o7777)


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
