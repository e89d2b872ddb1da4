"""Small syntax helpers shared by every layer above: dotted names, call arguments, literals."""

from __future__ import annotations

from typing import Optional

import libcst as cst


def dotted(expr) -> Optional[str]:
    """`a.b.c` for a Name/Attribute chain, else None (no alias resolution)."""
    parts = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if isinstance(expr, cst.Name):
        parts.append(expr.value)
        return ".".join(reversed(parts))
    return None


def keyword(call: cst.Call, name: str) -> Optional[cst.Arg]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def positional(call: cst.Call) -> list:
    return [a for a in call.args if a.keyword is None and not a.star]


def argument(call: cst.Call, pos: int, kw: str):
    """The value of the argument at position `pos` or passed as `kw=`, or None."""
    args = positional(call)
    if pos < len(args):
        return args[pos].value
    a = keyword(call, kw)
    return a.value if a is not None else None


def is_true(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


def is_false(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"


def int_value(node: cst.Integer) -> int:
    """`int(node.evaluated_value)` without LibCST's `ast.literal_eval`, which compiles the
    literal (a `compile` call per integer: ~10% of the value analysis of a numeric file).
    `int(text, 0)` reads every valid integer literal (decimal, 0x/0o/0b, underscores) alike;
    anything else goes the old way (and fails as it did)."""
    try:
        return int(node.value, 0)
    except ValueError:
        return int(node.evaluated_value)
