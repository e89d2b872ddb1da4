"""Every ```python block of docs/runtime.md runs as written.

Each block runs in a fresh namespace (the convention stated at the top of the document), in
document order, so a block must import what it uses. Tracebacks point at the document's own
line numbers.
"""

import pathlib
import re

import pytest


jax = pytest.importorskip("jax")
pytest.importorskip("equinox")

pytestmark = pytest.mark.jax

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "runtime.md"


def _blocks():
    text = DOC.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.M | re.S):
        line = text.count("\n", 0, match.start()) + 2  # the block's first line of code
        blocks.append(pytest.param(match.group(1), line, id=f"line{line}"))
    return blocks


BLOCKS = _blocks()


def test_document_has_python_blocks():
    assert len(BLOCKS) >= 10
    # every fenced block that looks like Python is tagged as such, so it is run here
    text = DOC.read_text(encoding="utf-8")
    for match in re.finditer(r"^```(\w*)[ \t]*\n(.*?)^```", text, re.M | re.S):
        lang, body = match.groups()
        if lang in ("", "py", "python3"):
            assert not re.search(r"^(import |from \w+ import |def |\w+ = \w+\()", body, re.M), (
                f"untagged code block at line {text.count(chr(10), 0, match.start()) + 1} "
                "looks like Python: tag it ```python so that it is run"
            )


@pytest.mark.parametrize("code, line", BLOCKS)
def test_python_block_runs(code, line):
    compiled = compile("\n" * (line - 1) + code, str(DOC), "exec")
    exec(compiled, {"__name__": f"docs_runtime_line{line}"})
