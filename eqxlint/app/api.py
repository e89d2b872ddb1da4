"""The Python API the CLI is a thin layer over.

    from eqxlint import check_paths
    report = check_paths(["src/"])
    for d in report.diagnostics: print(d.filename, d.row, d.code, d.message)
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence

from . import config as config_mod
from ..engine import run as engine
from ..engine.finalize import finalize as project_phase
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
    notes: list, digests: Optional[dict] = None, mp_context=None, prepared: Optional[dict] = None,
) -> list:
    """Lint files (through the cache). Unreadable files become notes, not crashes. With
    `digests`, records the content hash of the bytes each file's result was computed from.
    `mp_context`: how worker processes start (default: the platform's)."""
    results: list = [None] * len(files)
    todo = []
    keys = {}
    for i, path in enumerate(files):
        if path.suffix == ".ipynb":
            from . import notebook

            results[i] = notebook.lint_notebook(path, run)
            continue
        known = prepared.get(str(path)) if prepared else None
        if known is not None:
            data, modname, is_pkg, key = known
        else:
            data = _read(path)
            if data is None:
                notes.append(f"{path}: cannot read file; skipped")
                continue
            modname, is_pkg = module_name_for(path)
            key = cache.key(data, str(path), modname)
        if digests is not None:
            digests[str(path)] = fixes.content_hash(data)
        hit = cache.get(key)
        if hit is not None:
            results[i] = hit
            continue
        keys[i] = key
        todo.append((i, str(path), data, modname, is_pkg))
    if todo:
        if jobs > 1 and len(todo) >= 8:
            chunks = schedule.balanced_chunks(todo, jobs, size=lambda t: len(t[2]))
            with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp_context, initializer=_init_worker,
                                        initargs=(settings,)) as ex:
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
    context_files = _context_files(files, settings)
    project = None
    if cache and not (fix or diff):
        project = _project_entry(paths, files, context_files, settings, run, store)
        if project is not None and project[2] is not None:
            return _report_from(project[2], len(files), missing)
    prepared = project[3] if project is not None else None
    results = lint_files(files, settings, run, store, jobs, notes, digests, prepared=prepared)
    context_results = lint_files(context_files, settings, run, store, jobs, [], prepared=prepared) if context_files else []
    diags = _finalize(results, context_results, run)
    report = CheckReport(diags, len(files), [], [], notes, missing, {}, [])
    for r in results:
        report.errors.extend(r.errors)
        report.notes.extend(f"{r.path}: {n}" for n in r.notes)
    if project is not None and not report.errors and not any(r.errors for r in context_results):
        store.put_project(project[0], project[1], {
            "diagnostics": [d.to_dict() for d in diags], "notes": report.notes,
        })
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


