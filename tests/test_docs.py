"""The generated docs (per-rule pages, the rule list, the site's home page, README's rule table)
match the catalogue, and the documentation site builds without a warning, with one page per rule
at the URL eqxlint links every finding to."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eqxlint.app import gendocs
from eqxlint.engine import catalogue

ROOT = Path(__file__).resolve().parent.parent


def test_generated_files_are_current():
    files = gendocs.generated(ROOT)
    stale = [str(p.relative_to(ROOT)) for p, text in files.items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    assert stale == [], f"run `python -m eqxlint.app.gendocs` to regenerate {stale}"
    extra = [p.name for p in (ROOT / "docs" / "rules").glob("*.md") if p not in files]
    assert extra == [], f"pages of rules that no longer exist: {extra}"


def test_readme_table_is_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert gendocs.START in text and gendocs.END in text
    assert gendocs.readme_with_table(text) == text, "run `python -m eqxlint.app.gendocs` to update README.md"


def test_rule_pages_are_where_the_links_point():
    for doc in catalogue.load_all().values():
        assert doc.url == f"{catalogue.DOCS_URL}/rules/{doc.code}-{doc.name}/"
        page = ROOT / "docs" / "rules" / f"{doc.slug}.md"
        text = page.read_text(encoding="utf-8")
        assert f"# {doc.code} {doc.name}\n" in text and doc.principle in text
        assert "seeds/" not in text and "```python invalid" not in text


def test_site_builds_strict(tmp_path):
    """`mkdocs build --strict` (skipped without the `docs` extra)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    for doc in catalogue.load_all().values():
        path = doc.url[len(catalogue.DOCS_URL) + 1:]  # rules/EQX203-missing-throw/
        page = site / path / "index.html"
        assert page.is_file(), path
        assert f"{doc.code} {doc.name}" in page.read_text(encoding="utf-8")
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="eqxlint.runtime.define_primitive"' in api and "check_primitive" in api
    assert (site / "runtime" / "index.html").is_file() and (site / "editors" / "index.html").is_file()


def test_readme_shows_what_the_first_command_prints(run_cli):
    """The set-up section's expected output is what `eqxlint check fixtures/training_scripts`
    prints (messages may be shortened with `…`), and the two environments are distinct."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [l for l in setup.splitlines() if l.startswith("python3 -m venv")]
    assert len(commands) == 2
    envs = [c.split()[3] for c in commands]
    assert envs[0] != envs[1], envs
    assert commands[0].endswith("eqxlint check fixtures/training_scripts")
    shown = setup.split("```console\n", 1)[1].split("```", 1)[0].splitlines()
    r = run_cli("check", "--no-cache", "fixtures/training_scripts", cwd=ROOT)
    assert r.returncode == 1
    got = r.stdout.splitlines()
    assert len(got) == len(shown)
    for want, line in zip(shown, got):
        if want.endswith(" …"):
            assert line.startswith(want[:-2]), (want, line)
        else:
            assert line == want
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci, "`.ci/run` must run the README's test command"


def test_mkdocs_site_url_is_the_links_base():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert f"\nsite_url: {catalogue.DOCS_URL}/\n" in config


def test_gendocs_refuses_what_is_not_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        gendocs.main(["--help"])
    assert e.value.code == 0
    with pytest.raises(SystemExit) as e:
        gendocs.main([str(tmp_path)])
    assert e.value.code == 2
    assert list(tmp_path.iterdir()) == []  # nothing written, no `--help/docs/...`
