"""The generated docs (docs/rules.md, README's rule table) match the catalogue."""

from pathlib import Path

from eqxlint.app import gendocs

ROOT = Path(__file__).resolve().parent.parent


def test_rules_md_is_current():
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == gendocs.rules_md(), (
        "run `python -m eqxlint.app.gendocs` to regenerate docs/rules.md"
    )


def test_readme_table_is_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert gendocs.START in text and gendocs.END in text
    assert gendocs.readme_with_table(text) == text, "run `python -m eqxlint.app.gendocs` to update README.md"
