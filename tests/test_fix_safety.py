"""`--fix` never damages a file (issue 7): atomic writes, encoding/BOM/newlines/mode kept, bad
fixes rejected and reported, idempotent, overlapping fixes in one pass, concurrent runs safe."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from eqxlint.app import api, fixes
from eqxlint.app.config import Settings
from eqxlint.core.diagnostics import SAFE, Diagnostic, Edit, Fix
from eqxlint.engine import catalogue

SRC = (
    "import jax\nimport equinox as eqx\n\n\n"
    "@jax.jit\ndef step(model: eqx.nn.MLP, x):\n    print(x)  # noqa: EQX101\n    return model(x)\n"
)


def _fix(root: Path, unsafe: bool = True):
    return api.check_paths([root], settings=Settings(root=root), fix=True, unsafe_fixes=unsafe, cache=False, jobs=1)


def test_fixes_applied_in_one_consistent_pass_and_idempotent(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(SRC)
    rep = _fix(tmp_path)
    out = p.read_text()
    assert "@eqx.filter_jit" in out and "jax.debug.print" in out and "noqa" not in out
    assert sorted(d.code for d in rep.fixed) == ["EQX002", "EQX101", "EQX209"]
    fixes.reparses(out)
    before = (p.read_bytes(), p.stat().st_mtime_ns)
    rep2 = _fix(tmp_path)
    assert rep2.fixed == [] and (p.read_bytes(), p.stat().st_mtime_ns) == before


def test_unsafe_fix_needs_flag(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(SRC)
    _fix(tmp_path, unsafe=False)
    assert "print(x)" in p.read_text() and "@eqx.filter_jit" in p.read_text()


def test_keeps_crlf_bom_latin1_and_mode(tmp_path):
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(SRC.replace("\n", "\r\n").encode())
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + SRC.encode())
    lat = tmp_path / "lat.py"
    lat.write_bytes(b"# -*- coding: latin-1 -*-\n" + SRC.encode() + b"s = 'caf\xe9'\n")
    for p in (crlf, bom, lat):
        os.chmod(p, 0o751)
    _fix(tmp_path)
    c = crlf.read_bytes()
    assert b"debug.print" in c and c.count(b"\r\n") == c.count(b"\n")
    b = bom.read_bytes()
    assert b.startswith(b"\xef\xbb\xbf") and b.count(b"\xef\xbb\xbf") == 1 and b"debug.print" in b
    la = lat.read_bytes()
    assert b"debug.print" in la and b"'caf\xe9'" in la
    for p in (crlf, bom, lat):
        assert stat.S_IMODE(p.stat().st_mode) == 0o751
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bom.py", "crlf.py", "lat.py"]  # no temp files


def test_write_is_atomic_rename_in_same_folder(tmp_path, monkeypatch):
    p = tmp_path / "m.py"
    p.write_text(SRC)
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append((Path(src).parent, Path(dst)))
        assert Path(dst).read_text() == SRC  # the old file is whole until the rename
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    _fix(tmp_path)
    assert seen == [(tmp_path, p)]


def test_symlinked_file_is_written_through(tmp_path):
    real = tmp_path / "real.py"
    real.write_text(SRC)
    os.symlink(real, tmp_path / "link.py")
    _fix(tmp_path)
    assert (tmp_path / "link.py").is_symlink() and "debug.print" in real.read_text()


def _bad_fix_run(tmp_path, monkeypatch, edit):
    p = tmp_path / "m.py"
    p.write_text("import jax\nx = 1  # noqa: EQX101\ny = 2\n")
    real = api.engine.finalize

    def finalize(results, run):
        out = real(results, run)
        for d in out:
            if d.code == "EQX002":
                d.fix = Fix("bad", SAFE, (edit,))
        return out

    monkeypatch.setattr(api.engine, "finalize", finalize)
    before = p.read_bytes()
    rep = _fix(tmp_path)
    return p, before, rep


def test_fix_that_does_not_parse_is_not_written(tmp_path, monkeypatch):
    p, before, rep = _bad_fix_run(tmp_path, monkeypatch, Edit(13, 13, "(("))
    assert p.read_bytes() == before
    assert any("does not parse; not written" in r for r in rep.rejected)


def test_fix_outside_its_finding_is_not_written(tmp_path, monkeypatch):
    p, before, rep = _bad_fix_run(tmp_path, monkeypatch, Edit(37, 38, "3"))  # edits line 3
    assert p.read_bytes() == before
    assert any("outside the finding; not applied" in r for r in rep.rejected)


def test_outside_finding_allows_import_insertion():
    d = Diagnostic("EQX101", "m", "f.py", 3, 1, 3, 5, fix=Fix("f", SAFE, (Edit(11, 11, "import equinox as eqx\n"),)))
    assert not fixes.outside_finding("import jax\nx = 1\n@jax.jit\n", d)
    d2 = Diagnostic("EQX101", "m", "f.py", 3, 1, 3, 5, fix=Fix("f", SAFE, (Edit(11, 11, "x = 2\n"),)))
    assert fixes.outside_finding("import jax\nx = 1\n@jax.jit\n", d2)


def test_file_changed_on_disk_is_not_overwritten(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("new contents\n")
    try:
        fixes.write_atomic(p, "fixed\n", "utf-8", expected=b"old contents\n")
    except fixes.FileChanged:
        pass
    else:  # pragma: no cover
        raise AssertionError("overwrote a file that changed")
    assert p.read_text() == "new contents\n"


def _example(code: str):
    """The rule's first catalogue example that has a `fixed` form. Its fix still parses when it
    lands in the wrong place, so a misplaced edit would be written, not rejected."""
    return next(e for e in catalogue.load_all()[code].examples if e.fixed is not None)


def _reference_fix(tmp_path: Path, source: str) -> str:
    """What `--fix --unsafe-fixes` makes of `source` alone in a tree."""
    ref = tmp_path / "reference"
    ref.mkdir()
    (ref / "m.py").write_text(source)
    _fix(ref)
    out = (ref / "m.py").read_text()
    assert out != source
    return out


@pytest.mark.parametrize("code", ["EQX101", "EQX107", "EQX203", "EQX209"])
def test_symlink_to_a_file_of_the_tree_is_fixed_once_and_not_corrupted(tmp_path, code):
    """Issue 16: fixes computed for `a_link.py` were applied to the text of `b_real.py` already
    fixed through the other name: `@eqx.filter_jitter_jit`, `eqx.filter_eval_shapel_shape`."""
    ex = _example(code)
    expected = _reference_fix(tmp_path, ex.code)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "b_real.py").write_text(ex.code)
    os.symlink("b_real.py", tree / "a_link.py")
    os.symlink("b_real.py", tree / "c_link.py")
    rep = _fix(tree)
    assert (tree / "b_real.py").read_text() == expected
    assert (tree / "a_link.py").is_symlink() and (tree / "c_link.py").is_symlink()
    assert rep.rejected == []
    # Each fix is counted once, under the real file's name, and what remains is reported under
    # every name the file was linted as.
    assert {d.filename for d in rep.fixed} == {str(tree / "b_real.py")}
    assert len(rep.fixed) == len({(d.code, d.row, d.column) for d in rep.fixed})
    assert _fix(tree).fixed == []


def test_symlinked_file_is_fixed_once_in_a_diff(tmp_path):
    """`--diff` writes nothing, so every name still holds the unfixed text: the real file gets
    one diff and its fixes are counted once, not once per name."""
    ex = _example("EQX209")
    expected = _reference_fix(tmp_path, ex.code)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "b_real.py").write_text(ex.code)
    os.symlink("b_real.py", tree / "a_link.py")
    rep = api.check_paths([tree], settings=Settings(root=tree), diff=True, unsafe_fixes=True, cache=False, jobs=1)
    assert list(rep.diffs) == [str(tree / "b_real.py")]
    assert rep.diffs[str(tree / "b_real.py")] == (ex.code, expected)
    assert [d.code for d in rep.fixed] == ["EQX209"]
    assert (tree / "b_real.py").read_text() == ex.code


def test_concurrent_fix_runs_over_the_eqx209_example(tmp_path):
    """Issue 16: two concurrent `eqxlint check --fix --unsafe-fixes -j 1` runs over 30 copies of
    the EQX209 example left most files as `jax.debug.print("x = {}", x)("x = {}", x)`: one run
    applied edits computed on the unfixed text to the text the other run had already fixed."""
    ex = _example("EQX209")
    expected = _reference_fix(tmp_path, ex.code)
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(30):
        (tree / f"m{i:02d}.py").write_text(ex.code)
    env = dict(os.environ)
    env.pop("EQXLINT_DEBUG", None)
    cmd = [sys.executable, "-m", "eqxlint", "check", ".", "--fix", "--unsafe-fixes", "-j", "1", "--isolated"]
    procs = [subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for pr in procs:
        out, err = pr.communicate(timeout=600)
        assert b"Traceback" not in err and b"internal error" not in err, err
    wrong = {p.name: p.read_text() for p in sorted(tree.glob("*.py")) if p.read_text() != expected}
    assert wrong == {}
    assert not list(tree.glob(".*eqxlint-tmp"))


def test_file_changed_between_lint_and_fix_is_linted_again(tmp_path, monkeypatch):
    """The bytes at fix time differ from those linted (hash mismatch): the fixes are computed
    again on the new bytes, never carried over from the old ones."""
    ex = _example("EQX209")
    changed = "# a line inserted by an editor meanwhile\n" + ex.code
    expected = _reference_fix(tmp_path, changed)
    tree = tmp_path / "tree"
    tree.mkdir()
    p = tree / "m.py"
    p.write_text(ex.code)
    real = api._finalize

    def finalize_then_edit(*a, **k):  # runs after every file was read and linted
        out = real(*a, **k)
        p.write_text(changed)
        return out

    monkeypatch.setattr(api, "_finalize", finalize_then_edit)
    rep = _fix(tree)
    assert p.read_text() == expected
    assert rep.rejected == []
    assert [d.code for d in rep.fixed] == ["EQX209"]


def test_findings_not_of_these_bytes_are_never_written(tmp_path, monkeypatch):
    """Findings that claim to be of the file's bytes but are not (a stale or wrong cache entry,
    a linter bug): the result differs from a fresh lint-and-fix of the bytes, so it is not
    written. Here the file is already fixed but its findings are those of the unfixed text;
    applied, they would write `jax.debug.print("x = {}", x)("x = {}", x)`."""
    ex = _example("EQX209")
    fixed = _reference_fix(tmp_path, ex.code)
    tree = tmp_path / "tree"
    tree.mkdir()
    p = tree / "m.py"
    p.write_text(fixed)
    real = api.engine.lint_bytes

    def stale(data, path, *a, **k):
        return real(ex.code.encode(), path, *a, **k)

    monkeypatch.setattr(api.engine, "lint_bytes", stale)
    rep = _fix(tree)
    assert p.read_text() == fixed
    assert any("differ from those of a fresh lint" in r for r in rep.rejected), rep.rejected


def test_file_changed_on_disk_while_fixing_is_not_overwritten(tmp_path, monkeypatch):
    """A writer that takes no lock (an editor) saves the file after eqxlint read it: the API
    passes the bytes it read to `write_atomic`, which leaves the new file alone."""
    p = tmp_path / "m.py"
    p.write_text(SRC)
    real = fixes.write_atomic

    def editor_saves_first(path, text, encoding, **kw):
        Path(path).write_text("saved by the editor\n")
        return real(path, text, encoding, **kw)

    monkeypatch.setattr(fixes, "write_atomic", editor_saves_first)
    rep = _fix(tmp_path)
    assert p.read_text() == "saved by the editor\n"
    assert any("could not write fixes" in r and "changed on disk" in r for r in rep.rejected), rep.rejected
    assert rep.fixed == []


def test_fix_holds_the_file_lock_while_it_writes(tmp_path, monkeypatch):
    p = tmp_path / "m.py"
    p.write_text(SRC)
    real = os.replace
    seen = []

    def spy(src, dst):
        with pytest.raises(fixes.Locked):
            with fixes.FileLock(dst, blocking=False):
                pass
        seen.append(dst)
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    _fix(tmp_path)
    assert [Path(x) for x in seen] == [p]
    with fixes.FileLock(p, blocking=False):  # released afterwards
        pass


def test_file_lock_is_exclusive(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("x = 1\n")
    with fixes.FileLock(p) as f:
        assert f.read() == b"x = 1\n"
        with pytest.raises(fixes.Locked):
            with fixes.FileLock(p, blocking=False):
                pass
        link = tmp_path / "link.py"
        os.symlink("m.py", link)
        with pytest.raises(fixes.Locked):  # the same file under another name
            with fixes.FileLock(link, blocking=False):
                pass
    with fixes.FileLock(p, blocking=False):
        pass


def test_file_lock_follows_a_file_replaced_while_waiting(tmp_path, monkeypatch):
    """Fixes replace files by rename: a process that waited for the lock on the old file must
    end up holding the lock on (and reading) the file the path names now."""
    p = tmp_path / "m.py"
    p.write_text("old\n")
    calls = []
    real = fixes.fcntl.flock

    def flock(fd, flags):
        if not calls:  # another run finishes its write while this one waits
            fixes.replace_atomic(p, b"new\n")
        calls.append(os.fstat(fd).st_ino)
        return real(fd, flags)

    monkeypatch.setattr(fixes.fcntl, "flock", flock)
    with fixes.FileLock(p) as f:
        assert f.read() == b"new\n"
        assert os.fstat(f.fileno()).st_ino == p.stat().st_ino
    assert len(calls) == 2


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="needs syntax newer than the running CPython")
def test_reparses_asks_libcst_only_for_newer_syntax_and_libcst_can_reject():
    """PEP 695 on 3.11: CPython rejects it, LibCST (which linted it) judges the fixed text."""
    original = "type Vec = list[float]\n\ndef f[T](x: T) -> T:\n    return x\n"
    assert fixes.reparses(original + "y = 1\n", original)
    assert not fixes.reparses(original + "y = (\n", original)
    assert not fixes.reparses("def f(:\n", "x = 1\n")  # the original parses: CPython decides


def test_notebook_fix_that_does_not_parse_is_not_written(tmp_path, monkeypatch):
    nb = tmp_path / "n.ipynb"
    _notebook(nb)
    real = api.engine.finalize

    def finalize(results, run):
        out = real(results, run)
        for d in out:
            if d.code == "EQX209" and d.fix is not None:
                e = d.fix.edits[0]
                d.fix = Fix("bad", d.fix.applicability, (Edit(e.start, e.end, "(("),))
        return out

    monkeypatch.setattr(api.engine, "finalize", finalize)
    before = nb.read_bytes()
    rep = _fix(tmp_path)
    assert nb.read_bytes() == before
    assert any("does not parse; not written" in r for r in rep.rejected), rep.rejected


def _notebook(path: Path) -> None:
    import json

    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": ["import jax\n", "\n", "@jax.jit\n", "def f(x):\n", "    print(x)\n", "    return x\n"]}
    doc = {"cells": [cell], "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def test_notebook_changed_on_disk_while_fixing_is_not_overwritten(tmp_path, monkeypatch):
    nb = tmp_path / "n.ipynb"
    _notebook(nb)
    real = fixes.write_atomic
    seen = []

    def editor_saves_first(path, text, encoding, **kw):
        with pytest.raises(fixes.Locked):  # eqxlint holds the notebook's lock while it fixes it
            with fixes.FileLock(path, blocking=False):
                pass
        seen.append(path)
        Path(path).write_text("{}\n")
        return real(path, text, encoding, **kw)

    monkeypatch.setattr(fixes, "write_atomic", editor_saves_first)
    rep = _fix(tmp_path)
    assert seen and nb.read_text() == "{}\n"
    assert any("could not write fixes" in r for r in rep.rejected), rep.rejected
