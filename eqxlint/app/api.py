"""The Python API the CLI is a thin layer over.

    from eqxlint import check_paths
    report = check_paths(["src/"])
    for d in report.diagnostics: print(d.filename, d.row, d.code, d.message)
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence

from . import config as config_mod
from ..engine import run as engine
from . import fixes, schedule
from .cache import Cache
from .config import Settings
from ..core.diagnostics import Diagnostic
from ..core.source import decode
from .files import discover


@dataclasses.dataclass
class CheckReport:
    diagnostics: list  # final diagnostics (after fixes were applied, what remains)
    files: int
    fixed: list  # diagnostics whose fixes were applied (or would be, with diff)
    errors: list  # internal errors
    notes: list  # e.g. files LibCST cannot parse although Python can
    missing: list  # paths given that do not exist
    diffs: dict  # path -> (old text, new text) when fixes were computed
    rejected: list  # fixes not written because the result did not re-parse

    @property
    def exit_code(self) -> int:
        return 1 if self.diagnostics else 0


def settings_for(paths: Sequence[Path], config_path: Optional[Path] = None, isolated: bool = False) -> Settings:
    if isolated:
        return config_mod.Settings(root=Path.cwd().resolve())
    if config_path is None:
        start = paths[0] if paths else Path.cwd()
        config_path = config_mod.find_config(start)
        root = None
        if config_path is None:
            root = _project_root(start)
        return config_mod.load(config_path, root)
    return config_mod.load(config_path)


def _project_root(start: Path) -> Path:
    start = start.resolve()
    if not start.is_dir():
        start = start.parent
    for d in [start, *start.parents]:
        if (d / ".git").exists() or (d / "pyproject.toml").is_file() or (d / "setup.py").is_file():
            return d
    return start


_MODNAME_CACHE: dict = {}


def module_name_for(path: Path) -> tuple[str, bool]:
    """Dotted module name from the package folders (`__init__.py`) above a file."""
    p = Path(os.path.abspath(path))
    is_pkg = p.name == "__init__.py"
    parts = [] if is_pkg else [p.stem]
    d = p.parent
    prefix = _MODNAME_CACHE.get(d)
    if prefix is None:
        pkg = []
        cur = d
        while (cur / "__init__.py").is_file() and cur.parent != cur:
            pkg.append(cur.name)
            cur = cur.parent
        prefix = ".".join(reversed(pkg))
        _MODNAME_CACHE[d] = prefix
    name = ".".join(x for x in [prefix, *parts] if x)
    return name, is_pkg


# ---------------------------------------------------------------------------- workers
_RUN: Optional[engine.RunConfig] = None


def _init_worker(settings: Settings) -> None:
    global _RUN
    from ..syntax.parsing import tune_gc

    tune_gc()
    _RUN = engine.RunConfig(settings)


def _lint_chunk(items: list) -> list:
    out = []
    for path, data, modname, is_pkg in items:
        out.append(_lint_one(_RUN, path, data, modname, is_pkg))
    return out


def _lint_one(run, path: str, data: bytes, modname: str, is_pkg: bool) -> engine.FileResult:
    try:
        return engine.lint_bytes(data, path, run, modname, is_pkg)
    except Exception as e:  # never let one file stop the run
        r = engine.FileResult(path, [], {}, [], [f"internal error on {path}: {type(e).__name__}: {e}"], [])
        return r


def _read(path: Path) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def lint_files(
    files: Sequence[Path], settings: Settings, run: engine.RunConfig, cache: Cache, jobs: int,
    notes: list, digests: Optional[dict] = None,
) -> list:
    """Lint files (through the cache). Unreadable files become notes, not crashes. With
    `digests`, records the content hash of the bytes each file's result was computed from."""
    results: list = [None] * len(files)
    todo = []
    keys = {}
    for i, path in enumerate(files):
        if path.suffix == ".ipynb":
            from . import notebook

            results[i] = notebook.lint_notebook(path, run)
            continue
        data = _read(path)
        if data is None:
            notes.append(f"{path}: cannot read file; skipped")
            continue
        if digests is not None:
            digests[str(path)] = fixes.content_hash(data)
        modname, is_pkg = module_name_for(path)
        key = cache.key(data, str(path), modname)
        hit = cache.get(key)
        if hit is not None:
            results[i] = hit
            continue
        keys[i] = key
        todo.append((i, str(path), data, modname, is_pkg))
    if todo:
        if jobs > 1 and len(todo) >= 8:
            chunks = schedule.balanced_chunks(todo, jobs, size=lambda t: len(t[2]))
            with cf.ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(settings,)) as ex:
                futures = {ex.submit(_lint_chunk, [t[1:] for t in chunk]): chunk for chunk in chunks}
                for fut in cf.as_completed(futures):
                    chunk = futures[fut]
                    for (i, *_), res in zip(chunk, fut.result()):
                        results[i] = res
        else:
            for i, path, data, modname, is_pkg in todo:
                results[i] = _lint_one(run, path, data, modname, is_pkg)
        for i, *_ in todo:
            cache.put(keys[i], results[i])
    return [r for r in results if r is not None]


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def check_paths(
    paths: Iterable = (".",),
    *,
    settings: Optional[Settings] = None,
    config: Optional[Path] = None,
    fix: bool = False,
    unsafe_fixes: bool = False,
    diff: bool = False,
    jobs: Optional[int] = None,
    cache: bool = True,
    force_exclude: bool = False,
    write: bool = True,
) -> CheckReport:
    paths = [Path(p) for p in paths] or [Path(".")]
    if settings is None:
        settings = settings_for(paths, config)
    missing = [str(p) for p in paths if not p.exists()]
    files = list(discover([p for p in paths if p.exists()], settings, force_exclude=force_exclude))
    run = engine.RunConfig(settings)
    jobs = jobs or default_jobs()
    cache_root = Path(settings.cache_dir)
    if not cache_root.is_absolute():
        cache_root = settings.root / cache_root
    store = Cache(cache_root, settings.fingerprint(), enabled=cache)
    notes: list = []
    digests: Optional[dict] = {} if (fix or diff) else None  # what each file's fixes are computed from
    results = lint_files(files, settings, run, store, jobs, notes, digests)
    context_results = _project_context(files, settings, run, store, jobs)
    diags = _finalize(results, context_results, run)
    report = CheckReport(diags, len(files), [], [], notes, missing, {}, [])
    for r in results:
        report.errors.extend(r.errors)
        report.notes.extend(f"{r.path}: {n}" for n in r.notes)
    if fix or diff:
        _apply_fixes(report, results, context_results, run, unsafe_fixes, write=write and not diff,
                     digests=digests)
    return report


