"""`--fix` never damages a file (issue 7): atomic writes, encoding/BOM/newlines/mode kept, bad
fixes rejected and reported, idempotent, overlapping fixes in one pass, concurrent runs safe."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from eqxlint.app import api, fixes
from eqxlint.app.config import Settings
from eqxlint.core.diagnostics import SAFE, Diagnostic, Edit, Fix

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


def test_concurrent_fix_runs_leave_files_fixed_or_untouched(tmp_path):
    expected = None
    for i in range(30):
        (tmp_path / f"m{i:02d}.py").write_text(SRC)
    ref = tmp_path.parent / (tmp_path.name + "_ref")
    ref.mkdir()
    (ref / "m.py").write_text(SRC)
    _fix(ref)
    expected = (ref / "m.py").read_text()
    env = dict(os.environ)
    env.pop("EQXLINT_DEBUG", None)
    cmd = [sys.executable, "-m", "eqxlint", "check", ".", "--fix", "--unsafe-fixes", "-j", "1", "--isolated"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for pr in procs:
        _, err = pr.communicate(timeout=600)
        assert b"Traceback" not in err and b"internal error" not in err, err
    for p in sorted(tmp_path.glob("*.py")):
        assert p.read_text() in (expected, SRC), p
    assert all(p.read_text() == expected for p in tmp_path.glob("*.py"))  # one of the runs fixed it
    assert not list(tmp_path.glob(".*eqxlint-tmp"))
