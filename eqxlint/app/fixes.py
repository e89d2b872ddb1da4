"""Applying fixes to text: non-overlapping edits in one pass, checked to re-parse; and writing
them safely: under a lock, only over the exact bytes they were computed from."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: changes are still detected, not locked out
    fcntl = None

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


@dataclasses.dataclass
class FixOutcome:
    text: str  # the fixed text (the input text when nothing applied)
    applied: list  # diagnostics whose fixes were applied
    remaining: list  # diagnostics of `text` (the input diagnostics when nothing applied)
    rejected: list  # messages: fixes refused, results not kept


def fix_text(text: str, diagnostics: list, relint: Callable[[str], list], unsafe: bool, label: str,
             rounds: int = 10) -> FixOutcome:
    """Fix one file's text: non-overlapping fixes of `diagnostics` (which must have been computed
    on exactly `text`) in one pass, re-lint with `relint(new_text)`, repeat until nothing
    applicable is left (at most `rounds` rounds). A fix that edits outside its finding is
    skipped; a round whose result does not re-parse is dropped and ends the loop."""
    current = diagnostics
    applied_all: list = []
    rejected: list = []
    new_text = text
    for _ in range(rounds):
        outside = {id(d) for d in current if applicable(d, unsafe) and outside_finding(new_text, d)}
        for d in current:
            if id(d) in outside:
                rejected.append(f"{label}:{d.row}: {d.code} fix changes code outside the finding; not applied")
        candidate, applied = apply_edits(new_text, [d for d in current if id(d) not in outside], unsafe)
        if not applied or candidate == new_text:
            break
        if not reparses(candidate, text):
            rejected.append(f"{label}: a fix produced code that does not parse; not written")
            break
        new_text = candidate
        applied_all.extend(applied)
        current = relint(new_text)
        if not any(applicable(d, unsafe) for d in current):
            break
    return FixOutcome(new_text, applied_all, current, rejected)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Locked(OSError):
    """Another process holds the file's fix lock (only with `blocking=False`)."""


class FileLock:
    """An exclusive advisory lock (`flock`) held by whoever is fixing the file a path names.

    Writes replace the file by a rename, so the lock must be on the file the path names *now*:
    after acquiring it on the opened file, the lock holder checks that the path still names that
    same file (device and inode) and otherwise locks the file that replaced it. Entering returns
    the locked file, opened for reading at offset 0, so the bytes read are the locked file's. On
    a platform without `fcntl` nothing is locked (the expected-bytes check of `write_atomic`
    still detects a concurrent writer)."""

    def __init__(self, path, blocking: bool = True):
        self.path = path
        self.blocking = blocking
        self.file = None

    def __enter__(self):
        while True:
            real = os.path.realpath(self.path)
            f = open(real, "rb")
            try:
                if fcntl is not None:
                    flags = fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB)
                    try:
                        fcntl.flock(f.fileno(), flags)
                    except BlockingIOError:
                        raise Locked(f"{self.path} is being fixed by another process") from None
                mine, now = os.fstat(f.fileno()), os.stat(real)
            except BaseException:
                f.close()
                raise
            if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
                self.file = f
                return f
            f.close()  # replaced while we waited for the lock: lock its replacement

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()  # closing the file releases the lock
            self.file = None


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
