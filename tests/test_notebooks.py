"""Notebooks: cells linted as one module in order, findings located by cell, fixes that touch only
the changed cells' `source` lines, broken notebooks reported (never a crash)."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

from eqxlint.app import api, notebook
from eqxlint.app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "notebooks" / "primitives_tutorial.ipynb"


def _nb(*cells, indent=1, ensure_ascii=False, trailing_newline=True, language="python") -> str:
    out = []
    for i, c in enumerate(cells):
        if c.startswith("MD:"):
            out.append({"cell_type": "markdown", "id": f"m{i}", "metadata": {}, "source": c[3:].splitlines(True)})
        else:
            out.append({"cell_type": "code", "execution_count": i, "id": f"c{i}", "metadata": {"tags": ["x"]},
                        "outputs": [{"name": "stdout", "output_type": "stream", "text": ["ok ✓\n"]}],
                        "source": c.splitlines(True)})
    nb = {"cells": out, "metadata": {"language_info": {"name": language}}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=indent, ensure_ascii=ensure_ascii) + ("\n" if trailing_newline else "")


def _check(path: Path, **kw):
    settings = Settings(root=path.parent)
    return api.check_paths([path], settings=settings, cache=False, jobs=1, **kw)


def _findings(report) -> list:
    return [(d.cell, d.row, d.column, d.code) for d in report.diagnostics]


def test_fixture_reports_exactly_the_expected_findings(run_cli):
    expected = (ROOT / "fixtures" / "notebooks" / "expected.txt").read_text().split("\n")
    expected = [l for l in expected if l.strip()]
    r = run_cli("check", "--no-cache", "--quiet", "fixtures/notebooks/primitives_tutorial.ipynb", cwd=ROOT)
    assert r.returncode == 1, r.stderr
    got = [line.split(": ", 1)[0] + ": " + line.split(": ", 2)[1].split()[0] for line in r.stdout.splitlines()]
    assert got == expected, r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def test_fixture_is_found_under_a_folder_and_json_names_the_cell(run_cli, tmp_path):
    shutil.copy(FIXTURE, tmp_path / "tut.ipynb")
    r = run_cli("check", "--no-cache", "--isolated", "--output-format", "json", ".", cwd=tmp_path)
    rows = json.loads(r.stdout)
    assert [(d["cell"], d["location"]["row"], d["code"]) for d in rows] == [
        (5, 2, "EQX209"), (9, 5, "EQX209"), (10, 3, "EQX002")
    ]
    fix = rows[1]["fix"]
    assert fix["edits"][0]["location"] == {"row": 5, "column": 5}  # within the cell


def test_fix_changes_only_the_fixed_source_lines(run_cli, tmp_path):
    nb = tmp_path / "tut.ipynb"
    shutil.copy(FIXTURE, nb)
    before = nb.read_text(encoding="utf-8")
    r = run_cli("check", "--no-cache", "--isolated", "--fix", "--unsafe-fixes", "tut.ipynb", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    after = nb.read_text(encoding="utf-8")
    changed = [l for l in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
               if l[:1] in "+-" and not l.startswith(("+++", "---"))]
    assert changed == [
        '-    "    print(\\"tracing scaled_matmul_impl\\")\\n",\n',
        '+    "    jax.debug.print(\\"tracing scaled_matmul_impl\\")\\n",\n',
        '-    "    print(\\"batched shapes:\\", ys.shape)\\n",\n',
        '+    "    jax.debug.print(\\"batched shapes: {}\\", ys.shape)\\n",\n',
        '-    "total = jnp.sum(ys)  # noqa: EQX209\\n",\n',
        '+    "total = jnp.sum(ys)\\n",\n',
    ]
    assert after.endswith("}\n")
    old, new = json.loads(before), json.loads(after)
    assert [c.get("outputs") for c in old["cells"]] == [c.get("outputs") for c in new["cells"]]
    assert old["metadata"] == new["metadata"]
    # Fixed: nothing left to report.
    r = run_cli("check", "--no-cache", "--isolated", "tut.ipynb", cwd=tmp_path)
    assert r.returncode == 0, r.stdout


def test_fix_keeps_foreign_formatting(tmp_path):
    """indent=2, ASCII escapes, no trailing newline: kept; unchanged lines keep their escapes."""
    nb = tmp_path / "n.ipynb"
    text = _nb("import jax\nx = 'π'", "@jax.jit\ndef f(x):\n    print('café', x)\n    return x",
               indent=2, ensure_ascii=True, trailing_newline=False)
    nb.write_text(text, encoding="utf-8")
    report = _check(nb, fix=True, unsafe_fixes=True)
    assert report.fixed and not report.diagnostics
    after = nb.read_text(encoding="utf-8")
    assert not after.endswith("\n")
    diff = [l for l in difflib.ndiff(text.splitlines(), after.splitlines()) if l[:1] in "+-"]
    assert diff == ['-         "    print(\'caf\\u00e9\', x)\\n",',
                    '+         "    jax.debug.print(\\"caf\\u00e9 {}\\", x)\\n",']


def test_scopes_imports_and_aliases_carry_across_cells(tmp_path):
    nb = tmp_path / "n.ipynb"
    nb.write_text(_nb(
        "import jax as jx\n%matplotlib inline",
        "MD:# a title\n\n```python\n@jax.jit\ndef g(x):\n    print(x)\n```",
        "!pip install -q equinox\nfiles = !ls\nhelp_me = 1\njx.numpy?",
        "def helper(x):\n    print(x)\n    return x",
        "%%time\nfast = jx.jit(helper)",
        "%%bash\necho 'not python at all' (((",
        "def broken(:\n    pass",
        "@jx.jit\ndef h(y):\n    %time z = y\n    print(y)\n    return y",
    ))
    report = _check(nb)
    assert _findings(report) == [(4, 2, 5, "EQX209"), (7, 1, 12, "EQX001"), (8, 4, 5, "EQX209")], report.diagnostics
    assert not report.errors


def test_fix_across_cells_adds_the_import_to_the_import_cell(tmp_path):
    nb = tmp_path / "n.ipynb"
    nb.write_text(_nb("from jax import jit", "MD:text", "@jit\ndef f(x):\n    print(x)\n    return x\n"))
    report = _check(nb, fix=True, unsafe_fixes=True)
    assert not report.diagnostics, report.diagnostics
    cells = json.loads(nb.read_text())["cells"]
    assert cells[0]["source"] == ["from jax import jit\n", "import jax"]
    assert "".join(cells[2]["source"]) == "@jit\ndef f(x):\n    jax.debug.print(\"{}\", x)\n    return x\n"


def test_invalid_json_is_one_eqx001_naming_the_file(run_cli, tmp_path):
    (tmp_path / "bad.ipynb").write_text('{"cells": [', encoding="utf-8")
    (tmp_path / "notnb.ipynb").write_text('[1, 2]', encoding="utf-8")
    r = run_cli("check", "--no-cache", "--isolated", ".", cwd=tmp_path)
    assert r.returncode == 1
    lines = [l for l in r.stdout.splitlines() if "EQX001" in l]
    assert len(lines) == 2
    assert lines[0].startswith("bad.ipynb:1:1: EQX001") and "not valid JSON" in lines[0]
    assert lines[1].startswith("notnb.ipynb:1:1: EQX001") and "not a Jupyter notebook" in lines[1]
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


def test_non_python_notebooks_are_skipped(tmp_path):
    nb = tmp_path / "r.ipynb"
    nb.write_text(_nb("library(jax)\nprint(x)", language="R"))
    assert _check(nb).diagnostics == []


def test_noqa_in_a_cell_suppresses(tmp_path):
    nb = tmp_path / "n.ipynb"
    nb.write_text(_nb("import jax", "@jax.jit\ndef f(x):\n    print(x)  # noqa: EQX209\n    return x"))
    assert _check(nb).diagnostics == []


def test_patch_sources_round_trip_is_identity():
    text = FIXTURE.read_text(encoding="utf-8")
    nb = json.loads(text)
    same = {i: "".join(c["source"]) for i, c in enumerate(nb["cells"], 1)}
    assert notebook.patch_sources(text, same) == text


# ---------------------------------------------------------------------------- cited lines, file positions
KEY_REUSE_CELLS = (
    "MD:# Keys",
    "import jax.random as jr\nkey = jr.PRNGKey(0)\n",
    "MD:Draw once",
    "a = 1\nx = jr.normal(key, (3,))\n",
    "y = jr.uniform(key, (3,))\n",
)


def test_messages_cite_other_lines_as_cell_and_line(tmp_path):
    path = tmp_path / "keys.ipynb"
    path.write_text(_nb(*KEY_REUSE_CELLS))
    (d,) = [d for d in _check(path).diagnostics if d.code == "EQX401"]
    assert (d.cell, d.row) == (5, 1)
    # The earlier draw is row 4 of the concatenated code cells: cell 4, line 2 of the notebook.
    assert "after cell 4, line 2 already used it" in d.message
    assert "line 4" not in d.message
    # The same code as a .py file cites the plain row.
    py = tmp_path / "keys.py"
    py.write_text("".join(c for c in KEY_REUSE_CELLS if not c.startswith("MD:")))
    (p,) = [d for d in _check(py).diagnostics if d.code == "EQX401"]
    assert "after line 4 already used it" in p.message and p.refs == (4,)


def test_call_chains_cite_cell_and_line(run_cli):
    r = run_cli("check", "--no-cache", "fixtures/notebooks/primitives_tutorial.ipynb", cwd=ROOT)
    first = r.stdout.splitlines()[0]
    assert first.startswith("fixtures/notebooks/primitives_tutorial.ipynb:cell 5:2:5: EQX209")
    # `jax.jit(scaled_matmul_impl)` is line 2 of cell 8 (line 1 is `%%time`).
    assert "(primitives_tutorial.ipynb, cell 8, line 2)" in first, first


def _ipynb_lines() -> list:
    return FIXTURE.read_text(encoding="utf-8").split("\n")


def test_github_output_points_at_the_line_of_the_ipynb_file(run_cli):
    r = run_cli("check", "--no-cache", "--output-format", "github", "fixtures/notebooks/primitives_tutorial.ipynb", cwd=ROOT)
    lines = _ipynb_lines()
    got = []
    for out in r.stdout.splitlines():
        props = dict(kv.split("=", 1) for kv in out.split("::")[1].split(" ", 1)[1].split(","))
        line, col = int(props["line"]), int(props["col"])
        got.append((lines[line - 1][col - 1:].split("(")[0], out.split("::", 2)[2].split(": ")[0]))
    assert got == [
        ("print", "fixtures/notebooks/primitives_tutorial.ipynb:cell 5:2:5"),
        ("print", "fixtures/notebooks/primitives_tutorial.ipynb:cell 9:5:5"),
        ("# noqa: EQX209\\n\",", "fixtures/notebooks/primitives_tutorial.ipynb:cell 10:3:22"),
    ]


def test_sarif_output_points_at_the_line_of_the_ipynb_file(run_cli):
    r = run_cli("check", "--no-cache", "--output-format", "sarif", "fixtures/notebooks/primitives_tutorial.ipynb", cwd=ROOT)
    results = json.loads(r.stdout)["runs"][0]["results"]
    lines = _ipynb_lines()
    first = results[0]
    region = first["locations"][0]["physicalLocation"]["region"]
    line = lines[region["startLine"] - 1]
    assert line.strip() == '"    print(\\"tracing scaled_matmul_impl\\")\\n",'
    assert line[region["startColumn"] - 1:].startswith("print(")
    assert region["endLine"] == region["startLine"]
    assert line[region["endColumn"] - 2] == ")"  # the end of the call, past the escaped quotes
    assert first["message"]["text"].startswith("cell 5, line 2, column 5: Python `print`")


def test_file_position_in_strings_and_lists():
    cells = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# title"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "source": "x = 1\ny = \"é\t😀\" + f(x)\n"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["a = 1\n", "b = \"😀\"; c(b)\n"]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for ensure_ascii in (True, False):
        text = json.dumps(cells, indent=1, ensure_ascii=ensure_ascii)
        lines = text.split("\n")
        line, col = notebook.file_position(text, 2, 2, 13)  # `f(x)` on row 2 of a one-string source
        assert lines[line - 1][col - 1:].startswith("f(x)"), (ensure_ascii, lines[line - 1], col)
        line, col = notebook.file_position(text, 3, 2, 10)  # `c(b)` on row 2 of a list source
        assert lines[line - 1][col - 1:].startswith("c(b)"), (ensure_ascii, lines[line - 1], col)
        assert notebook.file_position(text, 3, 9, 1) is None
