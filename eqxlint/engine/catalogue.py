"""Reads the rule catalogue: one Markdown file per rule, `rules/<CODE>.md`, shipped inside the
package as `eqxlint.rules`.

Front matter between `---` lines holds `code`, `name`, `severity`, `principle` (the guideline the
rule enforces, as users read it: "Equinox guideline: use `throw=True` in tangent solves ..."), `fix`
(always/sometimes/never) and `fix-safety`; the body has Ruff's headings (What it does / Why is
this bad? / Example / Use instead / Allowed break / Fix safety / Options) and fenced examples
tagged ```` ```python invalid ````, ```` ```python valid ```` and ```` ```python fixed ```` (the
expected `--fix --unsafe-fixes` output of the invalid example just before it)."""

from __future__ import annotations

import dataclasses
import functools
import re
from importlib import resources
from typing import Optional

# Where the documentation site is published (built from docs/ and rules/ by MkDocs, see
# mkdocs.yml): every rule's page is `{DOCS_URL}/rules/{code}-{name}/`, the link JSON, SARIF and the
# language server give for each finding.
DOCS_URL = "https://eqxlint.readthedocs.io"

_FENCE = re.compile(r"^```python[ \t]+(invalid|valid|fixed)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
SEVERITIES = ("error", "warning", "info")


@dataclasses.dataclass
class Example:
    kind: str  # "invalid" | "valid"
    code: str
    fixed: Optional[str] = None
    line: int = 0  # line of the fence in the .md file


@dataclasses.dataclass
class RuleDoc:
    code: str
    name: str
    severity: str
    principle: str
    fix: str  # always | sometimes | never
    fix_safety: str
    default: bool
    text: str
    body: str
    examples: list[Example]

    @property
    def summary(self) -> str:
        m = re.search(r"^## What it does\s*\n+(.+?)(?:\n\n|\Z)", self.body, re.S | re.M)
        return " ".join(m.group(1).split()) if m else ""

    @property
    def seed(self) -> str:
        """Former name of `principle`."""
        return self.principle

    @property
    def slug(self) -> str:
        """The rule's page name on the documentation site: `EQX203-missing-throw`."""
        return f"{self.code}-{self.name}"

    @property
    def url(self) -> str:
        return f"{DOCS_URL}/rules/{self.slug}/"


def parse(text: str) -> RuleDoc:
    if not text.startswith("---"):
        raise ValueError("catalogue entry must start with front matter")
    _, head, body = text.split("---", 2)
    meta = {}
    for line in head.strip().splitlines():
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip().strip('"')
    examples: list[Example] = []
    for m in _FENCE.finditer(body):
        kind, code = m.group(1), m.group(2)
        line = text.count("\n", 0, len(text) - len(body) + m.start()) + 1
        if kind == "fixed":
            if not examples or examples[-1].kind != "invalid":
                raise ValueError(f"{meta.get('code')}: a fixed example must follow an invalid one")
            examples[-1].fixed = code
        else:
            examples.append(Example(kind, code, None, line))
    severity = meta.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ValueError(f"{meta.get('code')}: unknown severity {severity!r}")
    return RuleDoc(
        code=meta["code"],
        name=meta["name"],
        severity=severity,
        principle=meta.get("principle", ""),
        fix=meta.get("fix", "never"),
        fix_safety=meta.get("fix-safety", "safe"),
        default=meta.get("default", "on") != "off",
        text=text,
        body=body.strip(),
        examples=examples,
    )


@functools.lru_cache(maxsize=None)
def load_all() -> dict[str, RuleDoc]:
    docs = {}
    root = resources.files("eqxlint.rules")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("EQX") and entry.name.endswith(".md"):
            doc = parse(entry.read_text(encoding="utf-8"))
            docs[doc.code] = doc
    return docs
