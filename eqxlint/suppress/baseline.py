"""Baselines: adopt eqxlint on a large repository without fixing every old finding first.

`eqxlint check --write-baseline eqxlint-baseline.json` records today's findings;
`eqxlint check --baseline eqxlint-baseline.json` reports (and fails on) only findings that are not
in it. A finding is matched by its fingerprint, never by its line number:

    (code, file path relative to the baseline file's folder, enclosing function, normalised
     source of the flagged line)

so inserting or deleting unrelated lines does not turn old findings into new ones. Counts are
kept: two identical findings in one function need two entries, and a third one is new. The file
is sorted JSON with one finding per entry, stable across runs, so it diffs well and can be
committed; fixed findings drop out the next time it is written.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

VERSION = 1


class BaselineError(ValueError):
    pass


def _relpath(filename: str, folder: Path) -> str:
    return os.path.relpath(os.path.abspath(filename), folder).replace(os.sep, "/")


def fingerprint(d, folder: Path) -> tuple:
    return (d.code, _relpath(d.filename, folder), d.context or "", " ".join((d.line_text or "").split()))


def _folder(path: Path) -> Path:
    return Path(os.path.abspath(path)).parent


def write(path: Path, diags: list) -> int:
    """Record `diags` in the baseline file `path`. Returns the number of findings recorded."""
    path = Path(path)
    folder = _folder(path)
    counts = Counter(fingerprint(d, folder) for d in diags)
    entries = [
        {"code": code, "file": file, "context": context, "line": line, "count": n}
        for (code, file, context, line), n in sorted(counts.items())
    ]
    doc = {"version": VERSION, "tool": "eqxlint", "findings": entries}
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return sum(counts.values())


def load(path: Path) -> Counter:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        from ..core.diagnostics import ConfigError

        raise ConfigError(f"baseline file {path} does not exist (create it with --write-baseline)") from None
    except (OSError, ValueError) as e:
        from ..core.diagnostics import ConfigError

        raise ConfigError(f"cannot read baseline file {path}: {e}") from None
    out: Counter = Counter()
    for e in doc.get("findings", []) if isinstance(doc, dict) else []:
        try:
            out[(e["code"], e["file"], e.get("context", ""), e.get("line", ""))] += int(e.get("count", 1))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def filter_new(path: Path, diags: list) -> list:
    """The findings of `diags` that the baseline does not account for, in their order."""
    known = load(path)
    folder = _folder(path)
    out = []
    for d in diags:
        fp = fingerprint(d, folder)
        if known[fp] > 0:
            known[fp] -= 1
        else:
            out.append(d)
    return out
