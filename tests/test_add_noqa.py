"""`eqxlint check --add-noqa`: one `# noqa: CODE` per line with findings, merged with what is
there, never inside a string, idempotent; notebooks get the comment in the cell."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from eqxlint.app.noqa_writer import add_to_source
from eqxlint.suppress.noqa import comment_rows

ROOT = Path(__file__).resolve().parent.parent

SOURCE = '''import jax


@jax.jit
def f(x):
    print(x)  # noqa: E501
    print(x)   
    print("""a
b""", x)
    print(x, \\
          x)
    print(x)  # some comment
    print(x)  # noqa
    y = x  # noqa: EQX209
    return x
'''

EXPECTED = '''import jax


@jax.jit
def f(x):
    print(x)  # noqa: E501, EQX209
    print(x)  # noqa: EQX209
    print("""a
b""", x)  # noqa: EQX209
    print(x, \\
          x)  # noqa: EQX209
    print(x)  # some comment  # noqa: EQX209
    print(x)  # noqa
    y = x  # noqa: EQX209
    return x
'''


def test_add_noqa_merges_skips_strings_and_is_idempotent(run_cli, tmp_path):
    (tmp_path / "a.py").write_text(SOURCE)
    r = run_cli("check", "--isolated", "--no-cache", "--add-noqa", "a.py")
    assert "Added 5 noqa directives." in r.stderr, r.stderr
    assert (tmp_path / "a.py").read_text() == EXPECTED
    # The unused `# noqa: EQX209` on `y = x` is EQX002, which --add-noqa never silences.
    assert [l.split(": ")[1].split()[0] for l in r.stdout.splitlines() if l.startswith("a.py:")] == ["EQX002"]
    r2 = run_cli("check", "--isolated", "--no-cache", "--add-noqa", "a.py")
    assert "Added 0 noqa directives." in r2.stderr
    assert (tmp_path / "a.py").read_text() == EXPECTED
    r3 = run_cli("check", "--isolated", "--no-cache", "--ignore", "EQX002", "a.py")
    assert r3.returncode == 0, r3.stdout


def test_comment_rows_move_past_strings_and_continuations():
    src = 'x = f("""a\nb\nc""")\ny = 1 + \\\n    2\nz = 3\n'
    assert comment_rows(src) == {1: 3, 2: 3, 4: 5}
    new, n = add_to_source(src, {1: {"EQX209"}, 4: {"EQX101", "EQX209"}, 6: {"EQX209"}})
    assert n == 3
    assert new == 'x = f("""a\nb\nc""")  # noqa: EQX209\ny = 1 + \\\n    2  # noqa: EQX101, EQX209\nz = 3  # noqa: EQX209\n'


def test_crlf_and_no_trailing_newline():
    new, n = add_to_source("a = 1\r\nb = 2", {1: {"EQX1"}, 2: {"EQX2"}})
    assert new == "a = 1  # noqa: EQX1\r\nb = 2  # noqa: EQX2"


def test_add_noqa_in_notebook_cells(run_cli, tmp_path):
    nb = tmp_path / "tut.ipynb"
    shutil.copy(ROOT / "fixtures" / "notebooks" / "primitives_tutorial.ipynb", nb)
    before = json.loads(nb.read_text())
    r = run_cli("check", "--isolated", "--no-cache", "--add-noqa", "tut.ipynb")
    assert "Added 2 noqa directives." in r.stderr, r.stdout + r.stderr
    after = json.loads(nb.read_text())
    assert after["cells"][4]["source"][1] == '    print("tracing scaled_matmul_impl")  # noqa: EQX209\n'
    assert after["cells"][8]["source"][4] == '    print("batched shapes:", ys.shape)  # noqa: EQX209\n'
    changed = [i + 1 for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
    assert changed == [5, 9]
    r2 = run_cli("check", "--isolated", "--no-cache", "--add-noqa", "tut.ipynb")
    assert "Added 0 noqa directives." in r2.stderr
    # Left: only the unused noqa (EQX002) the fixture has on purpose.
    assert [l.split(": ")[1].split()[0] for l in r2.stdout.splitlines() if "tut.ipynb:" in l] == ["EQX002"]
