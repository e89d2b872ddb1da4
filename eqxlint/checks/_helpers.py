"""Small helpers shared by rule modules: argument access (re-exported from `eqxlint.syntax.nodes`)
and the short form of a qualified name for messages (`eqxlint.semantics.tracing.short`)."""

from __future__ import annotations

from ..semantics.tracing import short as short  # noqa: F401
from ..syntax.nodes import argument as argument, keyword as keyword, positional as positional  # noqa: F401

