"""Shared by the EQX30x project rules: a diagnostic at a primitive's definition."""

from __future__ import annotations

from ..core.diagnostics import Diagnostic


def at_definition(code: str, prim, message: str) -> Diagnostic:
    return Diagnostic(
        code=code, message=message, filename=prim.path, row=prim.row, column=prim.col,
        end_row=prim.end_row, end_column=prim.end_col, noqa_row=prim.row,
        context="", line_text=prim.line_text,
    )


def label(prim) -> str:
    short = prim.qual.rsplit(".", 1)[-1]
    return f"`{short}`" + (f" (\"{prim.name}\")" if prim.name else "")

