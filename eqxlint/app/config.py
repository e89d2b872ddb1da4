"""Configuration: `[tool.eqxlint]` in pyproject.toml (or an `eqxlint.toml`), found by walking up
from the linted path like Ruff, overridden by command-line flags."""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import sys
from pathlib import Path
from typing import Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..core.diagnostics import ConfigError as ConfigError
from ..engine import registry

DEFAULT_EXCLUDE = [
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".mypy_cache", ".nox", ".pants.d",
    ".pytype", ".ruff_cache", ".svn", ".tox", ".venv", "__pypackages__", "_build", "buck-out",
    "build", "dist", "node_modules", "venv", ".eqxlint_cache", ".ipynb_checkpoints",
    "site-packages", "__pycache__",
]


@dataclasses.dataclass
class Settings:
    root: Path
    config_path: Optional[Path] = None
    select: list = dataclasses.field(default_factory=lambda: ["ALL"])
    extend_select: list = dataclasses.field(default_factory=list)
    ignore: list = dataclasses.field(default_factory=list)
    per_file_ignores: dict = dataclasses.field(default_factory=dict)
    exclude: list = dataclasses.field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    extend_exclude: list = dataclasses.field(default_factory=list)
    respect_gitignore: bool = True
    jit_decorators: list = dataclasses.field(default_factory=list)
    transforms: list = dataclasses.field(default_factory=list)
    solvers: list = dataclasses.field(default_factory=list)
    cache_dir: str = ".eqxlint_cache"
    rule_options: dict = dataclasses.field(default_factory=dict)

    def enabled_codes(self) -> frozenset:
        codes: set = set()
        for key, sels in (("select", self.select), ("extend-select", self.extend_select)):
            for sel in sels:
                codes.update(_expand(sel, key, self.config_path))
        explicitly = set()
        for sel in self.extend_select:
            explicitly.update(_expand(sel, "extend-select", self.config_path))
        for sel in self.select:
            if sel.upper() not in ("ALL", "EQX"):
                explicitly.update(_expand(sel, "select", self.config_path))
        # Rules marked `default: off` run only when selected by their own code or prefix.
        for code in list(codes):
            doc = registry.doc(code)
            if doc is not None and not doc.default and code not in explicitly:
                codes.discard(code)
        for sel in self.ignore:
            codes.difference_update(_expand(sel, "ignore", self.config_path))
        return frozenset(codes)

    def ignored_for(self, path: str) -> frozenset:
        """Codes ignored for one file by per-file-ignores (patterns relative to the root)."""
        if not self.per_file_ignores:
            return frozenset()
        try:
            rel = Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            rel = Path(path).as_posix()
        out: set = set()
        for pattern, sels in self.per_file_ignores.items():
            if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(Path(rel).name, pattern):
                for sel in sels:
                    out.update(_expand(sel, "per-file-ignores", self.config_path))
        return frozenset(out)

    def fingerprint(self) -> str:
        """Hash of everything that changes per-file results (for the cache key)."""
        data = {
            "enabled": sorted(self.enabled_codes()),
            "jit": self.jit_decorators,
            "transforms": self.transforms,
            "solvers": self.solvers,
            "options": self.rule_options,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _expand(selector: str, key: str, path: Optional[Path]) -> list:
    try:
        return registry.expand_selector(selector)
    except KeyError:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}unknown rule selector {selector!r} in `{key}`") from None


_LIST_KEYS = {
    "select": "select", "extend-select": "extend_select", "ignore": "ignore",
    "extend-ignore": "ignore", "exclude": "exclude", "extend-exclude": "extend_exclude",
    "jit-decorators": "jit_decorators", "transforms": "transforms", "solvers": "solvers",
}


