"""Every rule's catalogue entry is its test: each `invalid` example reports the rule's code (on
exactly the lines marked `# error`, when marked), each `valid` example does not, and each
`fixed` example is what the rule's fixes produce — and fixing it again changes nothing."""

from __future__ import annotations

import ast

import pytest

from eqxlint.engine import catalogue, registry

from helpers import fix, lint

DOCS = catalogue.load_all()
CASES = [
    pytest.param(doc.code, i, ex, id=f"{doc.code}-{ex.kind}-{i}")
    for doc in DOCS.values()
    for i, ex in enumerate(doc.examples)
]


@pytest.mark.parametrize("code,i,example", CASES)
def test_example(code, i, example):
    found = [d for d in lint(example.code) if d.code == code]
    marked = [n for n, line in enumerate(example.code.splitlines(), 1) if line.rstrip().endswith("# error")]
    if example.kind == "valid":
        assert found == [], f"{code} fired on a valid example: {[(d.row, d.message) for d in found]}"
        return
    assert found, f"{code} did not fire on invalid example {i}"
    if marked:
        assert sorted({d.row for d in found}) == marked
    if example.fixed is not None:
        fixed = fix(example.code, code)
        assert fixed == example.fixed
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
