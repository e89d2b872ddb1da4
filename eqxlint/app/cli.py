"""The `eqxlint` command line: a thin layer over `eqxlint.app.api`, following Ruff's conventions.

Exit codes: 0 no findings, 1 findings remain, 2 usage or configuration error."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from .. import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"eqxlint: error: {message}\n")
        raise SystemExit(2)


def _codes(values: Optional[list]) -> list:
    out = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="eqxlint", description="A precise linter for JAX/Equinox code.")
    p.add_argument("--version", action="version", version=f"eqxlint {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("check", help="Lint files and folders (default: the current folder).")
    c.add_argument("paths", nargs="*", default=[], help="Files or folders to lint.")
    c.add_argument("--fix", action="store_true", default=None, help="Apply safe fixes.")
    c.add_argument("--no-fix", dest="fix", action="store_false")
    c.add_argument("--unsafe-fixes", action="store_true", help="Also apply (or offer) fixes that may change behaviour.")
    c.add_argument("--diff", action="store_true", help="Print the fixes as a diff instead of writing them.")
    c.add_argument("--show-fixes", action="store_true", help="List the fixes that were applied.")
    c.add_argument("--select", action="append", help="Rule codes or prefixes to enable (e.g. EQX2,EQX401).")
    c.add_argument("--extend-select", action="append", help="Codes or prefixes to enable in addition.")
    c.add_argument("--ignore", action="append", help="Codes or prefixes to disable.")
    c.add_argument("--exclude", action="append", help="Path patterns to exclude (replaces the defaults).")
    c.add_argument("--extend-exclude", action="append", help="Path patterns to exclude in addition.")
    c.add_argument("--force-exclude", action="store_true", help="Apply excludes to paths named on the command line too.")
    c.add_argument("--output-format", choices=("concise", "full", "json", "json-lines", "github", "sarif"), default="concise")
    c.add_argument("--statistics", action="store_true", help="Print counts per rule instead of findings.")
    c.add_argument("--exit-zero", action="store_true", help="Exit 0 even when findings remain.")
    c.add_argument("--exit-non-zero-on-fix", action="store_true", help="Exit 1 if any fix was applied.")
    c.add_argument("--config", type=Path, help="Use this pyproject.toml / eqxlint.toml.")
    c.add_argument("--isolated", action="store_true", help="Ignore all configuration files.")
    c.add_argument("--no-cache", action="store_true", help="Do not read or write the cache.")
    c.add_argument("--jobs", "-j", type=int, default=None, help="Worker processes (default: all cores).")
    c.add_argument("--quiet", "-q", action="store_true", help="Print findings only, no summary.")
    c.add_argument("--add-noqa", action="store_true", help="Add `# noqa: CODE` to every line with findings.")
    c.add_argument("--baseline", type=Path, help="Report only findings not recorded in this baseline file.")
    c.add_argument("--write-baseline", type=Path, help="Record today's findings in a baseline file.")
    c.add_argument("--shard", help="Lint only shard I of N of the files (I/N, 1-based).")
    c.add_argument("--index-file", type=Path, help="Read cross-file facts from this prebuilt project index.")

    r = sub.add_parser("rule", help="Show a rule's documentation.")
    r.add_argument("code", nargs="?", help="A rule code (EQX401) or name (key-reuse).")
    r.add_argument("--all", action="store_true", help="List every rule.")
    r.add_argument("--output-format", choices=("text", "json"), default="text")

    pr = sub.add_parser("primitives", help="Report custom primitives and which rules they have.")
    pr.add_argument("paths", nargs="*", default=["."])
    pr.add_argument("--output-format", choices=("text", "json"), default="text")
    pr.add_argument("--no-cache", action="store_true")

    ix = sub.add_parser("index", help="Build the project index file (for sharded runs).")
    ix.add_argument("paths", nargs="*", default=["."])
    ix.add_argument("--output", "-o", type=Path, required=True)
    ix.add_argument("--no-cache", action="store_true")

    sub.add_parser("server", help="Run the language server over stdio (needs the `lsp` extra).")
    sub.add_parser("version", help="Print the version.")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .config import ConfigError

    try:
        if args.command == "check":
            from ..syntax.parsing import tune_gc

            tune_gc()
            return cmd_check(args)
        if args.command == "rule":
            return cmd_rule(args)
        if args.command == "primitives":
            from .primitives_report import cmd_primitives

            return cmd_primitives(args)
        if args.command == "index":
            from .sharding import cmd_index

            return cmd_index(args)
        if args.command == "server":
            from .lsp import serve

            return serve()
        if args.command == "version":
            print(f"eqxlint {__version__}")
            return 0
        parser.print_help(sys.stderr)
        return 2
    except ConfigError as e:
        sys.stderr.write(f"eqxlint: error: {e}\n")
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130
    except BrokenPipeError:  # `eqxlint ... | head`: stop quietly, like other CLI tools
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _settings(args):
    from . import api, config

    paths = [Path(p) for p in (args.paths or ["."])]
    settings = api.settings_for(paths, args.config, isolated=args.isolated)
    if args.select:
        settings.select = _codes(args.select)
    if args.extend_select:
        settings.extend_select.extend(_codes(args.extend_select))
    if args.ignore:
        settings.ignore.extend(_codes(args.ignore))
    if args.exclude:
        settings.exclude = _codes(args.exclude)
    if args.extend_exclude:
        settings.extend_exclude.extend(_codes(args.extend_exclude))
    for flag, values in (("--select", args.select), ("--extend-select", args.extend_select), ("--ignore", args.ignore)):
        for sel in _codes(values):
            try:
                from ..engine import registry

                registry.expand_selector(sel)
            except KeyError:
                raise config.ConfigError(f"unknown rule selector {sel!r} in `{flag}`") from None
    return paths, settings


def cmd_check(args) -> int:
    from . import api, reporters

    paths, settings = _settings(args)
    if args.shard:
        from .sharding import parse_shard

        parse_shard(args.shard)  # validate early
    if args.shard or args.index_file or args.add_noqa:
        report = _special_check(args, paths, settings)
    else:
        report = api.check_paths(
            paths,
            settings=settings,
            fix=bool(args.fix),
            unsafe_fixes=args.unsafe_fixes,
            diff=args.diff,
            jobs=args.jobs,
            cache=not args.no_cache,
            force_exclude=args.force_exclude,
            write=not args.diff,
        )
    for m in report.missing:
        sys.stderr.write(f"eqxlint: error: {m}: no such file or directory\n")
    for e in report.errors:
        sys.stderr.write(f"eqxlint: internal error: {e}\n")
    for n in report.notes:
        sys.stderr.write(f"eqxlint: warning: {n}\n")
    for rj in report.rejected:
        sys.stderr.write(f"eqxlint: warning: {rj}\n")
    diags = report.diagnostics
    hidden = None
    if args.write_baseline or args.baseline:
        from ..suppress import baseline

        if args.write_baseline:
            n = baseline.write(args.write_baseline, diags)
            if not args.quiet:
                sys.stderr.write(f"eqxlint: wrote {n} finding(s) to baseline {args.write_baseline}\n")
            return 0 if not report.missing else 2
        before = len(diags)
        diags = baseline.filter_new(args.baseline, diags)
        hidden = (before - len(diags), str(args.baseline))
    out = sys.stdout
    if args.diff:
        for path, (old, new) in sorted(report.diffs.items()):
            out.write(
                "".join(
                    difflib.unified_diff(
                        old.splitlines(keepends=True), new.splitlines(keepends=True),
                        fromfile=path, tofile=path,
                    )
                )
            )
        n = len(report.fixed)
        if n:
            sys.stderr.write(f"Would fix {n} finding{'s' if n != 1 else ''}.\n")
        if report.missing:
            return 2
        return 1 if (n and not args.exit_zero) else 0
    if args.statistics:
        out.write(reporters.statistics(diags, "json" if args.output_format == "json" else "text", args.unsafe_fixes))
    elif args.quiet and args.output_format in ("concise", "full"):
        for d in diags:
            out.write(reporters.render([d], args.output_format, unsafe_fixes=args.unsafe_fixes).splitlines()[0] + "\n")
    else:
        out.write(
            reporters.render(
                diags, args.output_format, unsafe_fixes=args.unsafe_fixes,
                show_fixes=args.show_fixes, fixed=report.fixed, files=report.files,
                all_passed=not report.missing and not args.add_noqa, hidden=hidden,
            )
        )
        if hidden and hidden[0] and args.output_format not in ("concise", "full"):
            n = hidden[0]
            sys.stderr.write(f"eqxlint: {n} finding{'s' if n != 1 else ''} hidden by the baseline {hidden[1]}\n")
    if report.missing:
        return 2
    if args.exit_zero:
        return 0
    if args.exit_non_zero_on_fix and report.fixed:
        return 1
    return 1 if diags else 0


def _special_check(args, paths, settings):
    if args.add_noqa:
        from .noqa_writer import add_noqa

        report = add_noqa(paths, settings, jobs=args.jobs, cache=not args.no_cache)
        n = getattr(report, "added", 0)
        sys.stderr.write(f"Added {n} noqa directive{'s' if n != 1 else ''}.\n")
        return report
    from .sharding import sharded_check

    return sharded_check(
        paths, settings, shard=args.shard, index_file=args.index_file, fix=bool(args.fix),
        unsafe_fixes=args.unsafe_fixes, jobs=args.jobs, cache=not args.no_cache,
        force_exclude=args.force_exclude,
    )


def find_rule(query: str, docs: dict):
    """A rule's documentation by code (`EQX401`, any case) or name (`key-reuse`)."""
    doc = docs.get(query.upper())
    if doc is not None:
        return doc
    name = query.strip().lower().replace("_", "-")
    return next((d for d in docs.values() if d.name == name), None)


