"""Cheap line numbers for facts that other files cite (where a function is defined, where it
calls another), without LibCST's position codegen: one pass of a regular expression finds every
`def`/`class` line, matched in order with the file's function and class scopes, and one pass
finds every `name(` with its row; a call is then the k-th `name(` after its function's `def`
line. Exact positions of reported nodes still come from `eqxlint.syntax.positions`; these rows
only label steps of a call chain in messages.
"""

from __future__ import annotations

import bisect
import re
from typing import Optional

_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+(\w+)", re.M)
# Possessive: a name never gives back characters to `\s*[(\[]` (the same matches, ~30% faster).
# Not `def name(` / `class name(`: a nested function's definition is not a call of it.
_CALLED = re.compile(r"(?<!def )(?<!class )\b(\w++)\s*+[(\[]")
_DECORATOR = re.compile(r"^[ \t]*@([^\n#]*)", re.M)
_WORD = re.compile(r"\w+")
_NEWLINE = re.compile(r"\n")


class LineLocator:
    def __init__(self, source: str):
        self.source = source
        self._starts: Optional[list] = None
        self._calls: Optional[dict] = None
        self._decorators: Optional[dict] = None

    def row(self, offset: int) -> int:
        starts = self._starts
        if starts is None:
            starts = self._starts = [0] + [m.end() for m in _NEWLINE.finditer(self.source)]
        return bisect.bisect_right(starts, offset)

    def def_rows(self, scopes: list) -> dict:
        """{id(scope): row of its `def`/`class` line} for function and class scopes given in
        source order (lambdas get no row of their own)."""
        found = [(self.row(m.start()), m.group(2)) for m in _DEF.finditer(self.source)]
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
        if decorator:
            if self._decorators is None:
                self._decorators = {}
                for m in _DECORATOR.finditer(self.source):
                    r = self.row(m.start())
                    for w in _WORD.findall(m.group(1)):
                        self._decorators.setdefault(w, []).append(r)
            rows = self._decorators.get(name, ())
            i = bisect.bisect_right(rows, start) - 1
            return rows[i] if i >= 0 else start
        if self._calls is None:
            self._calls = {}
            for m in _CALLED.finditer(self.source):
                self._calls.setdefault(m.group(1), []).append(m.start(1))
        offsets = self._calls.get(name)
        if not offsets:
            return start
        rows = [self.row(o) for o in offsets] if type(offsets[0]) is int and not isinstance(offsets, _Rows) else offsets
        if not isinstance(rows, _Rows):
            rows = self._calls[name] = _Rows(rows)
        i = bisect.bisect_left(rows, start) + ordinal
        return rows[i] if i < len(rows) else start


class _Rows(list):
    """Rows of a name's calls (converted from offsets once)."""
