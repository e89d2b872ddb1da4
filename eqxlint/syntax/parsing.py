"""Parsing with LibCST at less than LibCST's default cost, and nothing else changed.

Two costs of `libcst.parse_module` buy nothing for a linter:

- Node validation. Every node constructor runs `CSTNode.__post_init__`, which calls the
  node's `_validate()` to reject hand-built trees that could not be printed back (a `Name`
  that is not an identifier, missing whitespace between keywords, ...). A tree produced by the
  parser from real source text is valid by construction, and validation never changes a node
  (nodes are frozen); LibCST's own source says as much ("It might make more sense to move
  validation work into the visitor, which would allow us to avoid validating the tree when
  parsing a file"). `parse_module` skips it for the duration of the parse only, so trees that
  rules and fixes build by hand are still validated. Measured on the pinned corpus: the parse
  takes about 13% less time (docs/performance.md). `tests/test_parsing.py` checks that the trees
  are equal to LibCST's and that invalid source is still rejected.
- Cyclic garbage collection. A parse allocates hundreds of thousands of objects that all live
  until the file is done, and are freed by reference counting (a LibCST tree has no cycles);
  CPython's default thresholds re-scan them many times per file. `tune_gc` raises the young
  generation's threshold in processes eqxlint owns (the CLI and its workers), never when
  eqxlint is used as a library.

If LibCST's internals ever change shape, `parse_module` falls back to the plain parse.
"""

from __future__ import annotations

import gc

import libcst as cst

try:
    from libcst._nodes.base import CSTNode as _CSTNode

    _VALIDATING = _CSTNode.__dict__.get("__post_init__")
except Exception:  # pragma: no cover - a LibCST without this layout
    _CSTNode, _VALIDATING = None, None


def _no_validation(self) -> None:
    pass


def parse_module(source: str) -> cst.Module:
    """`libcst.parse_module(source)`, without re-validating the nodes the parser builds."""
    if _VALIDATING is None:
        return cst.parse_module(source)
    _CSTNode.__post_init__ = _no_validation
    try:
        return cst.parse_module(source)
    finally:
        _CSTNode.__post_init__ = _VALIDATING


# Young-generation threshold for processes eqxlint owns (CPython's default is 700).
GC_THRESHOLD = 50_000


def tune_gc() -> None:
    """Fewer cyclic collections: objects alive since start-up are frozen out of every
    collection, and the young generation is collected every GC_THRESHOLD allocations."""
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, g1, g2)
