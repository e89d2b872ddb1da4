"""Which files a run lints: `.py` (and `.ipynb`) files under the given paths, minus `exclude`,
`extend-exclude` and `.gitignore`d paths. Directory symlinks are not followed (no loops, nothing
outside the tree); a file symlink is linted only when its target lies inside the walked tree."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, Optional

from .config import Settings, is_excluded

SOURCE_SUFFIXES = (".py", ".ipynb")


def _translate(pattern: str) -> str:
    i, out = 0, []
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern[i : i + 2] == "**":
                if pattern[i : i + 3] == "**/":
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1 : j].replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class _Rules:
    """The patterns of one .gitignore file, relative to its folder."""

    def __init__(self, base: str, lines: list[str]):
        self.base = base  # posix path of the folder, relative to the walk root ('' for root)
        self.rules: list[tuple[re.Pattern, bool, bool]] = []
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            if line.startswith("\\"):
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            if not line:
                continue
            anchored = "/" in line
            line = line.lstrip("/")
            rx = _translate(line)
            rx = ("^" + rx if anchored else r"^(?:.*/)?" + rx) + "$"
            self.rules.append((re.compile(rx), negate, dir_only))

    def match(self, rel: str, is_dir: bool) -> Optional[bool]:
        if self.base:
            if not rel.startswith(self.base + "/"):
                return None
            rel = rel[len(self.base) + 1 :]
        result = None
        for rx, negate, dir_only in self.rules:
            if dir_only and not is_dir:
                continue
            if rx.match(rel):
                result = not negate
        return result


def _read_gitignore(folder: Path, base: str) -> Optional[_Rules]:
    gi = folder / ".gitignore"
    try:
        if gi.is_file():
            return _Rules(base, gi.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:
        return None
    return None


def discover(paths: list[Path], settings: Settings, *, force_exclude: bool = False) -> Iterator[Path]:
    """Yield the files to lint, each once, in a stable order."""
    seen: set = set()
    for path in paths:
        if path.is_file() or (path.suffix in SOURCE_SUFFIXES and not path.is_dir()):
            if force_exclude and is_excluded(path, settings):
                continue
            key = os.path.normcase(os.path.abspath(path))
            if key not in seen:
                seen.add(key)
                yield path
            continue
        if not path.is_dir():
            # A missing path is reported by the caller; a directory named x.py is walked.
            continue
        # A directory named explicitly is walked even if excluded, unless forced (as Ruff);
        # exclusions apply to what lies below it.
        if force_exclude and is_excluded(path, settings):
            continue
        yield from _walk(path, settings, seen)


def _walk(top: Path, settings: Settings, seen: set) -> Iterator[Path]:
    root_real = top.resolve()
    ignores: list[_Rules] = []
    if settings.respect_gitignore:
        # .gitignore files in the walk root and above it (up to the repository top).
        chain = []
        for d in [root_real, *root_real.parents]:
            chain.append(d)
            if (d / ".git").exists():
                break
        for d in reversed(chain):
            rel = os.path.relpath(d, root_real)
            if rel == ".":
                rules = _read_gitignore(d, "")
            else:
                # Patterns of an ancestor .gitignore, re-based onto the walk root.
                rules = _read_gitignore(d, "")
                if rules is not None:
                    prefix = os.path.relpath(root_real, d).replace(os.sep, "/")
                    rules = _Prefixed(rules, prefix)
            if rules is not None:
                ignores.append(rules)
    stack = [(top, "", list(ignores))]
    out = []
    while stack:
        folder, rel, active = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        if settings.respect_gitignore and rel:
            extra = _read_gitignore(Path(folder), rel)
            if extra is not None:
                active = active + [extra]
        for entry in entries:
            child_rel = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if entry.name == ".git":
                    continue
                if _ignored(active, child_rel, True) or _excluded(entry, settings):
                    continue
                stack.append((Path(entry.path), child_rel, active))
                continue
            if not entry.name.endswith(SOURCE_SUFFIXES):
                continue
            if is_link:
                try:
                    target = Path(entry.path).resolve(strict=True)
                except (OSError, RuntimeError):
                    continue
                if root_real not in target.parents or not target.is_file():
                    continue
            elif not entry.is_file(follow_symlinks=False):
                continue
            if _ignored(active, child_rel, False) or _excluded(entry, settings):
                continue
            key = os.path.normcase(os.path.abspath(entry.path))
            if key in seen:
                continue
            seen.add(key)
            out.append(Path(entry.path))
    out.sort()
    yield from out


class _Prefixed:
    def __init__(self, rules: _Rules, prefix: str):
        self.rules, self.prefix = rules, prefix

    def match(self, rel: str, is_dir: bool):
        return self.rules.match(f"{self.prefix}/{rel}", is_dir)


def _ignored(active, rel: str, is_dir: bool) -> bool:
    result = False
    for rules in active:
        m = rules.match(rel, is_dir)
        if m is not None:
            result = m
    return result


def _excluded(entry, settings: Settings) -> bool:
    """Name patterns (`build`, `*_pb2.py`) match the entry's own name; patterns with a slash
    match its path relative to the configuration root."""
    import fnmatch

    for pat in settings.exclude + settings.extend_exclude:
        pat = pat.rstrip("/")
        if "/" in pat:
            if is_excluded(Path(entry.path), Settings(root=settings.root, exclude=[pat])):
                return True
        elif fnmatch.fnmatch(entry.name, pat):
            return True
    return False
