"""`eqxlint primitives PATH...`: the custom-primitive coverage table, from the project index.

For every custom primitive the project creates (`Primitive("name")`, a subclass, a project factory
such as `make_jnp_primitive(...)` or `register_primitive(...)`): where it is defined, which of
abstract eval, lowering, JVP, transpose and batching rules are registered (and where), and whether
it is non-differentiable by design (`# eqxlint: nondifferentiable`, `differentiable=False`). Then
totals per folder and overall, with percentages. Text, or JSON with `--output-format json`.

Only the fact collectors run (no rules), so this is as fast as indexing; results are cached under
a fingerprint of their own, never mixed with `eqxlint check` results.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

from . import api
from ..engine import run as engine
from .cache import Cache
from .files import discover
from ..project.index import KINDS, ProjectIndex

SHORT = {"abstract_eval": "eval", "lowering": "lower", "jvp": "jvp", "transpose": "transp", "batching": "batch"}


def build_index(paths: list, *, cache: bool = True, jobs: Optional[int] = None):
    """Lint `paths` with the fact collectors only. Returns (index, root, files, notes)."""
    paths = [Path(p) for p in paths] or [Path(".")]
    settings = api.settings_for(paths)
    files = list(discover([p for p in paths if p.exists()], settings))
    run = engine.RunConfig(settings, enabled=frozenset())
    cache_root = Path(settings.cache_dir)
    if not cache_root.is_absolute():
        cache_root = settings.root / cache_root
    store = Cache(cache_root, settings.fingerprint() + "-facts", enabled=cache)
    notes: list = []
    results = api.lint_files(files, settings, run, store, jobs or api.default_jobs(), notes)
    index = ProjectIndex.from_results(results)
    existing = [os.path.abspath(p) for p in paths if p.exists()]
    root = os.path.commonpath(existing) if existing else os.getcwd()
    if os.path.isfile(root):
        root = os.path.dirname(root)
    return index, root, files, notes


def _status(index, prim, kind: str) -> Optional[bool]:
    """True / False, or None where the index says a dynamic registration makes it undecidable."""
    decide = getattr(index, "registered", None)
    if decide is not None:
        return decide(prim, kind)
    return bool(prim.rules.get(kind))


def _rel(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(os.path.abspath(path), root)
    except ValueError:  # different drive (Windows)
        return path
    return rel.replace(os.sep, "/")


def rows(index, root: str) -> list:
    out = []
    for qual, prim in index.primitives.items():
        rel = _rel(prim.path, root)
        folder = rel.rsplit("/", 1)[0] if "/" in rel else "."
        rules = {}
        for kind in KINDS:
            where = sorted({_rel(w, root) if os.path.isabs(w) else w for w in prim.rules.get(kind, [])})
            rules[kind] = {"registered": _status(index, prim, kind), "where": where}
        out.append(
            {
                "primitive": qual,
                "name": prim.name,
                "path": rel,
                "line": prim.row,
                "folder": folder,
                "nondifferentiable": bool(prim.nondiff),
                "via": prim.via,
                "rules": rules,
            }
        )
    out.sort(key=lambda r: (r["folder"], r["path"], r["line"], r["primitive"]))
    return out


def _pct(n: int, total: int) -> float:
    return round(100.0 * n / total, 1) if total else 0.0


def totals(table: list) -> dict:
    """Per folder and overall: counts and percentages per rule kind."""
    groups: dict = {}
    for r in table:
        for key in (r["folder"], "TOTAL"):
            g = groups.setdefault(key, {"primitives": 0, "nondifferentiable": 0, **{k: 0 for k in KINDS}, "unknown": {k: 0 for k in KINDS}})
            g["primitives"] += 1
            g["nondifferentiable"] += r["nondifferentiable"]
            for k in KINDS:
                st = r["rules"][k]["registered"]
                if st:
                    g[k] += 1
                elif st is None:
                    g["unknown"][k] += 1
    out = {}
    for key, g in groups.items():
        n = g["primitives"]
        out[key] = {
            "primitives": n,
            "nondifferentiable": g["nondifferentiable"],
            **{k: {"count": g[k], "percent": _pct(g[k], n), "unknown": g["unknown"][k]} for k in KINDS},
        }
    return out


def render_text(table: list, tot: dict, root: str) -> str:
    lines = [f"Custom primitives under {root}", ""]
    if not table:
        lines.append("No custom primitives found.")
        return "\n".join(lines) + "\n"
    head = ["primitive", "defined at"] + [SHORT[k] for k in KINDS] + ["nondiff"]
    body = []
    for r in table:
        marks = []
        for k in KINDS:
            st = r["rules"][k]["registered"]
            marks.append("yes" if st else ("?" if st is None else "-"))
        body.append([r["name"] or r["primitive"].rsplit(".", 1)[-1], f"{r['path']}:{r['line']}"] + marks + ["yes" if r["nondifferentiable"] else ""])
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    lines.append(fmt.format(*head).rstrip())
    lines.append(fmt.format(*["-" * w for w in widths]).rstrip())
    for b in body:
        lines.append(fmt.format(*b).rstrip())
    lines.append("")
    lines.append("yes = registered, - = none found, ? = registered dynamically (getattr on a class attribute): undecidable statically")
    lines.append("")
    head2 = ["folder", "primitives"] + [SHORT[k] for k in KINDS] + ["nondiff"]
    body2 = []
    keys = sorted(k for k in tot if k != "TOTAL") + ["TOTAL"]
    for key in keys:
        t = tot[key]
        cells = [key, str(t["primitives"])]
        for k in KINDS:
            c = t[k]
            cell = f"{c['count']} ({c['percent']:.1f}%)"
            if c["unknown"]:
                cell += f" +{c['unknown']}?"
            cells.append(cell)
        cells.append(str(t["nondifferentiable"]))
        body2.append(cells)
    widths = [max(len(x[i]) for x in [head2] + body2) for i in range(len(head2))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    lines.append(fmt.format(*head2).rstrip())
    lines.append(fmt.format(*["-" * w for w in widths]).rstrip())
    for b in body2:
        lines.append(fmt.format(*b).rstrip())
    return "\n".join(lines) + "\n"


def report(paths: list, *, cache: bool = True, jobs: Optional[int] = None) -> dict:
    index, root, files, notes = build_index(paths, cache=cache, jobs=jobs)
    table = rows(index, root)
    return {"root": root, "files": len(files), "primitives": table, "totals": totals(table), "notes": notes}


def cmd_primitives(args) -> int:
    paths = list(getattr(args, "paths", None) or ["."])
    missing = [p for p in paths if not Path(p).exists()]
    for p in missing:
        sys.stderr.write(f"eqxlint: warning: {p}: no such file or directory\n")
    data = report(paths, cache=not getattr(args, "no_cache", False), jobs=getattr(args, "jobs", None))
    if getattr(args, "output_format", "text") == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(render_text(data["primitives"], data["totals"], data["root"]))
    return 2 if missing and len(missing) == len(paths) else 0
