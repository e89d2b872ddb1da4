"""Re-parse only the top-level statements that changed since the last parse of a document.

The language server lints the document being edited on every pause in typing; a LibCST parse of
a 2,000-line file takes about as long as everything else the engine does. An edit almost always
changes one top-level statement, so `IncrementalParser` splits the source into *chunks* — one
top-level statement each, with the blank and comment lines that follow it — parses each chunk as
a module of its own, keeps the parsed chunks by their text, and on the next parse re-parses only
the chunks whose text is new. The chunks' statements are then put together into one
`libcst.Module`.

The result is the tree `parse_module(source)` gives, node for node (`tests/test_incremental.py`
compares them with `deep_equals` over every Python file of the repository and its environment,
and over random edits):

- A chunk starts at a line whose first character begins a statement: not indented, not blank,
  not a comment, not a closing bracket, not `else`/`elif`/`except`/`finally`, not inside a
  multi-line string, not after a backslash continuation, not the `def`/`class` line (or next
  decorator) of a decorator. A wrong guess cannot go unnoticed: the part before a false start
  has an open bracket, string or clause and does not parse on its own, and any chunk that does
  not parse makes the whole source be parsed at once (which also reports a real syntax error
  exactly as before).
- What LibCST attaches differently to a chunk parsed alone is moved back: the blank and comment
  lines after a chunk's last statement are its module's `footer`, and in the whole file they are
  the `leading_lines` of the next chunk's first statement.
- Settings LibCST infers from the whole file must agree: the default newline (the first line
  ending) and the default indentation (the first indented block). When the chunks disagree,
  the whole source is parsed at once.
- A text that occurs several times is parsed once per occurrence, so no node is shared within
  one tree (the engine keys facts by node identity).
"""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from . import tokens
from .parsing import parse_module

_NOT_A_START = frozenset(" \t\f\r\n#)]}")
_CLAUSE = re.compile(r"(?:else|elif|except|finally)\b")
_INDENTED_CODE = re.compile(r"^[ \t\f]+[^ \t\f\r\n#]", re.M)


def chunk_starts(source: str) -> Optional[list]:
    """0-based line numbers where a top-level statement (a chunk) begins, the first always 0;
    None when the source cannot be split (it does not tokenize, or uses lone `\\r` newlines)."""
    if "\r" in source.replace("\r\n", ""):
        return None
    scanned = tokens.scan(source)
    if scanned is None:
        return None
    _, strings = scanned
    inside = set()
    for start, end in strings:
        if end > start:
            inside.update(range(start + 1, end + 1))  # 1-based rows after a string's first
    lines = source.split("\n")
    starts = [0]
    after_decorator = False
    seen_code = False
    prev = ""
    for i, line in enumerate(lines):
        if line and line[0] not in _NOT_A_START and (i + 1) not in inside \
                and not prev.rstrip("\r").endswith("\\") and not _CLAUSE.match(line):
            if seen_code and not after_decorator and i:
                starts.append(i)
            seen_code = True
            after_decorator = line.startswith("@")
        prev = line
    return starts


class IncrementalParser:
    """Parses successive versions of one document; `parse(source)` equals
    `parsing.parse_module(source)` and raises what it raises."""

    def __init__(self):
        self._chunks: dict = {}  # (chunk text, occurrence) -> that text parsed as a module
        self.reparsed = 0  # chunks parsed by the last `parse` (for tests and benchmarks)
        self.whole = False  # whether the last `parse` parsed the whole source at once

    def parse(self, source: str) -> cst.Module:
        starts = chunk_starts(source)
        if starts is None or len(starts) < 2:
            return self._whole(source)
        lines = source.split("\n")
        texts = []
        for a, b in zip(starts, starts[1:] + [len(lines)]):
            texts.append("\n".join(lines[a:b]) + ("\n" if b < len(lines) else ""))
        new: dict = {}
        seen: dict = {}
        modules = []
        reparsed = 0
        for text in texts:
            n = seen.get(text, 0)
            seen[text] = n + 1
            key = (text, n)
            m = self._chunks.get(key)
            if m is None:
                try:
                    m = parse_module(text)
                except Exception:
                    return self._whole(source)
                reparsed += 1
            new[key] = m
            modules.append(m)
        self._chunks = new
        module = _splice(modules, texts)
        if module is None:
            return self._whole(source)
        self.reparsed, self.whole = reparsed, False
        return module

    def _whole(self, source: str) -> cst.Module:
        self._chunks = {}
        self.reparsed, self.whole = 1, True
        return parse_module(source)


def _splice(modules: list, texts: list) -> Optional[cst.Module]:
    first = modules[0]
    newline = first.default_newline
    indent = None
    for m, text in zip(modules, texts):
        if m.default_newline != newline:
            return None
        if _INDENTED_CODE.search(text):
            if indent is None:
                indent = m.default_indent
            elif m.default_indent != indent:
                return None
    body = list(first.body)
    footer = first.footer
    for m in modules[1:]:
        if m.header or not m.body or m.body[0].leading_lines:
            return None
        stmts = list(m.body)
        if footer:
            stmts[0] = stmts[0].with_changes(leading_lines=footer)
        body.extend(stmts)
        footer = m.footer
    last = modules[-1]
    return first.with_changes(
        body=body, footer=footer, default_indent=indent if indent is not None else first.default_indent,
        has_trailing_newline=last.has_trailing_newline,
    )