def _finalize(results, context_results, run) -> list:
    if not context_results:
        return _localize(results, engine.finalize(results, run))
    wanted = {r.path for r in results}
    diags = [d for d in engine.finalize(list(results) + context_results, run) if d.filename in wanted]
    return _localize(results, diags)


def _localize(results, diags) -> list:
    """Notebook findings: from rows of the concatenated code cells to (cell, row in cell)."""
    if not any(getattr(r, "notebook", None) is not None for r in results):
        return diags
    from . import notebook

    return notebook.localize(results, diags)


def _project_context(files, settings, run, store, jobs) -> list:
    """Facts of the project's other files, for cross-file rules when only some files are linted
    (the pre-commit case). Reuses the cache; returns their results (used for facts only)."""
    if settings.config_path is None and not (settings.root / ".git").exists() and not (settings.root / "pyproject.toml").exists():
        return []
    checked = {os.path.abspath(f) for f in files}
    # Spell the other files' paths as a whole-project run from the current folder does
    # (`eqxlint check .` at the project root gives `pkg/mod.py`), so that its cache entries are
    # the ones found here: the cache key includes the path as given.
    root = settings.root
    rel = os.path.relpath(root)
    if rel == "." or not (rel == ".." or rel.startswith(".." + os.sep)):
        root = Path(rel)
    others = [
        f for f in discover([root], settings)
        if os.path.abspath(f) not in checked and f.suffix == ".py"
    ]
    if not others:
        return []
    return lint_files(others, settings, run, store, jobs, [])


def _apply_fixes(report: CheckReport, results, context_results, run, unsafe: bool, write: bool,
                 digests: Optional[dict] = None) -> None:
    """Apply fixes file by file: non-overlapping fixes in one pass, re-lint, repeat until
    nothing applicable is left (at most 10 rounds). Never writes a wrong result:

    - a file reached under several names (symlinks in the tree) is fixed once, under one name;
    - the file is locked while it is fixed (`fixes.FileLock`), so concurrent eqxlint runs take
      turns, and its bytes are read under the lock;
    - fixes are applied only to the exact bytes they were computed from: when the bytes differ
      from those linted (`digests`: content hashes from `lint_files`), the file is linted again
      first;
    - before writing, the result must equal a fresh lint-and-fix of those bytes, must re-parse,
      and the bytes on disk must still be those read (`fixes.write_atomic(expected=...)`)."""
    by_file: dict = {}
    for d in report.diagnostics:
        if fixes.applicable(d, unsafe):
            by_file.setdefault(d.filename, []).append(d)
    if not by_file:
        return
    digests = digests or {}
    diags_of: dict = {}
    for d in report.diagnostics:
        diags_of.setdefault(d.filename, []).append(d)
    names = list(dict.fromkeys([r.path for r in results] + list(diags_of)))
    groups = _same_file_groups(names, by_file)
    handled = {n for g in groups for n in g}
    remaining = [d for d in report.diagnostics if d.filename not in handled]
    for group in groups:
        path, aliases = group[0], group[1:]
        p = Path(path)
        if p.suffix == ".ipynb":
            from . import notebook

            try:
                with fixes.FileLock(p) if write else contextlib.nullcontext():
                    final, applied = notebook.fix_notebook(p, by_file[path], run, unsafe, write=write, report=report)
            except OSError as e:
                report.rejected.append(f"{path}: could not fix: {e}")
                final, applied = diags_of.get(path, []), []
            report.fixed.extend(applied)
            remaining.extend(final)
            for alias in aliases:  # the same notebook: its findings under the other name
                remaining.extend(dataclasses.replace(d, filename=alias) for d in final)
            continue
        new_text = _fix_one(report, path, diags_of.get(path, []), results, context_results, run, unsafe,
                            write, digests.get(path), remaining)
        for alias in aliases:
            if new_text is None:
                remaining.extend(diags_of.get(alias, []))
            else:  # what remains of the fixed text, as linted under this name
                remaining.extend(_relint(new_text, alias, results, context_results, run))
    remaining.sort(key=Diagnostic.sort_key)
    report.diagnostics = remaining


