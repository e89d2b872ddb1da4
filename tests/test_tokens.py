"""eqxlint.tokens: the regular-expression scan finds exactly the comments and string rows that
Python's `tokenize` finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from eqxlint.suppress import noqa
from eqxlint.syntax import tokens
from eqxlint.suppress.noqa import comment_rows

ROOT = Path(__file__).resolve().parent.parent

TRICKY = [
    "x = '# not a comment'  # a comment\n",
    'x = "it\'s"  # it\'s a comment with "quotes"\n',
    "s = '''\n# inside\n'''  # noqa: EQX209\n",
    's = """a \\""" still inside\n# noqa\n"""\n',
    "s = 'continued \\\n# still the string' # real\n",
    "s = 'continued \\\r\n# still the string' # real\r\n",
    "b = rb'\\d#' + Rb\"#\" + f'{x}#' + u'#'  # tail\n",
    "f = f'''{\n  x}#''' # c\n",
    "x = 1 # one\r\ny = 2 # two\r\n",
    "'unterminated\nx = 1  # after an error token\n",
    "def f():\n    '''doc\n    # noqa\n    '''\n    return 1  # noqa: EQX101\n",
    "x = ''  # empty\ny = \"\"\"\"\"\"  # empty triple\n",
    "x = '\\\\'  # escaped backslash\n",
]


def _files():
    for folder in ("eqxlint", "fixtures", "tests", "benchmarks"):
        yield from sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("source", TRICKY)
def test_regex_scan_equals_tokenize_on_tricky_sources(source):
    assert tokens._scan_regex(source) == tokens._scan_tokenize(source)


def test_regex_scan_equals_tokenize_on_project_files():
    n = 0
    for path in _files():
        source = path.read_text(encoding="utf-8")
        assert tokens._scan_regex(source) == tokens._scan_tokenize(source), path
        n += 1
    assert n > 100


def test_unterminated_triple_quote_is_not_tokenizable():
    source = "x = 1  # noqa\ns = '''never closed\n"
    assert tokens._scan_regex(source) is None
    assert tokens._scan_tokenize(source) is None
    # noqa parsing then falls back to a line scan; rows are not moved.
    assert 1 in noqa.parse(source).lines
    assert comment_rows(source) == {}


def test_noqa_in_strings_is_ignored_and_rows_move_past_strings():
    source = 's = "# noqa"\nt = """\n# noqa\n"""  # noqa: EQX209\n'
    sup = noqa.parse(source)
    assert sorted(sup.lines) == [4]
    assert sup.lines[4].codes == ["EQX209"]
    assert comment_rows(source) == {2: 4, 3: 4}
