"""Every rule's catalogue entry is its test: each `invalid` example reports the rule's code
exactly where its `# error` markers say, each `valid` example does not, and each `fixed` example
is what the rule's fixes produce — and fixing it again changes nothing.

Markers, at the end of a line of an `invalid` example:

- `# error` — the rule reports this line exactly once (any column);
- `# error: 9` — exactly once, at column 9 (1-based, as eqxlint prints it);
- `# error: 24, 45` — exactly twice on this line, at columns 24 and 45.

No finding may be on an unmarked line. So a rule that reports a line twice, or moves a column
given by a marker, fails its catalogue test."""

from __future__ import annotations

import ast
import re
from collections import defaultdict

import pytest

from eqxlint.engine import catalogue, registry

from helpers import fix, lint

DOCS = catalogue.load_all()
CASES = [
    pytest.param(doc.code, i, ex, id=f"{doc.code}-{ex.kind}-{i}")
    for doc in DOCS.values()
    for i, ex in enumerate(doc.examples)
]


_MARKER = re.compile(r"(?:^|\s)# error(?::[ \t]*(\d+(?:[ \t]*,[ \t]*\d+)*))?$")


def markers(code: str) -> dict:
    """row -> list of expected columns (None: one finding, column not given)."""
    out: dict = {}
    for n, line in enumerate(code.splitlines(), 1):
        m = _MARKER.search(line.rstrip())
        if m is not None:
            out[n] = [int(c) for c in m.group(1).split(",")] if m.group(1) else [None]
    return out


def without_markers(code: str) -> str:
    return "".join(_MARKER.sub("", line.rstrip("\n")).rstrip() + "\n" if _MARKER.search(line.rstrip()) else line
                   for line in code.splitlines(keepends=True))


def mismatches(code: str, found: list) -> list:
    """Where the findings `found` ((row, column) pairs) differ from the markers of `code`."""
    want = markers(code)
    got: dict = defaultdict(list)
    for row, col in found:
        got[row].append(col)
    lines = code.splitlines()
    out = []
    for row in sorted(set(want) | set(got)):
        cols, expected = sorted(got.get(row, [])), want.get(row, [])
        line = lines[row - 1].strip() if row <= len(lines) else ""
        if len(cols) != len(expected):
            out.append(f"line {row} `{line}`: {len(cols)} finding(s) at column(s) {cols}, "
                       f"marked {len(expected)}")
        elif None not in expected and cols != sorted(expected):
            out.append(f"line {row} `{line}`: column(s) {cols}, marked {sorted(expected)}")
    return out


def test_markers_give_rows_columns_and_counts():
    code = "a = 1  # error\nb = f(g(x))  # error: 5, 7\nc = 'ends # errors'\nd = 2  # error:9\n"
    assert markers(code) == {1: [None], 2: [5, 7], 4: [9]}
    assert mismatches(code, [(1, 3), (2, 5), (2, 7), (4, 9)]) == []
    assert mismatches(code, [(1, 3), (1, 3), (2, 5), (2, 7), (4, 9)])  # reported twice
    assert mismatches(code, [(1, 3), (2, 6), (2, 7), (4, 9)])  # a column moved
    assert mismatches(code, [(1, 3), (2, 5), (2, 7), (4, 9), (3, 1)])  # an unmarked line
    assert mismatches(code, [(2, 5), (2, 7), (4, 9)])  # a marked line not reported


@pytest.mark.parametrize("code,i,example", CASES)
def test_example(code, i, example):
    found = [d for d in lint(example.code) if d.code == code]
    if example.kind == "valid":
        assert found == [], f"{code} fired on a valid example: {[(d.row, d.message) for d in found]}"
        return
    assert found, f"{code} did not fire on invalid example {i}"
    assert markers(example.code), f"{code} invalid example {i}: mark the lines it reports with `# error`"
    bad = mismatches(example.code, [(d.row, d.column) for d in found])
    assert bad == [], f"{code} invalid example {i} (rules/{code}.md line {example.line}): " + "; ".join(bad)
    if example.fixed is not None:
        fixed = fix(example.code, code)
        # A fixed example is shown without the invalid example's `# error` markers.
        assert without_markers(fixed) == example.fixed
        assert fix(fixed, code) == fixed  # idempotent
        ast.parse(fixed)


def test_every_rule_has_docs_and_every_doc_a_rule():
    rules = registry.all_rules()
    for code in rules:
        assert code in DOCS, f"{code} has no rules/{code}.md"
    for code in DOCS:
        assert code in rules or code in registry.ENGINE_CODES, f"rules/{code}.md has no implementation"


@pytest.mark.parametrize("code", sorted(DOCS))
def test_doc_structure(code):
    doc = DOCS[code]
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Allowed break", "## Fix safety"):
        assert heading in doc.body, f"{code}: missing {heading}"
    assert doc.name and doc.name == doc.name.lower() and " " not in doc.name
    assert doc.seed, f"{code}: names no seed rule"
    assert any(e.kind == "invalid" for e in doc.examples)
    assert any(e.kind == "valid" for e in doc.examples)
    if doc.fix != "never":
        assert any(e.fixed is not None for e in doc.examples), f"{code}: fixable but no fixed example"


def test_names_match_contract():
    """Codes and names are a contract (RULES.md): they must not drift."""
    import re
    from pathlib import Path

    contract = Path(__file__).resolve().parents[2] / "shared" / "RULES.md"
    if not contract.exists():
        pytest.skip("contract file not beside the checkout")
    text = contract.read_text()
    pairs = dict(re.findall(r"^\| (EQX\d{3}) \| ([a-z0-9-]+) \|", text, re.M))
    for code, doc in DOCS.items():
        if code in pairs:
            assert doc.name == pairs[code], f"{code}: name {doc.name!r} != contract {pairs[code]!r}"
