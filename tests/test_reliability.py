"""Hostile and odd input (issue 7): every file gets a clear finding or message, the exit code is
the documented one (0 clean, 1 findings, 2 usage/config error), every other file is still linted
and nothing is written."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from eqxlint.app import api, cache as cache_mod
from eqxlint.engine import run as engine
from eqxlint.app.config import Settings

GOOD = "import jax\n\n@jax.jit\ndef f(x):\n    print(x)\n    return x\n"  # one EQX209

HOSTILE = {
    "syntax_start.py": b"import jax\n)x = 1\n",
    "syntax_middle.py": b"import jax\nx = 1\ndef f(:\n    pass\ny = 2\n",
    "syntax_end.py": b"import jax\nx = (1,\n",
    "syntax_indent.py": b"import jax\nif x:\npass\n",
    "syntax_notrigger.py": b"x = = 1\n",
    "py2.py": b"import jax\nprint 'hello'\nexec 'x = 1'\n",
    "empty.py": b"",
    "binary.py": bytes(range(256)) * 4,
    "bad_utf8.py": b"import jax\nx = '\xff\xfe'\n",
    "latin1_cookie.py": b"# -*- coding: latin-1 -*-\nimport jax\nx = 'caf\xe9'\n",
    "latin1_nocookie.py": b"import jax\nx = 'caf\xe9'\n",
    "bom.py": b"\xef\xbb\xbfimport jax\nx = 1\n",
    "crlf.py": b"import jax\r\nx = 1\r\n",
    "mixed_newlines.py": b"import jax\r\nx = 1\ny = 2\rz = 3\n",
    "tabs.py": b"import jax\nif True:\n\tx = 1\n\tif x:\n\t\ty = 2\n",
    "inconsistent_tabs.py": b"import jax\nif True:\n        x = 1\n\ty = 2\n",
    "pep695.py": b"import jax\ndef f[T](x: T) -> T:\n    return x\ntype Alias = list[int]\n",
    "pep695_notrigger.py": b"def f[T](x: T) -> T:\n    return x\n",
    "nested_fstring.py": b'import jax\nx = f"{f"{1}"}"\n',  # PEP 701 (3.12)
    "tstring.py": b'import jax\nx = t"hi {y}"\n',  # PEP 750 (3.14)
    "match_exceptstar.py": (
        b"import jax\nmatch x:\n    case [1, *rest]:\n        pass\ntry:\n    pass\nexcept* ValueError:\n    pass\n"
    ),
    "deep_parens.py": ("import jax\nx = " + "(" * 5000 + "1" + ")" * 5000 + "\n").encode(),
    "deep_lists.py": ("import jax\nx = " + "[" * 5000 + "]" * 5000 + "\n").encode(),
    "deep_lambda.py": ("import jax\nx = " + "lambda: " * 5000 + "1\n").encode(),
    "deep_unary.py": ("import jax\nx = " + "-" * 5000 + "1\n").encode(),
    "long_chain.py": ("import jax\nx = [" + "1+" * 20000 + "1]\n").encode(),
}

# file -> (expected code or None, substring of the message / note)
EXPECTED = {
    "syntax_start.py": ("EQX001", "SyntaxError"),
    "syntax_middle.py": ("EQX001", "SyntaxError"),
    "syntax_end.py": ("EQX001", "SyntaxError"),
    "syntax_indent.py": ("EQX001", "indented block"),
    "syntax_notrigger.py": ("EQX001", "SyntaxError"),
    "py2.py": ("EQX001", "SyntaxError"),
    "empty.py": (None, None),
    "binary.py": ("EQX001", "Cannot decode"),
    "bad_utf8.py": ("EQX001", "Cannot decode"),
    "latin1_cookie.py": (None, None),
    "latin1_nocookie.py": ("EQX001", "Cannot decode"),
    "bom.py": (None, None),
    "crlf.py": (None, None),
    "mixed_newlines.py": (None, None),
    "tabs.py": (None, None),
    "inconsistent_tabs.py": ("EQX001", ""),
    # Newer syntax than this CPython: LibCST parses it, so it is linted, not an EQX001
    # (EQX001 only when neither CPython nor LibCST accepts the file).
    "pep695.py": (None, None),
    "pep695_notrigger.py": (None, None),
    "nested_fstring.py": (None, None),
    "tstring.py": (None, None),
    "match_exceptstar.py": (None, None),
    "deep_parens.py": ("EQX001", "too many nested parentheses"),
    "deep_lists.py": ("EQX001", "too many nested parentheses"),
    "deep_lambda.py": ("EQX001", ""),
    "deep_unary.py": (None, None),  # CPython overflows, LibCST parses it: linted
    "long_chain.py": ("EQX001", ""),
}


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d != ".eqxlint_cache"]
        for name in filenames:
            p = Path(dirpath, name)
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p))
                continue
            st = p.lstat()
            out[str(p)] = (p.read_bytes(), st.st_mtime_ns, st.st_mode)
    return out


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    import subprocess

    root = tmp_path_factory.mktemp("hostile")
    tree = root / "tree"
    tree.mkdir()
    (tree / "pyproject.toml").write_text("[tool.eqxlint]\n")
    for name, data in HOSTILE.items():
        (tree / name).write_bytes(data)
    (tree / "good.py").write_text(GOOD)
    # A directory named like a source file, non-ASCII and space-containing paths.
    (tree / "x.py").mkdir()
    (tree / "x.py" / "inner.py").write_text(GOOD)
    odd = tree / "dössier with space"
    odd.mkdir()
    (odd / "mödule ünïcode.py").write_text(GOOD)
    # Symlink loop and symlinks leaving the tree (not followed), one inside (linted once).
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text(GOOD)
    os.symlink(tree, tree / "loop")
    os.symlink(outside, tree / "out_dir")
    os.symlink(outside / "secret.py", tree / "out_file.py")
    os.symlink(tree / "good.py", tree / "alias.py")
    os.symlink(tree / "missing.py", tree / "dangling.py")
    before = _snapshot(root)
    env = dict(os.environ)
    env.pop("EQXLINT_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "eqxlint", "check", ".", "--no-cache", "--output-format", "json", "-j", "1"],
        cwd=tree, capture_output=True, text=True, env=env, timeout=600,
    )
    after = _snapshot(root)
    diags = json.loads(proc.stdout)
    by_file: dict = {}
    for d in diags:
        by_file.setdefault(os.path.relpath(d["filename"], tree), []).append(d)
    return proc, by_file, before, after


def test_exit_code_and_no_crash(hostile_run):
    proc, by_file, before, after = hostile_run
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert before == after, "a check without --fix wrote to the tree"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_file(hostile_run, name):
    proc, by_file, _, _ = hostile_run
    code, text = EXPECTED[name]
    got = by_file.get(name, [])
    if code is None:
        assert [d for d in got if d["code"] == "EQX001"] == []
    else:
        assert [d["code"] for d in got] == [code], got
        assert text in got[0]["message"]
        assert got[0]["location"]["row"] >= 1 and got[0]["location"]["column"] >= 1


def test_every_other_file_still_linted(hostile_run):
    _, by_file, _, _ = hostile_run
    for name in ["good.py", "x.py/inner.py", "dössier with space/mödule ünïcode.py", "alias.py"]:
        assert [d["code"] for d in by_file.get(name, [])] == ["EQX209"], name
    # Nothing outside the tree, through links or loops.
    assert not any(n.startswith(("out_", "loop")) for n in by_file), sorted(by_file)
    assert "dangling.py" not in by_file


def test_ten_megabyte_file_is_checked_for_syntax_only(tmp_path, run_cli):
    line = "def f{0}(x):\n    return jax.jit(lambda z: z + {0})(x)\n\n"
    parts, n, i = ["import jax\n"], 0, 0
    while n < 10_000_000:
        s = line.format(i)
        parts.append(s)
        n += len(s)
        i += 1
    (tmp_path / "big.py").write_text("".join(parts))
    (tmp_path / "good.py").write_text(GOOD)
    r = run_cli("check", ".", "--no-cache", "--isolated")
    assert r.returncode == 1
    assert "big.py: file larger than 2 MB: checked for syntax errors only" in r.stderr
    assert "good.py:5:5: EQX209" in r.stdout


def test_engine_never_raises_on_deep_nesting():
    run = engine.RunConfig(Settings(root=Path.cwd()))
    for src in ["import jax\nx = " + "not " * 3000 + "1\n", "import jax\nx = a" + ".b" * 3000 + "\n",
                "import jax\nx = " + "2**" * 3000 + "1\n", "import jax\n" + "".join(" " * i + "if x:\n" for i in range(120)) + " " * 120 + "pass\n"]:
        res = engine.lint_source(src, "deep.py", run)
        assert not res.errors, res.errors


def test_unreadable_file(tmp_path, monkeypatch):
    """An unreadable file is a warning, the rest is linted (as root chmod 000 does not block
    reads, so the read itself is made to fail)."""
    (tmp_path / "locked.py").write_text(GOOD)
    (tmp_path / "good.py").write_text(GOOD)
    real_open = open

    def fake_open(path, *a, **kw):
        if str(path).endswith("locked.py"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr("builtins.open", fake_open)
    rep = api.check_paths([tmp_path], settings=Settings(root=tmp_path), cache=False, jobs=1)
    assert any("locked.py: cannot read file; skipped" in n for n in rep.notes)
    assert [(Path(d.filename).name, d.code) for d in rep.diagnostics] == [("good.py", "EQX209")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files; covered by test_unreadable_file")
def test_unreadable_file_chmod(tmp_path, run_cli):
    (tmp_path / "locked.py").write_text(GOOD)
    os.chmod(tmp_path / "locked.py", 0)
    (tmp_path / "good.py").write_text(GOOD)
    r = run_cli("check", ".", "--no-cache", "--isolated")
    assert r.returncode == 1 and "cannot read file" in r.stderr and "good.py" in r.stdout


def test_file_deleted_during_run(tmp_path, monkeypatch):
    from eqxlint.app import files as files_mod

    for i in range(5):
        (tmp_path / f"m{i}.py").write_text(GOOD)
    real = api.discover

    def discover_then_delete(*a, **kw):
        out = list(real(*a, **kw))
        (tmp_path / "m2.py").unlink()
        return iter(out)

    monkeypatch.setattr(api, "discover", discover_then_delete)
    rep = api.check_paths([tmp_path], settings=Settings(root=tmp_path), cache=False, jobs=1)
    assert any("m2.py: cannot read file; skipped" in n for n in rep.notes)
    assert sorted(Path(d.filename).name for d in rep.diagnostics) == ["m0.py", "m1.py", "m3.py", "m4.py"]
    assert files_mod is not None


def test_malformed_pyproject(tmp_path, run_cli):
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint\nselect = [\n")
    (tmp_path / "good.py").write_text(GOOD)
    r = run_cli("check", ".")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "invalid TOML" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "config, needle",
    [
        ('[tool.eqxlint]\nselect = ["EQX999"]\n', "unknown rule selector 'EQX999'"),
        ('[tool.eqxlint]\nignore = ["FOO1"]\n', "unknown rule selector 'FOO1'"),
        ('[tool.eqxlint]\nper-file-ignores = {"a.py" = ["EQX998"]}\n', "unknown rule selector 'EQX998'"),
        ('[tool.eqxlint]\nselect = "EQX1"\n', "must be a list of strings"),
        ('[tool.eqxlint]\nbogus = 1\n', "unknown key"),
    ],
)
def test_unknown_codes_in_config(tmp_path, run_cli, config, needle):
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "good.py").write_text(GOOD)
    r = run_cli("check", ".")
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("flag", ["--select", "--ignore", "--extend-select"])
def test_unknown_codes_on_cli(tmp_path, run_cli, flag):
    (tmp_path / "good.py").write_text(GOOD)
    r = run_cli("check", ".", flag, "EQX999", "--isolated")
    assert r.returncode == 2 and "unknown rule selector 'EQX999'" in r.stderr and "Traceback" not in r.stderr


def test_unknown_codes_in_noqa(tmp_path, run_cli):
    (tmp_path / "a.py").write_text("import jax\nx = 1  # noqa: EQX999\ny = 2  # noqa: E501\n")
    r = run_cli("check", ".", "--isolated", "--no-cache")
    assert r.returncode == 1
    assert "a.py:2:8: EQX002" in r.stdout and "unknown code: EQX999" in r.stdout
    assert ":3:" not in r.stdout  # other tools' codes are left alone


def test_missing_path_is_exit_2_rest_linted(tmp_path, run_cli):
    (tmp_path / "good.py").write_text(GOOD)
    r = run_cli("check", "good.py", "nope.py", "--isolated", "--no-cache")
    assert r.returncode == 2 and "nope.py: no such file or directory" in r.stderr
    assert "good.py:5:5: EQX209" in r.stdout


# ---------------------------------------------------------------------------- cache
def _cache_files(root: Path) -> list:
    return [p for p in (root / ".eqxlint_cache").rglob("*.json")]


def _check(root: Path):
    return api.check_paths([root], settings=Settings(root=root), cache=True, jobs=1)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign_version", "wrong_key", "forged"])
def test_damaged_cache_is_ignored_and_rebuilt(tmp_path, damage):
    (tmp_path / "good.py").write_text(GOOD)
    first = [d.code for d in _check(tmp_path).diagnostics]
    entries = _cache_files(tmp_path)
    assert entries
    for p in entries:
        raw = p.read_bytes()
        data = json.loads(raw)
        if damage == "truncate":
            p.write_bytes(raw[: len(raw) // 2])
        elif damage == "garbage":
            p.write_bytes(b"\x00\xff not json")
        elif damage == "foreign_version":
            data["version"] = "0.0.0-other"
            p.write_text(json.dumps(data))
        elif damage == "wrong_key":
            data["key"] = "0" * 64
            p.write_text(json.dumps(data))
        elif damage == "forged":
            data["format"] = cache_mod.FORMAT + 1
            data["result"]["diagnostics"] = []
            p.write_text(json.dumps(data))
    assert [d.code for d in _check(tmp_path).diagnostics] == first == ["EQX209"]
    # Rebuilt: the entries load again.
    for p in _cache_files(tmp_path):
        assert json.loads(p.read_bytes())["version"]


def test_read_only_cache_is_not_an_error(tmp_path, monkeypatch):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / ".eqxlint_cache").write_text("not a folder")  # cannot be created
    rep = _check(tmp_path)
    assert [d.code for d in rep.diagnostics] == ["EQX209"] and not rep.errors


def test_parallel_runs_do_not_corrupt_cache(tmp_path):
    for i in range(12):
        (tmp_path / f"m{i}.py").write_text(GOOD.replace("f(", f"f{i}("))
    results, errors = [], []

    def one():
        try:
            results.append(sorted((Path(d.filename).name, d.code) for d in _check(tmp_path).diagnostics))
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4 and all(r == results[0] for r in results)
    for p in _cache_files(tmp_path):
        json.loads(p.read_bytes())  # every entry complete
    assert not list((tmp_path / ".eqxlint_cache").rglob(".tmp-*"))