def cmd_rule(args) -> int:
    from ..engine import catalogue, registry

    docs = catalogue.load_all()
    rules = registry.all_rules()
    if args.all or not args.code:
        rows = []
        for code in registry.all_codes():
            doc = docs.get(code)
            if doc is None:
                continue
            rows.append(
                {
                    "code": code, "name": doc.name, "severity": doc.severity, "fix": doc.fix,
                    "fix_safety": doc.fix_safety, "default": doc.default,
                    "implemented": code in rules or code in registry.ENGINE_CODES,
                    "summary": doc.summary, "url": doc.url,
                }
            )
        if args.output_format == "json":
            print(json.dumps(rows, indent=2))
        else:
            table = [("code", "name", "severity", "fix")]
            for r in rows:
                fix = {"always": "yes", "sometimes": "sometimes", "never": "-"}.get(r["fix"], r["fix"])
                table.append((r["code"], r["name"], r["severity"], fix))
            widths = [max(len(row[i]) for row in table) for i in range(3)]
            for row in table:
                print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
        return 0
    doc = find_rule(args.code, docs)
    if doc is None:
        sys.stderr.write(f"eqxlint: error: unknown rule {args.code!r} (give a code such as EQX401 or a name "
                         f"such as key-reuse; `eqxlint rule --all` lists them)\n")
        return 2
    if args.output_format == "json":
        print(json.dumps({"code": doc.code, "name": doc.name, "severity": doc.severity, "fix": doc.fix,
                          "principle": doc.principle, "url": doc.url, "explanation": doc.body}, indent=2))
    else:
        print(f"# {doc.code} {doc.name} ({doc.severity})\n")
        if doc.principle:
            print(f"{doc.principle}.\n")
        print(doc.body)
        print(f"\nOnline: {doc.url}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
