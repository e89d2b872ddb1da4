"""Mutation check (issue 16): does the test suite catch deliberate bugs? Run by hand.

    python benchmarks/mutations.py                 # every mutation, each with its test selection
    python benchmarks/mutations.py --full          # each mutation against the whole suite (slow)
    python benchmarks/mutations.py --only lock-is-a-no-op,cache-key-drops-rule-options
    python benchmarks/mutations.py --list          # the mutations and their anchors, nothing run
    python benchmarks/mutations.py --rev HEAD      # mutate a commit instead of the working tree

The repository (the working tree as it is: tracked and untracked, not ignored, files; or with
`--rev` a commit) is copied to a temporary folder, and the copy's tests run against the copy's
package (`PYTHONPATH`, plus an import hook for `eqxlint.rules`, which an editable install would
otherwise map back to this checkout). First the union of the test selections runs on the
unmutated copy: it must pass, or no result would mean anything. Then each mutation is applied
alone — every edit is a regular expression that must match exactly once in its file (a
mutation whose anchor matches 0 or several times is reported STALE, never silently skipped) —
its tests run (`pytest -x`), and the file is restored.

A mutation is CAUGHT when its tests fail, MISSED when they pass. Exit status: 0 when every
mutation was caught, 1 otherwise (missed, stale, timed out or errored), 2 when the unmutated
copy fails its tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Mutation:
    name: str
    bug: str
    # (file, regular expression, replacement; `\g<0>` is the match). The expression must match
    # exactly once in the file — or, where code is moving between modules, once in all of a tuple
    # of candidate files together.
    edits: list
    tests: list  # pytest arguments: the tests expected to catch it


FIX_SAFETY = ["tests/test_fix_safety.py"]

MUTATIONS = [
    # --- the 13 bugs issue 16 found the suite missing ------------------------------------------
    Mutation(
        "runtime-imports-linter",
        "the runtime imports a linter module (dynamically, which no static import scan sees)",
        [("eqxlint/runtime/_keys.py", r"^import jax\.tree_util as jtu\n",
          "\\g<0>import importlib as _il\n_il.import_module(\"eqxlint.core.diagnostics\")\n")],
        ["tests/test_boundaries.py::test_runtime_loads_nothing_of_the_linter_nor_libcst"],
    ),
    Mutation(
        "rule-imports-jax-lazily",
        "a lazy `import jax` on one rule's path (EQX112's call handler)",
        [("eqxlint/checks/eqx112_prefer_shard_over_pmap.py",
          r"^    def visit_Call\(self, node: cst\.Call\) -> None:\n",
          "\\g<0>        import jax  # noqa: F401\n")],
        ["tests/test_boundaries.py::test_linter_never_loads_jax_or_the_runtime"],
    ),
    Mutation(
        "eqx401-column-off-by-one",
        "EQX401 findings one column to the right",
        [(("eqxlint/engine/materialise.py", "eqxlint/engine/run.py"), r"filename=ctx\.path, row=row, column=col \+ 1,",
          "filename=ctx.path, row=row, column=col + 1 + (code == \"EQX401\"),")],
        ["tests/test_catalogue.py", "-k", "EQX401"],
    ),
    Mutation(
        "rule-reports-twice",
        "a rule (EQX203) reports each finding twice on its line",
        [("eqxlint/core/rule.py",
          r"^        self\.ctx\.report\(self\.code, node, message, fix=fix, requires=requires\)\n",
          "\\g<0>        if self.code == \"EQX203\":\n"
          "            self.ctx.report(self.code, node, message, fix=None, requires=requires)\n")],
        ["tests/test_catalogue.py", "-k", "EQX203"],
    ),
    Mutation(
        "api-skips-file-changed-check",
        "the API no longer passes the bytes it read to the write (\"file changed on disk\" check)",
        [("eqxlint/app/api.py", r"out\.text, encoding, expected=data\)", "out.text, encoding, expected=None)")],
        FIX_SAFETY,
    ),
    Mutation(
        "reparses-libcst-always-accepts",
        "the LibCST fallback of `fixes.reparses` accepts anything",
        [("eqxlint/app/fixes.py", r"^    import libcst\n", "    return True\n\\g<0>")],
        FIX_SAFETY,
    ),
    Mutation(
        "notebook-reparse-check-removed",
        "notebook fixes are written without checking that the code still parses",
        [("eqxlint/app/notebook.py", r"^        if not fixes\.reparses\(new_source\):\n", "        if False:\n")],
        FIX_SAFETY + ["tests/test_notebooks.py"],
    ),
    Mutation(
        "lsp-ignores-utf16",
        "the language server sends character columns, not UTF-16 code units",
        [("eqxlint/app/lsp.py", r"return col \+ sum\(1 for ch in prefix if ord\(ch\) > 0xFFFF\)", "return col")],
        ["tests/test_lsp_contract.py"],
    ),
    Mutation(
        "lsp-ignores-project-config",
        "the language server lints with default settings, not the project's [tool.eqxlint]",
        [("eqxlint/app/lsp.py", r"settings = api\.settings_for\(\[path\]\)",
          "settings = config.Settings(root=path.parent)")],
        ["tests/test_lsp_contract.py"],
    ),
    Mutation(
        "baseline-ignores-enclosing-function",
        "baseline matching ignores the enclosing function (the file is still written with it)",
        [("eqxlint/suppress/baseline.py", r"^        fp = fingerprint\(d, folder\)\n",
          "\\g<0>        fp = next((k for k in known if (k[0], k[1], k[3]) == (fp[0], fp[1], fp[3])"
          " and known[k] > 0), fp)\n")],
        ["tests/test_baseline_context.py", "tests/test_baseline.py"],
    ),
    Mutation(
        "cache-key-drops-rule-options",
        "the cache key leaves out per-rule options (stale EQX205 after changing min-length)",
        [("eqxlint/app/config.py", r"^            \"options\": self\.rule_options,\n", "")],
        ["tests/test_cache.py"],
    ),
    Mutation(
        "rule-crashes-on-global",
        "a rule (EQX113) crashes on every `global` statement",
        [("eqxlint/core/rule.py", r"^    def end_file\(self\) -> None:",
          "    def visit_Global(self, node) -> None:\n"
          "        if self.code == \"EQX113\":\n"
          "            raise AttributeError(\"mutation: crash on global\")\n\n\\g<0>")],
        ["tests/test_fuzz.py"],
    ),
    Mutation(
        "rule-crashes-on-star-args",
        "a rule (EQX209) crashes on `print(*a)`",
        [("eqxlint/checks/eqx209_print_under_jit.py",
          r"if any\(a\.keyword is not None or a\.star for a in args\):",
          "if any(a.keyword is not None or (a.star and a.keyword.value) for a in args):")],
        ["tests/test_fuzz.py"],
    ),
    # --- the fix-application bugs of issue 16 (concurrent runs, symlinks) ------------------------
    Mutation(
        "fix-ignores-content-hash",
        "fixes are applied to bytes other than those they were computed from (no re-lint on a hash mismatch)",
        [("eqxlint/app/api.py",
          r"linted_these_bytes = digest is not None and digest == fixes\.content_hash\(data\)",
          "linted_these_bytes = True")],
        FIX_SAFETY,
    ),
    Mutation(
        "fix-skips-fresh-verification",
        "the fixed text is written without comparing it to a fresh lint-and-fix of the bytes",
        [("eqxlint/app/api.py", r"^    if write and linted_these_bytes:\n", "    if False:\n")],
        FIX_SAFETY,
    ),
    Mutation(
        "fix-reapplies-old-edits",
        "the bug as it was: no hash check, no verification, no symlink grouping (edits land on re-read text)",
        [("eqxlint/app/api.py",
          r"linted_these_bytes = digest is not None and digest == fixes\.content_hash\(data\)",
          "linted_these_bytes = True"),
         ("eqxlint/app/api.py", r"^    if write and linted_these_bytes:\n", "    if False:\n"),
         ("eqxlint/app/api.py", r"by_real\.setdefault\(os\.path\.realpath\(n\), \[\]\)", "by_real.setdefault(n, [])")],
        ["tests/test_fix_safety.py", "-k", "symlink or concurrent"],
    ),
    Mutation(
        "fix-follows-no-symlinks",
        "a file reached under several names (symlinks) is fixed once per name",
        [("eqxlint/app/api.py", r"by_real\.setdefault\(os\.path\.realpath\(n\), \[\]\)",
          "by_real.setdefault(n, [])")],
        FIX_SAFETY,
    ),
    Mutation(
        "fix-takes-no-lock",
        "`--fix` reads and writes files without taking their lock",
        [("eqxlint/app/api.py",
          r"with fixes\.FileLock\(p\) if write else contextlib\.nullcontext\(\) as locked:",
          "with contextlib.nullcontext() as locked:")],
        FIX_SAFETY,
    ),
    Mutation(
        "notebook-fix-takes-no-lock",
        "`--fix` rewrites a notebook without taking its lock",
        [("eqxlint/app/api.py", r"with fixes\.FileLock\(p\) if write else contextlib\.nullcontext\(\):",
          "with contextlib.nullcontext():")],
        FIX_SAFETY,
    ),
    Mutation(
        "notebook-write-skips-expected-bytes",
        "a notebook changed on disk while it was being fixed is overwritten",
        [("eqxlint/app/notebook.py", r"new_text, \"utf-8\", expected=text\.encode\(\"utf-8\"\)\)",
          "new_text, \"utf-8\")")],
        FIX_SAFETY,
    ),
    Mutation(
        "lock-is-a-no-op",
        "the file lock locks nothing",
        [("eqxlint/app/fixes.py", r"^                        fcntl\.flock\(f\.fileno\(\), flags\)\n",
          "                        pass\n")],
        FIX_SAFETY,
    ),
    Mutation(
        "lock-keeps-a-replaced-file",
        "the lock is kept on a file that was replaced (renamed over) while waiting for it",
        [("eqxlint/app/fixes.py", r"if \(mine\.st_dev, mine\.st_ino\) == \(now\.st_dev, now\.st_ino\):",
          "if True:")],
        FIX_SAFETY,
    ),
    Mutation(
        "write-skips-expected-bytes",
        "`write_atomic` overwrites a file whose bytes changed since they were read",
        [("eqxlint/app/fixes.py", r"if f\.read\(\) != expected:", "if False:")],
        FIX_SAFETY,
    ),
]


# ---------------------------------------------------------------------------- the copy
def copy_repository(dest: Path, rev: str | None) -> None:
    dest.mkdir(parents=True)
    if rev is not None:
        archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode("utf-8", "surrogateescape")
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if not os.path.lexists(src) or src.is_dir() and not src.is_symlink():
            continue  # deleted in the working tree, or a submodule
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)


SITECUSTOMIZE = '''
import importlib.util, os, sys

_ROOT = {root!r}


class _CatalogueOfTheCopy:
    """`eqxlint.rules` lives in the repository's `rules/` folder; an editable install of the
    real checkout would map it there. Map it to the copy's instead."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "eqxlint.rules":
            folder = os.path.join(_ROOT, "rules")
            return importlib.util.spec_from_file_location(
                name, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
        return None


sys.meta_path.insert(0, _CatalogueOfTheCopy)
'''


def environment(copy: Path, site: Path) -> dict:
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(root=str(copy)))
    env = dict(os.environ)
    env.pop("EQXLINT_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(copy)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a restored file must never meet a stale .pyc
    return env


def check_isolation(copy: Path, env: dict) -> None:
    code = "import eqxlint, eqxlint.rules, eqxlint.app.api; print(eqxlint.__file__); print(eqxlint.rules.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True)
    files = out.stdout.split()
    if out.returncode != 0 or len(files) != 2 or not all(Path(f).resolve().is_relative_to(copy.resolve()) for f in files):
        sys.exit(f"the copy does not import its own package: {out.stdout}{out.stderr}")


# ---------------------------------------------------------------------------- running
def run_tests(copy: Path, env: dict, args: list, timeout: float) -> tuple:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider", *args]
    start = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", time.monotonic() - start
    failed = [line[len("FAILED "):].split(" - ")[0] for line in r.stdout.splitlines() if line.startswith("FAILED ")]
    detail = failed[0] if failed else (r.stdout.strip().splitlines() or [""])[-1]
    return r.returncode, detail, time.monotonic() - start


def apply(copy: Path, mutation: Mutation) -> tuple:
    """Apply the mutation's edits; returns (originals to restore, problem or None)."""
    originals: dict = {}
    for files, pattern, replacement in mutation.edits:
        candidates = [files] if isinstance(files, str) else list(files)
        found = []
        for file in candidates:
            path = copy / file
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                found += [(path, text, m) for m in re.finditer(pattern, text, re.M)]
        if len(found) != 1:
            return originals, f"{' or '.join(candidates)}: anchor {pattern!r} matches {len(found)} times"
        path, text, m = found[0]
        originals.setdefault(path, text)
        path.write_text(text[: m.start()] + m.expand(replacement) + text[m.end():], encoding="utf-8")
    return originals, None


def restore(originals: dict) -> None:
    for path, text in originals.items():
        path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="run the whole suite for every mutation")
    ap.add_argument("--only", help="comma-separated mutation names")
    ap.add_argument("--list", action="store_true", help="list the mutations and check their anchors")
    ap.add_argument("--rev", help="mutate this commit (git archive) instead of the working tree")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per test run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    chosen = MUTATIONS
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {m.name for m in MUTATIONS}
        if unknown:
            ap.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
        chosen = [m for m in MUTATIONS if m.name in names]

    tmp = Path(tempfile.mkdtemp(prefix="eqxlint-mutations-"))
    copy = tmp / "repo"
    try:
        copy_repository(copy, args.rev)
        env = environment(copy, tmp / "site")
        if args.list:
            for i, m in enumerate(chosen, 1):
                originals, problem = apply(copy, m)
                restore(originals)
                where = ", ".join(sorted({f if isinstance(f, str) else " or ".join(f) for f, _, _ in m.edits}))
                print(f"{i:2d} {m.name:38s} {'STALE: ' + problem if problem else 'ok':8s} {where}  [{' '.join(m.tests)}]")
            return 0
        check_isolation(copy, env)

        if args.full:
            selections = [["tests"]]
        else:
            selections = []
            for m in chosen:
                if m.tests not in selections:
                    selections.append(m.tests)
        print(f"copy: {copy} ({'rev ' + args.rev if args.rev else 'working tree'})", flush=True)
        for sel in selections:
            rc, detail, secs = run_tests(copy, env, sel, args.timeout)
            print(f"baseline {' '.join(sel)}: rc={rc} ({secs:.0f} s) {detail}", flush=True)
            if rc != 0:
                print("the unmutated copy fails these tests: fix that first", file=sys.stderr)
                return 2

        rows = []
        for i, m in enumerate(chosen, 1):
            originals, problem = apply(copy, m)
            try:
                if problem is not None:
                    result, detail, secs = "STALE", problem, 0.0
                else:
                    rc, detail, secs = run_tests(copy, env, ["tests"] if args.full else m.tests, args.timeout)
                    result = {None: "TIMEOUT", 0: "MISSED", 5: "NO TESTS"}.get(rc, "CAUGHT" if rc in (1, 2) else f"ERROR rc={rc}")
            finally:
                restore(originals)
            rows.append({"n": i, "name": m.name, "bug": m.bug, "result": result, "by": detail,
                         "seconds": round(secs, 1), "tests": " ".join(["tests"] if args.full else m.tests)})
            print(f"{i:2d} {m.name:38s} {result:8s} {secs:6.1f} s  {detail}", flush=True)

        caught = sum(r["result"] == "CAUGHT" for r in rows)
        print()
        print("| # | mutation | bug | result | first failing test | s |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['n']} | `{r['name']}` | {r['bug']} | {r['result']} | `{r['by']}` | {r['seconds']:.0f} |")
        print(f"\n{caught} of {len(rows)} mutations caught"
              f" ({'whole suite' if args.full else 'per-mutation test selections'}).")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
        return 0 if caught == len(rows) else 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
