"""Finds every rule: each module in `eqxlint.checks` is imported and its `Rule`/`ProjectRule`
subclasses with a `code` are collected. Documentation comes from the catalogue. There is no list
to edit by hand."""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re

from . import catalogue
from .. import checks
from ..core.rule import ProjectRule, Rule

CODE_RE = re.compile(r"^EQX\d{3}$")
# Engine-level codes: produced by the engine itself, documented in the catalogue.
ENGINE_CODES = ("EQX001", "EQX002")


@functools.lru_cache(maxsize=None)
def all_rules() -> dict:
    """code -> Rule or ProjectRule subclass."""
    found: dict = {}
    for info in pkgutil.iter_modules(checks.__path__):
        mod = importlib.import_module(f"{checks.__name__}.{info.name}")
        for obj in vars(mod).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, (Rule, ProjectRule))
                and obj not in (Rule, ProjectRule)
                and obj.code
                and obj.__module__ == mod.__name__
            ):
                if obj.code in found and found[obj.code] is not obj:
                    raise RuntimeError(f"two rules claim {obj.code}")
                found[obj.code] = obj
    return dict(sorted(found.items()))


def all_codes() -> list[str]:
    docs = catalogue.load_all()
    return sorted(set(all_rules()) | set(ENGINE_CODES) | set(docs))


def doc(code: str):
    return catalogue.load_all().get(code)


def expand_selector(selector: str) -> list[str]:
    """`EQX2` -> every code starting with it; `ALL`/`EQX` -> every code. Raises KeyError."""
    sel = selector.strip().upper()
    codes = all_codes()
    if sel in ("ALL", "EQX"):
        return codes
    match = [c for c in codes if c.startswith(sel)]
    if not match or not sel.startswith("EQX"):
        raise KeyError(selector)
    return match
