"""Comments and string literals of a source file, for `# noqa` handling: where the comments
are (a `# noqa` inside a string is not one) and which rows lie inside a multi-line string.

On Python 3.12+ this is the standard `tokenize` module (its C tokenizer is fast). Python 3.11's
`tokenize` is pure Python and costs a quarter of a LibCST parse, so there one regular
expression finds comments and strings with that tokenizer's own rules: a string is a
triple-quoted body, or a single-quoted body that may continue over backslash-newlines (its
prefix letters do not matter here); f-strings are ordinary strings (as 3.11 reads them); a comment is `#` to the
end of the line, outside strings; rows are counted at `\\n`, as `tokenize` reads lines.
`tests/test_tokens.py` checks both give the same comments and string rows on every file of the
project and on tricky sources. A triple-quoted string that never ends gives None, as
`tokenize` raises there."""

from __future__ import annotations

import io
import re
import sys
import tokenize
from typing import Optional

_SCAN = re.compile(
    r"(?P<comment>\#[^\r\n]*)"
    r"|(?P<string>'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"
    r'|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*""")'
    r"|(?P<open>'''|\"\"\")"  # a triple quote that does not close
    r"|(?P<single>'[^\n'\\]*(?:\\(?:\r\n|.)[^\n'\\]*)*'"
    r'|"[^\n"\\]*(?:\\(?:\r\n|.)[^\n"\\]*)*")',
    re.DOTALL,
)

_last: tuple = (None, None)  # (source, result): noqa parsing and row mapping share one scan


def scan(source: str) -> Optional[tuple]:
    """([(row, col, text) of each comment], [(start_row, end_row) of each string literal]),
    rows 1-based and columns 0-based; None when the source does not tokenize."""
    global _last
    last_source, last_result = _last
    if last_source is source:
        return last_result
    result = _scan_tokenize(source) if sys.version_info >= (3, 12) else _scan_regex(source)
    _last = (source, result)
    return result


def _scan_regex(source: str) -> Optional[tuple]:
    comments, strings = [], []
    row, line_start, pos = 1, 0, 0
    count = source.count
    for m in _SCAN.finditer(source):
        start = m.start()
        n = count("\n", pos, start)
        if n:
            row += n
            line_start = source.rfind("\n", pos, start) + 1
        kind = m.lastgroup
        if kind == "comment":
            comments.append((row, start - line_start, m.group()))
            pos = m.end()
        elif kind != "open":
            end = m.end()
            inner = count("\n", start, end)
            strings.append((row, row + inner))
            if inner:
                row += inner
                line_start = source.rfind("\n", start, end) + 1
            pos = end
        else:
            return None
    return comments, strings


def _scan_tokenize(source: str) -> Optional[tuple]:
    comments, strings, fstring_starts = [], [], []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            name = tokenize.tok_name.get(tok.type, "")
            if tok.type == tokenize.COMMENT:
                comments.append((tok.start[0], tok.start[1], tok.string))
            elif name == "FSTRING_START":
                fstring_starts.append(tok.start[0])
            elif name == "FSTRING_END" and fstring_starts:
                strings.append((fstring_starts.pop(), tok.end[0]))
            elif tok.type == tokenize.STRING:
                strings.append((tok.start[0], tok.end[0]))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    return comments, strings
