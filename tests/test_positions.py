"""`LocalPositions` (positions for one statement at a time) must give exactly LibCST's
whole-file PositionProvider / WhitespaceInclusivePositionProvider ranges, for every node, in
any order of requests. The sources below target each way a statement is placed: by its unique
text at any depth, handed over to an enclosing statement when its text repeats, and by the
text before it when even the top-level statement repeats."""

from __future__ import annotations

import random
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider, WhitespaceInclusivePositionProvider

from eqxlint.syntax.positions import LocalPositions

ROOT = Path(__file__).resolve().parent.parent


class _Ctx:
    def __init__(self, module, source):
        self.module, self.source = module, source


def _compare(source: str, seed: int = 0) -> int:
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    checked = 0
    for inclusive, provider in ((False, PositionProvider), (True, WhitespaceInclusivePositionProvider)):
        full = wrapper.resolve(provider)
        local = LocalPositions(_Ctx(module, source), inclusive)
        nodes = list(full)
        random.Random(seed).shuffle(nodes)
        for node in nodes:
            r = full[node]
            want = (r.start.line, r.start.column, r.end.line, r.end.column)
            assert local.get(node) == want, (type(node).__name__, inclusive, cst.Module([]).code_for_node(node) if isinstance(node, cst.BaseStatement) else "")
            checked += 1
    return checked


CASES = {
    "repeated statements at every depth": (
        "x = 1\n"
        "x = 1\n"
        "class A:\n"
        "    def f(self):\n"
        "        return x\n"
        "    def g(self):\n"
        "        return x\n"
        "    def g(self):\n"
        "        return x\n"
        "x = 1\n"
    ),
    "statement text inside a string": (
        'DOC = """\n'
        "def f():\n"
        "    return 1\n"
        '"""\n'
        "def f():\n"
        "    return 1\n"
    ),
    "crlf": "import jax\r\n\r\ndef f(x):\r\n    if x:\r\n        return x\r\n    return -x\r\n",
    "lone cr": "import jax\rdef f(x):\r    return x\r",
    "mixed newlines": "a = 1\r\nb = 2\nc = 3\rdef f():\n    return a\r\n",
    "tabs and per-block indentation": (
        "class A:\n"
        "\tdef f(self):\n"
        "\t\tif self:\n"
        "\t\t  return 1\n"
        "\t\treturn 2\n"
        "def g():\n"
        "   for i in range(3):\n"
        "         print(i)\n"
    ),
    "no trailing newline": "def f():\n    return 1\nx = f()",
    "footer comments and decorators": (
        "# header\n"
        "\n"
        "@decorator\n"
        "# between\n"
        "@other(1)\n"
        "def f():\n"
        "    if True:\n"
        "        pass\n"
        "        # footer of the if\n"
        "    # footer of f\n"
        "\n"
        "# module footer\n"
    ),
    "suites, semicolons, continuations": (
        "if x: y = 1; z = 2\n"
        "while x: pass\n"
        "def f(a,\n"
        "      b):  # trailing\n"
        "    return (a +\n"
        "            b) \\\n"
        "        + 1\n"
        "try:\n"
        "    f(1, 2)\n"
        "except ValueError as e:\n"
        "    raise\n"
        "else:\n"
        "    pass\n"
        "finally:\n"
        "    pass\n"
    ),
    "nested classes and elif": (
        "class A:\n"
        "    class B:\n"
        "        def f(self, x):\n"
        "            if x == 1:\n"
        "                return 1\n"
        "            elif x == 2:\n"
        "                return 1\n"
        "            else:\n"
        "                return 1\n"
        "    class C:\n"
        "        def f(self, x):\n"
        "            if x == 1:\n"
        "                return 1\n"
    ),
    "match and with": (
        "match p:\n"
        "    case [a, b]:\n"
        "        with open(a) as f, open(b) as g:\n"
        "            pass\n"
        "    case _:\n"
        "        pass\n"
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_local_positions_equal_libcst(name):
    assert _compare(CASES[name]) > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_local_positions_on_fixture_files(seed):
    checked = 0
    for path in sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "eqxlint" / "checks").glob("_*.py")):
        checked += _compare(path.read_text(encoding="utf-8"), seed)
    assert checked > 10_000
