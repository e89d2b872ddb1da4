"""Cheap line numbers for facts that other files cite (where a function is defined, where it
calls another), without LibCST's position codegen: one regular expression finds every `def` and
`class` line, matched in order with the file's function and class scopes; a call is then found
as the k-th `name(` after its function's `def` line. Exact positions of reported nodes still come
from `eqxlint.syntax.positions`; these rows only label steps of a call chain in messages.
"""

from __future__ import annotations

import re
from typing import Optional

_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+(\w+)", re.M)


class LineLocator:
    def __init__(self, source: str):
        self.source = source
        self._starts: Optional[list] = None
        self._lines: Optional[list] = None
        self._defs: Optional[list] = None
        self._searched: dict = {}

    @property
    def lines(self) -> list:
        if self._lines is None:
            self._lines = self.source.splitlines()
        return self._lines

    def def_rows(self, scopes: list) -> dict:
        """{id(scope): row of its `def`/`class` line} for function and class scopes given in
        source order (lambdas get their enclosing scope's row)."""
        found = []
        for m in _DEF.finditer(self.source):
            found.append((self.source.count("\n", 0, m.start()) + 1, m.group(2)))
        out: dict = {}
        j = 0
        for s in scopes:
            if s.kind == "lambda":
                continue
            k = j
            while k < len(found) and found[k][1] != s.name:
                k += 1
            if k < len(found):
                out[id(s)] = found[k][0]
                j = k + 1
        return out

    def call_row(self, name: str, start: int, ordinal: int = 0, decorator: bool = False) -> int:
        """The row of the `ordinal`-th call of `name` at or after row `start` (a decorator:
        the nearest `@...name` line at or before `start`); `start` when not found."""
        if not name:
            return start
        lines = self.lines
        if decorator:
            pat = re.compile(r"^\s*@.*\b" + re.escape(name) + r"\b")
            for r in range(min(start, len(lines)), 0, -1):
                if pat.search(lines[r - 1]):
                    return r
            return start
        pat = self._searched.get(name)
        if pat is None:
            pat = self._searched[name] = re.compile(r"\b" + re.escape(name) + r"\s*[(\[]|\b" + re.escape(name) + r"\s*$")
        seen = 0
        for r in range(max(start, 1), len(lines) + 1):
            line = lines[r - 1]
            if name in line:
                code = line.split("#", 1)[0]
                if pat.search(code):
                    if seen == ordinal:
                        return r
                    seen += 1
        return start
