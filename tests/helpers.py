"""Shared test helpers: lint a snippet with every rule on, apply fixes to a snippet."""

from __future__ import annotations

from pathlib import Path

from eqxlint.engine import run as engine
from eqxlint.app import fixes
from eqxlint.app.config import Settings


def lint(code: str, path: str = "example.py", module_name: str = "example", **settings) -> list:
    s = Settings(root=Path.cwd(), **settings)
    run = engine.RunConfig(s)
    res = engine.lint_source(code, path, run, module_name)
    return engine.finalize([res], run)


def codes(code: str, **kw) -> list:
    return [d.code for d in lint(code, **kw)]


def rows(code: str, rule: str, **kw) -> list:
    return sorted(d.row for d in lint(code, **kw) if d.code == rule)


def fix(code: str, rule: str | None = None, unsafe: bool = True, rounds: int = 10) -> str:
    """Apply fixes (of one rule, or all) until nothing applicable is left."""
    for _ in range(rounds):
        diags = [d for d in lint(code) if rule is None or d.code == rule]
        new, applied = fixes.apply_edits(code, diags, unsafe)
        if not applied or new == code:
            return code
        code = new
    return code
