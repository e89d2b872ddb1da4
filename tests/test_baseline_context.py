"""Baseline matching (issue 16): a recorded finding is matched by its code, file, enclosing function
and line text — the enclosing function counts. The same flagged line in another function is a
new finding, whatever the baseline holds for the first one."""

from __future__ import annotations

from pathlib import Path

from eqxlint import check_source
from eqxlint.suppress import baseline

OLD = '''import jax


@jax.jit
def step(x):
    print(x)
    return x
'''


def _findings(tmp_path: Path, source: str) -> list:
    path = tmp_path / "pkg" / "mod.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source)
    return [d for d in check_source(source, str(path)) if d.code == "EQX209"]


def test_same_line_in_another_function_is_new(tmp_path):
    recorded = _findings(tmp_path, OLD)
    assert [d.context for d in recorded] == ["step"]
    assert baseline.write(tmp_path / "baseline.json", recorded) == 1
    # The function is renamed: its print is not the finding that was recorded.
    renamed = _findings(tmp_path, OLD.replace("def step(x):", "def train_step(x):"))
    new = baseline.filter_new(tmp_path / "baseline.json", renamed)
    assert [(d.context, d.line_text) for d in new] == [("train_step", "print(x)")]


def test_same_function_after_unrelated_edits_is_not_new(tmp_path):
    recorded = _findings(tmp_path, OLD)
    baseline.write(tmp_path / "baseline.json", recorded)
    shifted = _findings(tmp_path, '"""Docstring."""\n# comment\n\n' + OLD.replace("    print(x)", "    x = x + 1\n    print(x)"))
    assert shifted and shifted[0].row != recorded[0].row
    assert baseline.filter_new(tmp_path / "baseline.json", shifted) == []


def test_a_copy_in_a_new_function_beside_the_old_one_is_new(tmp_path):
    recorded = _findings(tmp_path, OLD)
    baseline.write(tmp_path / "baseline.json", recorded)
    both = _findings(tmp_path, OLD + "\n\n@jax.jit\ndef other(x):\n    print(x)\n    return x\n")
    new = baseline.filter_new(tmp_path / "baseline.json", both)
    assert [d.context for d in new] == ["other"]