def _project_entry(paths, files, context_files, settings, run, store):
    """(slot, key, cached project result or None, prepared file keys) for the project-result
    cache (`Cache.get_project`), or None where it does not apply (unreadable files)."""
    prepared: dict = {}
    entries = []
    for path in list(files) + list(context_files):
        data = _read(path)
        if data is None:
            return None
        if path.suffix == ".ipynb":  # linted on every miss (never cached alone); keyed by content
            entries.append((str(path), store.key(data, str(path), "<notebook>")))
            continue
        modname, is_pkg = module_name_for(path)
        key = store.key(data, str(path), modname)
        prepared[str(path)] = (data, modname, is_pkg, key)
        entries.append((str(path), key))
    invocation = repr((os.getcwd(), [str(p) for p in paths], len(files)))
    slot = hashlib.sha256(invocation.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    key = store.project_key(entries, settings, repr((sorted(run.enabled), len(files))))
    return slot, key, store.get_project(slot, key), prepared


def _report_from(cached: dict, n_files: int, missing: list) -> CheckReport:
    diags = [Diagnostic.from_dict(d) for d in cached["diagnostics"]]
    return CheckReport(diags, n_files, [], [], list(cached["notes"]), missing, {}, [])


def _context_files(files, settings) -> list:
    """The project's other files, whose facts cross-file rules need when only some files are
    linted (the pre-commit case)."""
    if not _has_project(settings):
        return []
    checked = {os.path.abspath(f) for f in files}
    # Spell the other files' paths as a whole-project run from the current folder does
    # (`eqxlint check .` at the project root gives `pkg/mod.py`), so that its cache entries are
    # the ones found here: the cache key includes the path as given.
    root = _spelled_root(settings)
    others = [
        f for f in discover([root], settings)
        if os.path.abspath(f) not in checked and f.suffix == ".py"
    ]
    return others


def _project_context(files, settings, run, store, jobs) -> list:
    """Facts of the project's other files, for cross-file rules when only some files are linted
    (the pre-commit case). Reuses the cache; returns their results (used for facts only)."""
    others = _context_files(files, settings)
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


# ---------------------------------------------------------------------------- project session
def _has_project(settings: Settings) -> bool:
    """Whether `eqxlint check FILE` sees the rest of the project (see `_project_context`)."""
    root = settings.root
    return settings.config_path is not None or (root / ".git").exists() or (root / "pyproject.toml").exists()


def _spelled_root(settings: Settings) -> Path:
    """The project root spelled as a whole-project run from the current folder spells it (so
    the cache entries of `eqxlint check .` are the ones found)."""
    root = settings.root
    rel = os.path.relpath(root)
    if rel == "." or not (rel == ".." or rel.startswith(".." + os.sep)):
        return Path(rel)
    return root


def _file_stamp(path) -> Optional[tuple]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class ProjectSession:
    """One project's per-file results, held in memory: what the language server keeps.

    `eqxlint check FILE` lints FILE and takes the facts of the project's other `.py` files from
    the cache; a session loads those results once, through the same cache, then keeps them up
    to date as documents change: `update(path, text)` re-lints one file from its in-memory text
    (only the top-level statements that changed are parsed again) and replaces its facts;
    `update(path)` goes back to the file on disk. `diagnostics_for(path)` runs the project phase
    (`finalize`) over the current facts and gives what `eqxlint check path` would give if every
    document held in memory were saved — the same configuration, findings, messages and
    positions (`tests/test_session.py` compares them).

        session = ProjectSession.for_path("src/pkg/train.py")
        session.update("src/pkg/model.py", edited_text)
        for d in session.diagnostics_for("src/pkg/train.py"): ...

    Not thread-safe: use one session from one thread at a time."""

    def __init__(self, settings: Settings, *, cache: bool = True, jobs: Optional[int] = None,
                 mp_context=None):
        self.settings = settings
        self.run = engine.RunConfig(settings)
        cache_root = Path(settings.cache_dir)
        if not cache_root.is_absolute():
            cache_root = settings.root / cache_root
        self.store = Cache(cache_root, settings.fingerprint(), enabled=cache)
        self.jobs = jobs or default_jobs()
        self.mp_context = mp_context
        self.has_project = _has_project(settings)
        self.notes: list = []  # files that could not be read
        self._results: dict = {}  # absolute path -> FileResult (disk or in-memory text)
        self._names: dict = {}  # absolute path -> the path as a whole-project run spells it
        self._project: list = []  # absolute paths of the project's .py files, in discovery order
        self._texts: dict = {}  # absolute path -> the text held in memory
        self._parsers: dict = {}  # absolute path -> IncrementalParser
        self._stamps: dict = {}  # absolute path -> (mtime_ns, size) of the file a result was read from
        self._loaded = False

    @classmethod
    def for_path(cls, path, config: Optional[Path] = None, **kw) -> "ProjectSession":
        """The session of the project `path` belongs to, configured as `eqxlint check path`
        configures it (raises `ConfigError` as the CLI does)."""
        return cls(settings_for([Path(path)], config), **kw)

    # -- files ---------------------------------------------------------------------------------
    def load(self) -> None:
        """Discover the project's `.py` files and read their results through the cache (linting
        the files that are not in it). Done once, on first use."""
        if self._loaded:
            return
        self._loaded = True
        if not self.has_project:
            return
        self._discover()

    def _discover(self) -> None:
        files = [f for f in discover([_spelled_root(self.settings)], self.settings) if f.suffix == ".py"]
        keys = [os.path.abspath(f) for f in files]
        self._project = keys
        for k, f in zip(keys, files):
            self._names.setdefault(k, str(f))
        todo = [f for k, f in zip(keys, files) if k not in self._results]
        for r in self._lint_disk(todo):
            self._results[os.path.abspath(r.path)] = r

    def _lint_disk(self, files: list) -> list:
        if not files:
            return []
        stamps = {os.path.abspath(f): _file_stamp(f) for f in files}
        results = lint_files(files, self.settings, self.run, self.store, self.jobs, self.notes,
                             mp_context=self.mp_context)
        for r in results:
            self._stamps[os.path.abspath(r.path)] = stamps.get(os.path.abspath(r.path))
        return results

    def refresh(self) -> None:
        """Files may have been created, deleted or changed on disk (not the documents held in
        memory): discover the project again and re-read the files whose size or modification
        time changed (through the cache)."""
        self.load()
        if not self.has_project:
            return
        held = set(self._texts)
        for k in list(self._results):
            if k not in held and self._stamps.get(k) != _file_stamp(k):
                del self._results[k]
        self._discover()
        project = set(self._project)
        for k in list(self._results):
            if k not in held and k not in project:
                del self._results[k]  # deleted, or excluded now

    def name(self, path) -> str:
        """The path as the session's diagnostics spell it."""
        key = os.path.abspath(path)
        name = self._names.get(key)
        if name is None:
            rel = os.path.relpath(key)
            name = key if rel == ".." or rel.startswith(".." + os.sep) else rel
            self._names[key] = name
        return name

    def text(self, path) -> Optional[str]:
        """The text held in memory for `path`, if any."""
        return self._texts.get(os.path.abspath(path))

    def held(self) -> dict:
        """{absolute path: text} of the documents held in memory."""
        return dict(self._texts)

    # -- updates -------------------------------------------------------------------------------
    def update(self, path, text: Optional[str] = None) -> "engine.FileResult":
        """Re-lint `path` from `text` (a document's in-memory text), or from the file on disk
        when `text` is None; its facts replace the old ones. Returns its per-file result."""
        self.load()
        key = os.path.abspath(path)
        name = self.name(key)
        if text is None:
            self._texts.pop(key, None)
            self._parsers.pop(key, None)
            found = self._lint_disk([Path(name)])
            if found:
                self._results[key] = found[0]
            else:
                self._results.pop(key, None)
            return self._results.get(key)
        old = self._results.get(key)
        if old is not None and self._texts.get(key) == text:
            return old
        from ..syntax.incremental import IncrementalParser

        parser = self._parsers.get(key)
        if parser is None:
            parser = self._parsers[key] = IncrementalParser()
        modname, is_pkg = module_name_for(Path(key))
        try:
            res = engine.lint_source(text, name, self.run, modname, is_pkg, parse=parser.parse)
        except Exception as e:  # never let one document stop the session
            res = engine.FileResult(name, [], {}, [], [f"internal error on {name}: {type(e).__name__}: {e}"], [])
        self._texts[key] = text
        self._results[key] = res
        return res

    def forget(self, path) -> None:
        """Drop what is held in memory for `path` (the document was closed): back to disk."""
        key = os.path.abspath(path)
        if key in self._texts or key not in self._project:
            self._texts.pop(key, None)
            self._parsers.pop(key, None)
            if key in self._project:
                self.update(key)
            else:
                self._results.pop(key, None)

    # -- diagnostics ---------------------------------------------------------------------------
    def diagnostics_for(self, path) -> list:
        """What `eqxlint check path` gives (with the documents held in memory as saved)."""
        return self.diagnostics([path])[os.path.abspath(path)]

    def diagnostics(self, paths) -> dict:
        """`diagnostics_for` of several files, with one project phase for the project's own files.
        Returns {absolute path: [Diagnostic]}."""
        self.load()
        keys = list(dict.fromkeys(os.path.abspath(p) for p in paths))
        for k in keys:
            if k not in self._results:
                self.update(k)
        out: dict = {k: [] for k in keys}
        project = [k for k in self._project if k in self._results] if self.has_project else []
        members = set(project)
        inside = [k for k in keys if k in members and k in self._results]
        if inside:
            out.update(self._finalize(project, inside))
        for k in keys:
            if k not in members and k in self._results:
                out.update(self._finalize(project + [k], [k]))
        return out

    def _parse(self, name: str, text: str):
        """Findings that other files decide are placed by parsing their file again: a document
        held in memory is parsed by its incremental parser (its statements are all parsed
        already), any other file at once."""
        key = os.path.abspath(name)
        parser = self._parsers.get(key) if self._texts.get(key) is not None else None
        if parser is None:
            from ..syntax.parsing import parse_module

            return parse_module(text)
        return parser.parse(text)

    def _finalize(self, universe: list, wanted: list) -> dict:
        """`finalize` over the results of `universe`, for the files `wanted`. The other files
        contribute their facts only (a file's final findings depend on its own result and the
        project index, which is built from facts), and every result is passed as a copy:
        `finalize` writes into diagnostics (call chains, severities) and notes."""
        want = set(wanted)
        results = []
        for k in universe:
            r = self._results[k]
            if k in want:
                results.append(dataclasses.replace(
                    r, diagnostics=[dataclasses.replace(d) for d in r.diagnostics],
                    notes=list(r.notes), errors=list(r.errors)))
            else:
                results.append(engine.FileResult(r.path, [], r.facts, [], [], []))
        names = {self._results[k].path: k for k in wanted}
        out: dict = {k: [] for k in wanted}
        for d in project_phase(results, self.run, parse=self._parse):
            k = names.get(d.filename)
            if k is not None:
                out[k].append(d)
        return out