def find_config(start: Path) -> Optional[Path]:
    start = start.resolve()
    if start.is_file() or not start.exists():
        start = start.parent
    for d in [start, *start.parents]:
        for name in (".eqxlint.toml", "eqxlint.toml"):
            if (d / name).is_file():
                return d / name
        py = d / "pyproject.toml"
        if py.is_file():
            try:
                text = py.read_text(encoding="utf-8")
            except OSError:
                continue
            if "[tool.eqxlint" in text:
                return py
    return None


def load(config_path: Optional[Path], root: Optional[Path] = None) -> Settings:
    if config_path is None:
        return Settings(root=(root or Path.cwd()).resolve())
    config_path = Path(config_path)
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{config_path}: cannot read config: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{config_path}: invalid TOML: {e}") from None
    prefix = "tool.eqxlint"
    if config_path.name == "pyproject.toml":
        table = raw.get("tool", {}).get("eqxlint", {})
    else:
        table, prefix = raw, ""
    settings = Settings(root=config_path.resolve().parent, config_path=config_path)
    apply_table(settings, table, prefix)
    return settings


def apply_table(settings: Settings, table: dict, prefix: str = "tool.eqxlint") -> None:
    path = settings.config_path
    rules = registry.all_rules()

    def where(key):
        return f"{path}: `{prefix + '.' if prefix else ''}{key}`"

    for key, value in table.items():
        if key in _LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where(key)} must be a list of strings")
            attr = _LIST_KEYS[key]
            if key in ("exclude", "select"):
                setattr(settings, attr, list(value))
            else:
                getattr(settings, attr).extend(value)
            if key in ("select", "extend-select", "ignore", "extend-ignore"):
                for sel in value:
                    try:
                        registry.expand_selector(sel)
                    except KeyError:
                        raise ConfigError(f"{where(key)}: unknown rule selector {sel!r}") from None
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError(f"{where(key)} must be a table of pattern = [codes]")
            for pat, sels in value.items():
                if not isinstance(sels, list):
                    raise ConfigError(f"{where(key)}.{pat} must be a list of codes")
                for sel in sels:
                    try:
                        registry.expand_selector(sel)
                    except KeyError:
                        raise ConfigError(f"{where(key)}.{pat}: unknown rule selector {sel!r}") from None
                settings.per_file_ignores[pat] = list(sels)
        elif key == "respect-gitignore":
            if not isinstance(value, bool):
                raise ConfigError(f"{where(key)} must be true or false")
            settings.respect_gitignore = value
        elif key == "cache-dir":
            if not isinstance(value, str):
                raise ConfigError(f"{where(key)} must be a string")
            settings.cache_dir = value
        elif registry.CODE_RE.match(key):
            if key not in rules:
                raise ConfigError(f"{where(key)}: no rule {key} takes options")
            if not isinstance(value, dict):
                raise ConfigError(f"{where(key)} must be a table of options")
            allowed = rules[key].options
            for opt, val in value.items():
                if opt not in allowed:
                    raise ConfigError(f"{where(key + '.' + opt)}: unknown option for {key}")
                default = allowed[opt]
                if default is not None and not isinstance(val, type(default)):
                    raise ConfigError(
                        f"{where(key + '.' + opt)} must be {type(default).__name__}"
                    )
            settings.rule_options.setdefault(key, {}).update(value)
        else:
            raise ConfigError(f"{where(key)}: unknown key")


def is_excluded(path: Path, settings: Settings) -> bool:
    """Exclude patterns match any path component (`build`) or the path relative to the root."""
    patterns = settings.exclude + settings.extend_exclude
    try:
        rel = path.resolve().relative_to(settings.root.resolve()).as_posix()
    except ValueError:
        rel = path.as_posix()
    parts = rel.split("/")
    for pat in patterns:
        pat = pat.rstrip("/")
        if "/" in pat or "*" in pat or "?" in pat:
            if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat + "/*"):
                return True
            if "/" not in pat and any(fnmatch.fnmatch(p, pat) for p in parts):
                return True
        elif pat in parts:
            return True
    return False