def _same_file_groups(names: list, fixable: dict) -> list:
    """The names of `names` with fixes to apply, grouped by the real file they name (symlinks
    resolved); each group starts with the name the file is fixed under: one with fixes, not a
    symlink if there is one."""
    by_real: dict = {}
    for n in names:
        by_real.setdefault(os.path.realpath(n), []).append(n)
    groups = []
    for members in by_real.values():
        with_fixes = [n for n in members if n in fixable]
        if not with_fixes:
            continue
        primary = min(with_fixes, key=lambda n: (os.path.islink(n), n))
        groups.append([primary] + [n for n in members if n != primary])
    return groups


def _relint(text: str, path: str, results, context_results, run) -> list:
    """The final diagnostics of `path` holding `text`, with the rest of the project as linted."""
    modname, is_pkg = module_name_for(Path(path))
    res = engine.lint_source(text, path, run, modname, is_pkg)
    others = [r for r in results if r.path != path] + list(context_results)
    return [d for d in engine.finalize([res] + others, run) if d.filename == path]


def _fix_one(report: CheckReport, path: str, diags: list, results, context_results, run, unsafe: bool,
             write: bool, digest: Optional[str], remaining: list) -> Optional[str]:
    """Fix one file (see `_apply_fixes`); returns the fixed text, or None when it is unchanged."""
    p = Path(path)
    try:
        with fixes.FileLock(p) if write else contextlib.nullcontext() as locked:
            data = locked.read() if locked is not None else _read(p)
            if data is None:
                remaining.extend(diags)
                return None
            return _fix_locked(report, path, data, diags, results, context_results, run, unsafe, write,
                               digest, remaining)
    except OSError as e:
        report.rejected.append(f"{path}: could not fix: {e}")
        remaining.extend(diags)
        return None


def _fix_locked(report: CheckReport, path: str, data: bytes, diags: list, results, context_results, run,
                unsafe: bool, write: bool, digest: Optional[str], remaining: list) -> Optional[str]:
    try:
        # `decode` returns 'utf-8-sig' for a file with a BOM: writing back with the same
        # encoding restores it.
        text, encoding = decode(data)
    except (UnicodeDecodeError, SyntaxError, LookupError):
        remaining.extend(diags)
        return None

    def relint(new_text: str) -> list:
        return _relint(new_text, path, results, context_results, run)

    linted_these_bytes = digest is not None and digest == fixes.content_hash(data)
    if not linted_these_bytes:
        # The file changed since it was linted (another run fixed it, an editor saved it):
        # findings and fixes are computed again on the bytes read now.
        diags = relint(text)
    out = fixes.fix_text(text, diags, relint, unsafe, path)
    report.rejected.extend(out.rejected)
    if out.text == text:
        remaining.extend(out.remaining)
        return None
    if write and linted_these_bytes:
        # Findings from the first pass (or the cache) must give exactly what a fresh lint of
        # these bytes gives: never write a result computed from anything else.
        check = fixes.fix_text(text, relint(text), relint, unsafe, path)
        if check.text != out.text:
            report.rejected.append(
                f"{path}: the fixes differ from those of a fresh lint of the file; not written")
            remaining.extend(diags)
            return None
    if write:
        try:
            fixes.write_atomic(Path(path), out.text, encoding, expected=data)
        except (OSError, UnicodeEncodeError) as e:
            report.rejected.append(f"{path}: could not write fixes: {e}")
            remaining.extend(diags)
            return None
    report.diffs[path] = (text, out.text)
    report.fixed.extend(out.applied)
    remaining.extend(out.remaining)
    return out.text


def check_source(source: str, path: str = "<string>", *, settings: Optional[Settings] = None, module_name: str = "") -> list:
    """Lint one source string (single-file project). Returns the final diagnostics."""
    settings = settings or Settings(root=Path.cwd())
    run = engine.RunConfig(settings)
    res = engine.lint_source(source, path, run, module_name)
    return engine.finalize([res], run)
