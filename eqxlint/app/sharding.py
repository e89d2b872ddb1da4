"""Splitting one lint run across CI machines.

    eqxlint index -o eqxlint-index.json .                      # once: every file's facts
    eqxlint check --shard 1/4 --index-file eqxlint-index.json .  # on machine 1 of 4, ...

`eqxlint index` lints every file (through the cache) and writes the per-file cross-file facts
(module names, classes, primitives and the rules registered on them) to one JSON file, with
paths relative to the project root so that the file can be shared between checkouts.
`check --shard I/N` lints only the I-th of N equal slices of the sorted file list; with
`--index-file` the facts of every other file come from the index instead of from linting them,
so cross-file rules and conditions are evaluated against the whole project and the union of all
shards' findings equals one unsharded run's. Without `--index-file`, a shard falls back to
linting the other files for their facts (through the cache), as a partial run always does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from .. import __version__
from . import api
from ..engine import run as engine
from .cache import Cache
from .config import ConfigError
from .files import discover

FORMAT = 1


def parse_shard(s: str) -> tuple[int, int]:
    """`"I/N"` (1-based) -> (I, N); ConfigError on anything else."""
    try:
        i_s, n_s = str(s).split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise ConfigError(f"invalid --shard {s!r}: expected I/N, e.g. 1/4") from None
    if n < 1 or not 1 <= i <= n:
        raise ConfigError(f"invalid --shard {s!r}: need 1 <= I <= N")
    return i, n


def select_shard(files: list, i: int, n: int) -> list:
    """The I-th of N slices: files sorted by path, every N-th one from I (balanced by count;
    every shard must be given the same paths and configuration)."""
    ordered = sorted(files, key=lambda p: os.path.normcase(os.path.abspath(p)))
    return ordered[i - 1::n]


def _store(settings, cache: bool) -> Cache:
    root = Path(settings.cache_dir)
    if not root.is_absolute():
        root = settings.root / root
    return Cache(root, settings.fingerprint(), enabled=cache)


def _rel(path: str, root: Path) -> str:
    p = os.path.abspath(path)
    try:
        return Path(p).relative_to(root.resolve()).as_posix()
    except ValueError:
        try:
            return Path(p).relative_to(os.path.abspath(root)).as_posix()
        except ValueError:
            return Path(p).as_posix()


def build_index(paths: list, settings, *, jobs: Optional[int] = None, cache: bool = True) -> dict:
    files = list(discover([Path(p) for p in paths if Path(p).exists()], settings))
    run = engine.RunConfig(settings)
    results = api.lint_files(files, settings, run, _store(settings, cache), jobs or api.default_jobs(), [])
    entries = [{"path": _rel(r.path, settings.root), "facts": r.facts} for r in results]
    entries.sort(key=lambda e: e["path"])
    return {
        "format": FORMAT, "version": __version__, "fingerprint": settings.fingerprint(),
        "files": entries,
    }


def load_index(index_file: Path, settings, absolute: bool) -> list:
    """Context results (facts only) from an index file. Paths are made absolute, or relative to
    the current folder, like the paths of the files being checked."""
    try:
        data = json.loads(Path(index_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read index file {index_file}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), list):
        raise ConfigError(f"{index_file} is not an eqxlint index file (rebuild it with `eqxlint index -o`)")
    if data.get("version") != __version__:
        raise ConfigError(
            f"index file {index_file} was built by eqxlint {data.get('version')}, this is "
            f"{__version__}: rebuild it with `eqxlint index -o`"
        )
    if data.get("fingerprint") != settings.fingerprint():
        raise ConfigError(
            f"index file {index_file} was built with a different configuration: rebuild it with "
            "`eqxlint index -o` using the same configuration"
        )
    out = []
    for e in data["files"]:
        p = settings.root / e["path"]
        path = str(p) if absolute else os.path.relpath(p)
        out.append(engine.FileResult(path, [], e.get("facts") or {}, [], [], []))
    return out


def sharded_check(
    paths, settings, *, shard: Optional[str] = None, index_file: Optional[Path] = None,
    fix: bool = False, unsafe_fixes: bool = False, jobs: Optional[int] = None, cache: bool = True,
    force_exclude: bool = False,
) -> "api.CheckReport":
    paths = [Path(p) for p in paths] or [Path(".")]
    missing = [str(p) for p in paths if not p.exists()]
    files = list(discover([p for p in paths if p.exists()], settings, force_exclude=force_exclude))
    if shard:
        i, n = parse_shard(shard)
        files = select_shard(files, i, n)
    run = engine.RunConfig(settings)
    jobs = jobs or api.default_jobs()
    store = _store(settings, cache)
    notes: list = []
    results = api.lint_files(files, settings, run, store, jobs, notes)
    if index_file is not None:
        mine = {os.path.normcase(os.path.abspath(r.path)) for r in results}
        absolute = any(p.is_absolute() for p in paths)
        context = [
            r for r in load_index(index_file, settings, absolute)
            if os.path.normcase(os.path.abspath(r.path)) not in mine
        ]
    else:
        context = api._project_context(files, settings, run, store, jobs)
    diags = api._finalize(results, context, run)
    report = api.CheckReport(diags, len(files), [], [], notes, missing, {}, [])
    for r in results:
        report.errors.extend(r.errors)
        report.notes.extend(f"{r.path}: {m}" for m in r.notes)
    if fix:
        api._apply_fixes(report, results, context, run, unsafe_fixes, write=True)
    return report


def cmd_index(args) -> int:
    import sys

    paths = [Path(p) for p in (args.paths or ["."])]
    settings = api.settings_for(paths)
    data = build_index(paths, settings, cache=not args.no_cache)
    out = Path(args.output)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    os.replace(tmp, out)
    sys.stderr.write(f"eqxlint: wrote the facts of {len(data['files'])} file(s) to {out}\n")
    return 0
