"""One file inside a project == that file in the whole-project run, over real packages.

Each package of the corpus (default /work/corpus/src, or EQXLINT_CORPUS) is copied to a temporary
folder with a `pyproject.toml` (every rule on) so that it is its own project; the whole project is
linted once (`check_paths(["."])`, cache on), then a sample of its files (default 15 a package,
chosen with a fixed seed) is linted one file at a time as pre-commit and the language server do
(`check_paths([file])` from the project root, taking the other files' facts from the cache) and
the findings compared exactly (code, position, message, fix, chain).

    python benchmarks/one_file.py [--per-package 15] [--seed 0] [-j 2] [CORPUS_DIR]

Prints one line a package and the total; exits 1 on any difference (listing it)."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eqxlint.app.api import check_paths  # noqa: E402

CONFIG = '[tool.eqxlint]\nextend-select = ["EQX"]\n'


def _rows(diags) -> list:
    out = []
    for d in diags:
        data = d.to_dict()
        data["filename"] = os.path.normpath(data["filename"])
        out.append(data)
    return out


def compare_package(src: Path, dest: Path, per_package: int, seed: int, jobs: int) -> tuple:
    """(files sampled, findings in them, differences) for one package."""
    dest.mkdir(parents=True)
    for child in src.iterdir():
        if child.name.endswith((".dist-info", ".egg-info")) or child.name == "__pycache__":
            continue
        if child.is_dir():
            shutil.copytree(child, dest / child.name, ignore=shutil.ignore_patterns("__pycache__"))
        elif child.suffix == ".py":
            shutil.copy2(child, dest / child.name)
    (dest / "pyproject.toml").write_text(CONFIG)
    old = os.getcwd()
    os.chdir(dest)
    try:
        files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.py"))
        sample = sorted(random.Random(seed).sample(files, min(per_package, len(files))))
        whole = defaultdict(list)
        for d in _rows(check_paths(["."], jobs=jobs).diagnostics):
            whole[d["filename"]].append(d)
        diffs = []
        found = 0
        for f in sample:
            one = _rows(check_paths([f], jobs=jobs).diagnostics)
            found += len(one)
            if one != whole.get(f, []):
                got = {(d["row"], d["column"], d["code"], d["message"]) for d in one}
                want = {(d["row"], d["column"], d["code"], d["message"]) for d in whole.get(f, [])}
                diffs.append((f, sorted(got - want), sorted(want - got)))
        return len(sample), found, diffs
    finally:
        os.chdir(old)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=os.environ.get("EQXLINT_CORPUS", "/work/corpus/src"))
    ap.add_argument("--per-package", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--packages", nargs="*", help="only these packages")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"no corpus at {corpus}", file=sys.stderr)
        return 2
    packages = sorted(p for p in corpus.iterdir() if p.is_dir() and (not args.packages or p.name in args.packages))
    total_files = total_found = 0
    bad = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eqxlint-one-file-") as tmp:
        for pkg in packages:
            t = time.perf_counter()
            n, found, diffs = compare_package(pkg, Path(tmp) / pkg.name, args.per_package, args.seed, args.jobs)
            total_files += n
            total_found += found
            bad.extend((pkg.name, *d) for d in diffs)
            print(f"{pkg.name:12} {n:3} files  {found:4} findings  {len(diffs)} differ  ({time.perf_counter() - t:.1f} s)",
                  flush=True)
    print(f"total: {total_files} files from {len(packages)} packages, {total_found} findings, "
          f"{len(bad)} files differ ({time.perf_counter() - start:.0f} s)")
    for pkg, f, extra, missing in bad:
        print(f"  {pkg}/{f}: one-file only {extra}; whole-project only {missing}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
