"""`ProjectSession` (what the language server keeps) gives for a file exactly what
`eqxlint check FILE` gives inside its project, and follows in-memory edits across files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eqxlint.app.api import ProjectSession, check_paths, settings_for

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ["training_scripts", "vae_project", "primitive_lib", "solver_lib", "clean_repo"]

OPS = '''from jax.extend.core import Primitive
from jax.interpreters import ad

scale_p = Primitive("scale")


def _scale_jvp(primals, tangents, *, c):
    (x,), (t,) = primals, tangents
    return scale_p.bind(x, c=c), scale_p.bind(t, c=c)


ad.primitive_jvps[scale_p] = _scale_jvp
'''

RULES = '''from jax.interpreters import ad

from ops import scale_p

ad.primitive_transposes[scale_p] = lambda ct, x, *, c: [scale_p.bind(ct, c=c)]
'''

CONFIG = '[tool.eqxlint]\nignore = ["EQX303", "EQX304"]\n'


def as_rows(diags) -> list:
    out = []
    for d in diags:
        data = d.to_dict()
        data.pop("filename")
        out.append(data)
    return out


@pytest.mark.parametrize("name", FIXTURES)
def test_same_as_check_for_every_file(name, tmp_path, monkeypatch):
    project = tmp_path / name
    shutil.copytree(ROOT / "fixtures" / name, project)
    monkeypatch.chdir(project)
    files = sorted(p.relative_to(project) for p in project.rglob("*.py"))
    assert files
    session = None
    found = 0
    for f in files:
        expected = check_paths([f], cache=False).diagnostics
        if session is None:
            session = ProjectSession.for_path(f, cache=False, jobs=1)
        got = session.diagnostics_for(f)
        assert as_rows(got) == as_rows(expected), f
        assert {d.filename for d in got} <= {str(f)}
        found += len(got)
    assert found or name == "clean_repo"


def test_same_as_check_from_another_folder(tmp_path, monkeypatch):
    project = tmp_path / "vae_project"
    shutil.copytree(ROOT / "fixtures" / "vae_project", project)
    monkeypatch.chdir(tmp_path)
    f = Path("vae_project") / "train.py"
    expected = check_paths([f], cache=False).diagnostics
    got = ProjectSession.for_path(f.resolve(), cache=False, jobs=1).diagnostics_for(f.resolve())
    assert as_rows(got) == as_rows(expected)
    assert "EQX101" in [d.code for d in got]


def test_edits_in_memory_change_another_file(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    (tmp_path / "ops.py").write_text(OPS)
    (tmp_path / "other.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    session = ProjectSession(settings_for([tmp_path / "ops.py"]), cache=False, jobs=1)
    assert [d.code for d in session.diagnostics_for("ops.py")] == ["EQX302"]
    # The transpose registered in another document, not saved: EQX302 goes away...
    session.update("other.py", RULES)
    assert "EQX302" not in [d.code for d in session.diagnostics_for("ops.py")]
    # ... and comes back when that document is closed (the file on disk has no transpose).
    session.forget("other.py")
    assert [d.code for d in session.diagnostics_for("ops.py")] == ["EQX302"]
    # Saved, then re-read from disk after the change; files that did not change are not re-read.
    ops_result = session._results[str(tmp_path / "ops.py")]
    (tmp_path / "other.py").write_text(RULES)
    session.refresh()
    assert "EQX302" not in [d.code for d in session.diagnostics_for("ops.py")]
    assert session._results[str(tmp_path / "ops.py")] is ops_result
    # A deleted file's facts go with it.
    (tmp_path / "other.py").unlink()
    session.refresh()
    assert [d.code for d in session.diagnostics_for("ops.py")] == ["EQX302"]
    (tmp_path / "other.py").write_text(RULES)
    session.refresh()
    assert check_paths(["ops.py"], cache=False).diagnostics == session.diagnostics_for("ops.py")


def test_repeated_project_phases_give_the_same_messages(tmp_path, monkeypatch):
    """`finalize` writes call chains into messages: the session must not keep them."""
    project = tmp_path / "vae_project"
    shutil.copytree(ROOT / "fixtures" / "vae_project", project)
    monkeypatch.chdir(project)
    session = ProjectSession.for_path("train.py", cache=False, jobs=1)
    first = as_rows(session.diagnostics_for("vae/losses.py"))
    assert any("is traced: called by" in d["message"] for d in first)
    train = Path("train.py").read_text()
    session.update("train.py", train.replace("@eqx.filter_jit\n", ""))
    untraced = as_rows(session.diagnostics_for("vae/losses.py"))
    assert untraced != first
    session.update("train.py", train)
    assert as_rows(session.diagnostics_for("vae/losses.py")) == first


def test_a_file_outside_the_project_is_alone(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("# eqxlint: noqa: EQX303, EQX304\n" + OPS)
    (tmp_path / "b.py").write_text(RULES)
    monkeypatch.chdir(tmp_path)
    session = ProjectSession.for_path("a.py", cache=False, jobs=1)
    assert not session.has_project
    assert [d.code for d in session.diagnostics_for("a.py")] == [d.code for d in check_paths(["a.py"], cache=False).diagnostics] == ["EQX302"]
