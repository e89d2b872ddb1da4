"""The values the engine produces: diagnostics, fixes and text edits."""

from __future__ import annotations

import dataclasses
from typing import Optional

# Fix applicability, as Ruff names it.
SAFE = "safe"
UNSAFE = "unsafe"


@dataclasses.dataclass(frozen=True)
class Edit:
    """Replace the characters [start, end) of the file's text (character offsets) by `content`."""

    start: int
    end: int
    content: str


@dataclasses.dataclass(frozen=True)
class Fix:
    message: str
    applicability: str  # SAFE or UNSAFE
    edits: tuple[Edit, ...]


class Cited(str):
    """A message that cites other rows of its file ("after line 7 already used it"), with those
    rows (`Diagnostic.refs`). `Rule.report(..., refs=...)` wraps the message so; the diagnostic
    made from it takes the rows into `refs` and keeps the message as a plain `str`."""

    refs: tuple = ()

    def __new__(cls, text: str, refs=()):
        obj = super().__new__(cls, text)
        obj.refs = tuple(refs)
        return obj


@dataclasses.dataclass
class Diagnostic:
    code: str
    message: str
    filename: str
    row: int  # 1-based
    column: int  # 1-based, in characters
    end_row: int
    end_column: int
    severity: str = "warning"
    fix: Optional[Fix] = None
    noqa_row: Optional[int] = None
    cell: Optional[int] = None  # 1-based notebook cell, when linting a notebook
    # Cross-file condition; the finding only stands if the project index satisfies it.
    requires: Optional[tuple] = None
    # Stable fingerprint inputs for baselines: enclosing function and normalised line text.
    context: str = ""
    line_text: str = ""
    # Why the code is traced, when that is not local: the call chain, innermost step first
    # (dicts with function, path, row, how, by). Shown in `full` and JSON output.
    trace: Optional[list] = None
    # The rows of the file the message cites, in the order it cites them ("after line 7"): the
    # notebook output rewrites each "line N" into "cell C, line M".
    refs: tuple = ()

    def __post_init__(self):
        if isinstance(self.message, Cited):
            if not self.refs:
                self.refs = self.message.refs
            self.message = str(self.message)
        if not isinstance(self.refs, tuple):
            self.refs = tuple(self.refs)

    def sort_key(self):
        return (self.filename, self.cell or 0, self.row, self.column, self.code)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Diagnostic":
        data = dict(data)
        fix = data.get("fix")
        if fix is not None:
            data["fix"] = Fix(
                message=fix["message"],
                applicability=fix["applicability"],
                edits=tuple(Edit(**e) for e in fix["edits"]),
            )
        if data.get("requires") is not None:
            data["requires"] = _requires(data["requires"])
        return cls(**data)


def _condition(c):
    """A condition read back from JSON as the rule built it: the condition itself a tuple (also
    the one inside `("not", c)`), its arguments (tracedness conditions: lists) as they were."""
    if isinstance(c, list) and c and isinstance(c[0], str):
        c = tuple(c)
    if isinstance(c, tuple) and len(c) > 1 and c[0] == "not":
        c = (c[0], _condition(c[1])) + c[2:]
    return c


def _requires(requires):
    """`Diagnostic.requires` from JSON (the cache): one condition, or a tuple of conditions."""
    if requires and isinstance(requires[0], str):
        return _condition(requires)
    return tuple(_condition(c) for c in requires)


class ConfigError(Exception):
    """A usage or configuration error: exit code 2, one line, no traceback."""
