"""Generates the rule documentation from the catalogue, so it is never written twice:
`python -m eqxlint.app.gendocs` rewrites docs/rules.md and the rule table in README.md
(between the `<!-- rules:start -->` and `<!-- rules:end -->` markers)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..engine import catalogue, registry

START, END = "<!-- rules:start -->", "<!-- rules:end -->"


def rule_table() -> str:
    docs = catalogue.load_all()
    rules = registry.all_rules()
    lines = ["| code | name | severity | fix | what it flags |", "|---|---|---|---|---|"]
    for code in sorted(docs):
        doc = docs[code]
        fix = {"always": "✔", "sometimes": "✔ (some)", "never": ""}.get(doc.fix, doc.fix)
        if doc.fix != "never" and doc.fix_safety == "unsafe":
            fix += " unsafe"
        status = "" if (code in rules or code in registry.ENGINE_CODES) else " *(planned)*"
        summary = doc.summary.replace("|", "\\|")
        if len(summary) > 160:
            summary = summary[:157].rsplit(" ", 1)[0] + " …"
        lines.append(f"| [{code}](docs/rules.md#{code.lower()}-{doc.name}) | `{doc.name}`{status} | {doc.severity} | {fix} | {summary} |")
    return "\n".join(lines)


def rules_md() -> str:
    docs = catalogue.load_all()
    out = [
        "# Rules",
        "",
        "Generated from `rules/EQX*.md` by `python -m eqxlint.app.gendocs`; `eqxlint rule CODE` prints",
        "the same text. Codes and names are a stable contract.",
        "",
    ]
    for code in sorted(docs):
        doc = docs[code]
        out.append(f"## {code} {doc.name}")
        out.append("")
        out.append(f"*Severity:* {doc.severity} · *Fix:* {doc.fix}"
                   + (f" ({doc.fix_safety})" if doc.fix != "never" else "")
                   + (f" · *Seed rule:* {doc.seed}" if doc.seed else ""))
        out.append("")
        body = doc.body.split("\n## Examples", 1)[0].strip()
        out.append(body.replace("\n## ", "\n### "))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def readme_with_table(text: str) -> str:
    if START not in text or END not in text:
        return text
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{rule_table()}\n{END}{tail}"


def main(argv=None) -> int:
    root = Path(argv[0]) if argv else Path.cwd()
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "rules.md").write_text(rules_md(), encoding="utf-8")
    readme = root / "README.md"
    if readme.exists():
        readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
