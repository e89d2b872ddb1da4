"""Suppression comments, as Ruff spells them: `# noqa` (everything on the line), `# noqa: EQX209,
EQX101` (those codes), and file-level `# eqxlint: noqa` / `# eqxlint: noqa: EQX2`. Codes of other
tools (`# noqa: E501`) are left alone."""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

from ..syntax import tokens

_NOQA = re.compile(r"#\s*noqa(?P<sep>\s*:\s*(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*))?", re.I)
_FILE = re.compile(r"#\s*eqxlint\s*:\s*noqa(?:\s*:\s*(?P<codes>[A-Za-z]+[0-9]*(?:[\s,]+[A-Za-z]+[0-9]*)*))?", re.I)
_SPLIT = re.compile(r"[\s,]+")


@dataclasses.dataclass
class Directive:
    row: int
    col: int  # 0-based column of the '#'
    end_col: int
    codes: Optional[list]  # None: blanket
    text: str
    start: int = 0  # character offsets of the directive in the file (for fixes)
    end: int = 0
    ws_start: int = 0  # start of the whitespace before it, when it is the whole comment
    used: set = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class Suppressions:
    lines: dict  # row -> Directive
    file_all: bool = False
    file_codes: tuple = ()
    file_directives: list = dataclasses.field(default_factory=list)

    def suppresses(self, code: str, row: int) -> bool:
        if self.file_all or any(code.startswith(c) for c in self.file_codes):
            for d in self.file_directives:
                if d.codes is None or any(code.startswith(c) for c in d.codes):
                    d.used.add(code)
            return True
        d = self.lines.get(row)
        if d is None:
            return False
        if d.codes is None:
            d.used.add(code)
            return True
        if code in d.codes:
            d.used.add(code)
            return True
        return False


def _comments(source: str):
    """(row, col, text) of every comment (a `# noqa` inside a string is not one); a line scan
    when the file does not tokenize."""
    scanned = tokens.scan(source)
    if scanned is not None:
        return scanned[0]
    out = []
    for i, line in enumerate(source.splitlines(), 1):
        j = line.find("#")
        if j >= 0:
            out.append((i, j, line[j:]))
    return out


def parse(source: str) -> Suppressions:
    sup = Suppressions(lines={})
    low = source.lower()
    if "noqa" not in low:
        return sup
    file_codes: list = []
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", source)]
    for row, col, text in _comments(source):
        if "noqa" not in text.lower():
            continue
        fm = _FILE.search(text)
        if fm:
            codes = fm.group("codes")
            d = Directive(row, col, col + len(text), None, text)
            if codes:
                d.codes = [c.upper() for c in _SPLIT.split(codes.strip()) if c]
                file_codes.extend(d.codes)
            else:
                sup.file_all = True
            sup.file_directives.append(d)
            continue
        m = _NOQA.search(text)
        if not m:
            continue
        codes = m.group("codes")
        d = Directive(row, col + m.start(), col + m.end(), None, text[m.start() : m.end()])
        base = starts[row - 1] if row - 1 < len(starts) else 0
        d.start, d.end = base + d.col, base + d.end_col
        ws = d.start
        if m.start() == 0:
            while ws > base and source[ws - 1] in " \t":
                ws -= 1
        d.ws_start = ws
        if codes:
            d.codes = [c.upper() for c in _SPLIT.split(codes.strip()) if c]
        elif m.group("sep"):
            continue  # malformed `# noqa:` with nothing valid after it
        sup.lines[row] = d
    sup.file_codes = tuple(file_codes)
    return sup


def comment_rows(source: str) -> dict:
    """{row: row to use instead} for rows whose end lies inside a multi-line string or that end
    with a backslash continuation."""
    moved: dict = {}
    scanned = tokens.scan(source)
    if scanned is None:
        return moved
    spans = scanned[1]
    for start, end in spans:
        for r in range(start, end):
            moved[r] = max(moved.get(r, end), end)
    lines = source.splitlines()
    # Backslash continuations (outside strings): the comment goes after the logical line's end.
    for i in range(len(lines), 0, -1):
        line = lines[i - 1]
        if line.endswith("\\") and i not in moved:
            nxt = i + 1
            moved[i] = moved.get(nxt, nxt)
    # Resolve chains (a string that ends on a continued line, ...).
    for r in list(moved):
        seen = set()
        t = moved[r]
        while t in moved and t not in seen:
            seen.add(t)
            t = moved[t]
        moved[r] = t
    return moved
