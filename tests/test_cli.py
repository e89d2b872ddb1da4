"""The command line as users and CI see it: exit codes, formats (Ruff's JSON schema), selection,
suppression, configuration errors, `eqxlint rule`, fixes, and the pre-commit hook entries."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BAD = '''import jax


@jax.jit
def step(x):
    print("x =", x)
    return x * 2
'''
CLEAN = "import jax.numpy as jnp\n\n\ndef f(x):\n    return jnp.sin(x)\n"


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "clean.py").write_text(CLEAN)
    return tmp_path


def test_exit_codes(run_cli, repo):
    assert run_cli("check", "clean.py", cwd=repo).returncode == 0
    r = run_cli("check", ".", cwd=repo)
    assert r.returncode == 1
    assert "bad.py:6:5: EQX209" in r.stdout
    assert "clean.py" not in r.stdout
    assert run_cli("check", ".", "--exit-zero", cwd=repo).returncode == 0
    r = run_cli("check", "missing.py", cwd=repo)
    assert r.returncode == 2 and "no such file" in r.stderr


def test_a_missing_path_is_never_all_checks_passed(run_cli, repo):
    r = run_cli("check", "does_not_exist.py", cwd=repo)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "eqxlint: error: does_not_exist.py: no such file or directory\n"
    # With a path that exists too: its findings and summary, but never "All checks passed!".
    r = run_cli("check", "clean.py", "does_not_exist.py", cwd=repo)
    assert r.returncode == 2 and "All checks passed!" not in r.stdout
    r = run_cli("check", "bad.py", "does_not_exist.py", cwd=repo)
    assert r.returncode == 2 and "bad.py:6:5: EQX209" in r.stdout


MIXED = '''import equinox as eqx
import jax


class M(eqx.Module):
    w: jax.Array


@jax.jit
def f(m: M):
    return m.w


g = jax.pmap(f)
'''


def test_summary_counts_by_severity(run_cli, repo):
    (repo / "more.py").write_text(BAD)
    (repo / "mixed.py").write_text(MIXED)
    r = run_cli("check", ".", cwd=repo)
    codes = [l.split(": ")[1].split()[0] for l in r.stdout.splitlines() if ".py:" in l]
    assert sorted(codes) == ["EQX101", "EQX112", "EQX209", "EQX209"]  # warning, info, 2 errors
    assert "Found 4 findings: 2 errors, 1 warning, 1 info." in r.stdout
    assert "Found 1 finding: 1 error." in run_cli("check", "bad.py", cwd=repo).stdout
    assert "Found 2 findings: 1 warning, 1 info." in run_cli("check", "mixed.py", cwd=repo).stdout


def test_json_is_ruffs_schema(run_cli, repo):
    r = run_cli("check", ".", "--output-format", "json", "--unsafe-fixes", cwd=repo)
    data = json.loads(r.stdout)
    assert len(data) == 1
    d = data[0]
    assert set(d) >= {"code", "message", "filename", "location", "end_location", "fix", "noqa_row", "url", "cell"}
    assert d["code"] == "EQX209"
    assert d["location"] == {"row": 6, "column": 5}
    assert d["end_location"]["row"] == 6 and d["end_location"]["column"] > 5
    assert Path(d["filename"]).name == "bad.py" and Path(d["filename"]).is_absolute()
    assert d["noqa_row"] == 6
    assert d["fix"]["applicability"] == "unsafe"
    edit = d["fix"]["edits"][0]
    assert edit["content"].startswith("jax.debug.print(")
    assert edit["location"] == {"row": 6, "column": 5}
    assert d["url"].endswith("print-under-jit/")


def test_json_lines_github_sarif(run_cli, repo):
    r = run_cli("check", ".", "--output-format", "json-lines", cwd=repo)
    assert [json.loads(x)["code"] for x in r.stdout.splitlines()] == ["EQX209"]
    r = run_cli("check", ".", "--output-format", "github", cwd=repo)
    assert r.stdout.startswith("::error title=eqxlint (EQX209),file=") and ",line=6,col=5," in r.stdout
    r = run_cli("check", ".", "--output-format", "sarif", cwd=repo)
    sarif = json.loads(r.stdout)
    assert sarif["version"] == "2.1.0"
    res = sarif["runs"][0]["results"]
    assert res[0]["ruleId"] == "EQX209" and res[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 6
    r = run_cli("check", ".", "--output-format", "full", cwd=repo)
    assert '6 |     print("x =", x)' in r.stdout and "^" in r.stdout


def test_select_ignore_by_code_and_prefix(run_cli, repo):
    assert run_cli("check", ".", "--select", "EQX1", cwd=repo).returncode == 0
    assert run_cli("check", ".", "--select", "EQX2", cwd=repo).returncode == 1
    assert run_cli("check", ".", "--ignore", "EQX209", cwd=repo).returncode == 0
    assert run_cli("check", ".", "--select", "EQX101", "--extend-select", "EQX209", cwd=repo).returncode == 1


def test_unknown_code_is_a_usage_error(run_cli, repo):
    r = run_cli("check", ".", "--select", "EQX999", cwd=repo)
    assert r.returncode == 2
    assert "EQX999" in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_config_errors_name_file_and_key(run_cli, tmp_path):
    (tmp_path / "a.py").write_text(CLEAN)
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\nselect = [\"EQX1\"\n")
    r = run_cli("check", ".", cwd=tmp_path)
    assert r.returncode == 2 and "pyproject.toml" in r.stderr and "invalid TOML" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\nselcet = [\"EQX1\"]\n")
    r = run_cli("check", ".", cwd=tmp_path)
    assert r.returncode == 2 and "selcet" in r.stderr and "unknown key" in r.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\nignore = [\"EQX777\"]\n")
    r = run_cli("check", ".", cwd=tmp_path)
    assert r.returncode == 2 and "EQX777" in r.stderr and "`tool.eqxlint.ignore`" in r.stderr


def test_config_select_and_per_file_ignores(run_cli, repo):
    (repo / "pyproject.toml").write_text('[tool.eqxlint]\nper-file-ignores = { "bad.py" = ["EQX2"] }\n')
    assert run_cli("check", ".", cwd=repo).returncode == 0
    (repo / "pyproject.toml").write_text('[tool.eqxlint]\nignore = ["EQX209"]\n')
    assert run_cli("check", ".", cwd=repo).returncode == 0
    # the config is found by walking up from the linted path
    sub = repo / "pkg"
    sub.mkdir()
    (sub / "m.py").write_text(BAD)
    assert run_cli("check", "pkg/m.py", cwd=repo).returncode == 0
    assert run_cli("check", "pkg/m.py", "--isolated", cwd=repo).returncode == 1


def test_exclude_and_gitignore(run_cli, repo):
    (repo / "build").mkdir()
    (repo / "build" / "gen.py").write_text(BAD)
    (repo / "vendored").mkdir()
    (repo / "vendored" / "x.py").write_text(BAD)
    (repo / ".gitignore").write_text("vendored/\n")
    r = run_cli("check", ".", "--output-format", "json", cwd=repo)
    files = {Path(d["filename"]).relative_to(repo).as_posix() for d in json.loads(r.stdout)}
    assert files == {"bad.py"}
    r = run_cli("check", ".", "--extend-exclude", "bad.py", cwd=repo)
    assert r.returncode == 0
    # a file named on the command line is linted unless --force-exclude
    assert run_cli("check", "build/gen.py", cwd=repo).returncode == 1
    assert run_cli("check", "build/gen.py", "--force-exclude", cwd=repo).returncode == 0


def test_noqa_line_and_file(run_cli, repo):
    (repo / "bad.py").write_text(BAD.replace('print("x =", x)', 'print("x =", x)  # noqa: EQX209'))
    assert run_cli("check", ".", cwd=repo).returncode == 0
    (repo / "bad.py").write_text(BAD.replace('print("x =", x)', 'print("x =", x)  # noqa: E501'))
    assert run_cli("check", ".", cwd=repo).returncode == 1  # other tools' codes don't suppress
    (repo / "bad.py").write_text("# eqxlint: noqa\n" + BAD)
    assert run_cli("check", ".", cwd=repo).returncode == 0
    (repo / "bad.py").write_text(BAD.replace("return x * 2", "return x * 2  # noqa: EQX101"))
    r = run_cli("check", ".", cwd=repo)
    assert "EQX002" in r.stdout and "EQX209" in r.stdout


def test_fix_diff_and_unsafe(run_cli, repo):
    r = run_cli("check", ".", "--fix", cwd=repo)
    assert r.returncode == 1  # EQX209's fix is unsafe: nothing applied
    assert (repo / "bad.py").read_text() == BAD
    r = run_cli("check", ".", "--diff", "--unsafe-fixes", cwd=repo)
    assert "+    jax.debug.print(\"x = {}\", x)" in r.stdout
    assert (repo / "bad.py").read_text() == BAD
    r = run_cli("check", ".", "--fix", "--unsafe-fixes", "--show-fixes", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Fixed 1 finding:" in r.stdout
    assert 'jax.debug.print("x = {}", x)' in (repo / "bad.py").read_text()
    r = run_cli("check", ".", "--fix", "--unsafe-fixes", cwd=repo)
    assert r.returncode == 0 and "All checks passed!" in r.stdout


def test_statistics(run_cli, repo):
    (repo / "more.py").write_text(BAD)
    r = run_cli("check", ".", "--statistics", cwd=repo)
    assert r.returncode == 1
    line = r.stdout.strip().splitlines()[0].split("\t")
    assert line[0].strip() == "2" and line[1] == "EQX209" and "print-under-jit" in line[2]


def test_rule_command(run_cli, tmp_path):
    r = run_cli("rule", "EQX209", cwd=tmp_path)
    assert r.returncode == 0
    assert "print-under-jit" in r.stdout and "## Allowed break" in r.stdout
    r = run_cli("rule", "--all", "--output-format", "json", cwd=tmp_path)
    rows = {x["code"]: x for x in json.loads(r.stdout)}
    for code in ("EQX001", "EQX002", "EQX101", "EQX203", "EQX209", "EQX301", "EQX302", "EQX401"):
        assert rows[code]["implemented"]
    assert rows["EQX209"]["fix"] == "sometimes" and rows["EQX209"]["severity"] == "error"
    assert run_cli("rule", "EQX999", cwd=tmp_path).returncode == 2


def test_rule_by_name(run_cli, tmp_path):
    by_code = run_cli("rule", "EQX401", cwd=tmp_path)
    by_name = run_cli("rule", "key-reuse", cwd=tmp_path)
    assert by_name.returncode == 0 and by_name.stdout == by_code.stdout
    assert by_code.stdout.startswith("# EQX401 key-reuse (error)")
    assert run_cli("rule", "eqx401", cwd=tmp_path).stdout == by_code.stdout
    r = run_cli("rule", "no-such-rule", cwd=tmp_path)
    assert r.returncode == 2 and "key-reuse" in r.stderr


def test_rule_all_columns_line_up(run_cli, tmp_path):
    import re

    lines = run_cli("rule", "--all", cwd=tmp_path).stdout.splitlines()
    assert len(lines) > 30 and lines[0].split() == ["code", "name", "severity", "fix"]
    for column in (1, 2, 3):  # where each column starts is the same on every line
        starts = {m.start() for m in (list(re.finditer(r"\S+", l))[column] for l in lines)}
        assert len(starts) == 1, (column, starts)
    names = [l.split()[1] for l in lines[1:]]
    assert max(map(len, names)) > 32  # the longest name is longer than the old fixed width


def test_rule_text_cites_principles_not_internal_documents(run_cli, tmp_path):
    from eqxlint.engine import catalogue

    for doc in catalogue.load_all().values():
        assert doc.principle and "seeds/" not in doc.principle and "seed" not in doc.principle.lower()
        assert "seeds/" not in doc.text
    r = run_cli("rule", "EQX203", cwd=tmp_path)
    assert "seed" not in r.stdout.lower()
    assert r.stdout.split("\n")[2] == "Equinox guideline: use `throw=True` in tangent solves when errors can't be routed."
    assert r.stdout.rstrip().endswith("Online: https://eqxlint.readthedocs.io/rules/EQX203-missing-throw/")
    data = json.loads(run_cli("rule", "EQX203", "--output-format", "json", cwd=tmp_path).stdout)
    assert data["principle"].startswith("Equinox guideline: use `throw=True`") and "seed" not in data


def test_add_noqa_never_says_all_checks_passed(run_cli, repo):
    r = run_cli("check", ".", "--add-noqa", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Added 1 noqa directive." in r.stderr
    assert "All checks passed!" not in r.stdout + r.stderr
    assert "# noqa: EQX209" in (repo / "bad.py").read_text()


def test_baseline_says_how_many_it_hid(run_cli, repo):
    (repo / "more.py").write_text(BAD)
    assert run_cli("check", ".", "--write-baseline", "base.json", cwd=repo).returncode == 0
    r = run_cli("check", ".", "--baseline", "base.json", cwd=repo)
    assert r.returncode == 0
    assert r.stdout.splitlines()[-1] == "2 findings hidden by the baseline base.json."
    (repo / "new.py").write_text(BAD)
    r = run_cli("check", ".", "--baseline", "base.json", cwd=repo)
    assert r.returncode == 1 and "Found 1 finding: 1 error." in r.stdout
    assert "2 findings hidden by the baseline base.json." in r.stdout
    r = run_cli("check", ".", "--baseline", "base.json", "--output-format", "json", cwd=repo)
    assert len(json.loads(r.stdout)) == 1
    assert "2 findings hidden by the baseline base.json" in r.stderr


def test_syntax_error_is_a_finding_not_a_crash(run_cli, repo):
    (repo / "broken.py").write_text("def f(:\n    pass\n")
    r = run_cli("check", ".", cwd=repo)
    assert r.returncode == 1
    assert "broken.py:1:" in r.stdout and "EQX001" in r.stdout
    assert "bad.py:6:5: EQX209" in r.stdout  # the other files are still linted


def test_python_api(repo):
    from eqxlint import check_paths

    report = check_paths([repo], jobs=1, cache=False)
    assert [(Path(d.filename).name, d.row, d.code) for d in report.diagnostics] == [("bad.py", 6, "EQX209")]
    assert report.exit_code == 1


def _hook_entry(hook_id: str) -> list[str]:
    import re

    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    block = text.split(f"- id: {hook_id}\n", 1)[1].split("\n- id:", 1)[0]
    entry = re.search(r"^\s*entry: (.+)$", block, re.M).group(1)
    return shlex.split(entry)


def test_pre_commit_hooks(repo):
    """Run each hook's entry as pre-commit does: the entry plus a list of staged file names."""
    staged = ["bad.py", "clean.py"]
    entry = _hook_entry("eqxlint")
    assert entry[0] == "eqxlint"
    cmd = [sys.executable, "-m", "eqxlint", *entry[1:], *staged]
    r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    assert r.returncode == 1 and "bad.py:6:5: EQX209" in r.stdout
    # excluded files stay excluded even when pre-commit names them
    (repo / "pyproject.toml").write_text('[tool.eqxlint]\nextend-exclude = ["bad.py"]\n')
    r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    (repo / "pyproject.toml").write_text("[tool.eqxlint]\n")
    fix_entry = _hook_entry("eqxlint-fix")
    (repo / "jitted.py").write_text(
        "import jax\nimport equinox as eqx\n\n\n@jax.jit\ndef f(model: eqx.nn.Linear, x):\n    return model(x)\n"
    )
    r = subprocess.run([sys.executable, "-m", "eqxlint", *fix_entry[1:], "jitted.py"], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 1  # a fix was applied: pre-commit must show the change
    assert "@eqx.filter_jit" in (repo / "jitted.py").read_text()
    r = subprocess.run([sys.executable, "-m", "eqxlint", *fix_entry[1:], "jitted.py"], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0


def test_linter_never_imports_jax(run_cli, repo):
    code = (
        "import sys\nfrom eqxlint.app.cli import main\n"
        "rc = main(['check', '.', '--no-cache', '--exit-zero'])\n"
        "assert 'jax' not in sys.modules, 'jax imported'\n"
        "assert 'equinox' not in sys.modules\n"
        "print('ok', rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0 and "ok 0" in r.stdout, r.stderr


def test_runtime_does_not_import_linter():
    code = (
        "import sys\nimport eqxlint.runtime\n"
        "assert 'libcst' not in sys.modules\nassert 'eqxlint.engine' not in sys.modules\nprint('ok')\n"
    )
    pytest.importorskip("jax")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
