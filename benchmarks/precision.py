"""Precision of every rule on real packages, from findings judged by reading the source
(run by hand, never as a test).

    python benchmarks/precision.py --corpus-dir /work/corpus2/src --set unseen
    python benchmarks/precision.py --corpus-dir /work/corpus/src --set benchmark
    python benchmarks/precision.py --corpus-dir DIR --set unseen --download   # fetch the wheels first

Each package is linted as its own project (`eqxlint check . --no-cache --isolated` from the
package folder). Every finding is matched by (path, row, code) to a verdict row in
`benchmarks/precision/<set>/<package>.tsv` (columns: package, version, path, line, code,
verdict, cause, reason; verdict one of `true`, `letter` — true by the letter of the rule, an
expert would not change the code — or `false`). The report gives, per rule, the findings, the
verdicts, precision counting true + letter and counting true only, the findings no verdict covers
(judge them and add rows) and the judged findings that are no longer reported (a `true` one
gone is lost recall: say why in the notes).

The verdict files hold file paths, line numbers and one-line reasons, never the packages' code.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERDICTS = HERE / "precision"

# The unseen set: packages nobody tuned the rules on (issue 13). The benchmark set is corpus.py's.
UNSEEN = [
    ("gpjax", "1.0.0"), ("dynamax", "1.0.3"), ("jraph", "0.0.6.dev0"), ("dm-pix", "0.4.5"),
    ("flashbax", "0.1.3"), ("ott-jax", "0.6.0"), ("jaxns", "3.0.0"), ("kfac-jax", "0.0.8"),
    ("pgx", "2.6.0"), ("neural-tangents", "0.6.5"), ("netket", "3.23.0"), ("scico", "0.0.7"),
    ("jaxley", "0.14.0"), ("jaxsim", "0.9.0"), ("dinosaur", "1.5.1"),
]
# Folders some wheels ship beside the package (documentation, top-level tests and examples): not
# the package's code, removed after unpacking, as when the verdicts were made.
NOT_PACKAGE = {
    "netket": ["docs"], "jaxley": ["docs", "tests"], "pgx": ["tests"],
    "neural-tangents": ["tests", "examples"],
}


def pinned(set_name: str) -> list:
    if set_name == "benchmark":
        sys.path.insert(0, str(HERE))
        from corpus import PINNED  # noqa: E402

        return list(PINNED)
    return list(UNSEEN)


def download(corpus_dir: Path, packages: list) -> None:
    wheels = corpus_dir.parent / "wheels"
    for name, ver in packages:
        dest = corpus_dir / name
        if dest.is_dir() and any(dest.iterdir()):
            continue
        spec = f"{name}=={ver}" if ver else name
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "-d", str(wheels), spec], check=True)
        stem = name.replace("-", "_")
        found = sorted(wheels.glob(f"{stem}-{ver or ''}*.whl"))
        tmp = Path(tempfile.mkdtemp(dir=corpus_dir, prefix=f".{name}-"))
        with zipfile.ZipFile(found[-1]) as z:
            z.extractall(tmp)
        for sub in NOT_PACKAGE.get(name, []):
            shutil.rmtree(tmp / sub, ignore_errors=True)
        tmp.rename(dest)


def read_verdicts(path: Path) -> list:
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r.get("code")]


def lint(pkg_dir: Path) -> list:
    out = subprocess.run(
        [sys.executable, "-m", "eqxlint", "check", ".", "--no-cache", "--isolated", "--exit-zero",
         "--output-format", "json"],
        cwd=pkg_dir, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(HERE.parent)),
    )
    if out.returncode != 0:
        raise SystemExit(f"{pkg_dir}: eqxlint failed\n{out.stderr[-2000:]}")
    found = []
    for d in json.loads(out.stdout):
        rel = os.path.relpath(d["filename"], pkg_dir)
        found.append((rel, d["location"]["row"], d["code"]))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus-dir", type=Path, required=True)
    ap.add_argument("--set", choices=("unseen", "benchmark"), required=True)
    ap.add_argument("--download", action="store_true")
    ap.add_argument("--packages", help="comma-separated subset")
    args = ap.parse_args(argv)
    packages = pinned(args.set)
    if args.packages:
        keep = set(args.packages.split(","))
        packages = [p for p in packages if p[0] in keep]
    if args.download:
        download(args.corpus_dir, packages)

    per_rule = defaultdict(Counter)
    unjudged, gone = [], []
    for name, _ver in packages:
        tsv = VERDICTS / args.set / f"{name}.tsv"
        pkg_dir = args.corpus_dir / name
        if not pkg_dir.is_dir():
            print(f"{name}: not unpacked under {args.corpus_dir} (use --download)")
            continue
        verdicts = {(r["path"], int(r["line"]), r["code"]): r for r in read_verdicts(tsv)} if tsv.exists() else {}
        found = lint(pkg_dir)
        seen = set()
        for key in found:
            per_rule[key[2]]["n"] += 1
            r = verdicts.get(key)
            if r is None:
                per_rule[key[2]]["unjudged"] += 1
                unjudged.append((name,) + key)
            else:
                seen.add(key)
                per_rule[key[2]][r["verdict"]] += 1
        for key, r in verdicts.items():
            if key not in seen:
                gone.append((name,) + key + (r["verdict"], r.get("reason", "")))
        print(f"{name}: {len(found)} findings, {len(verdicts)} verdicts")

    print()
    print("| rule | findings | true | letter | false | unjudged | precision (true+letter) | precision (true) |")
    print("|---|---|---|---|---|---|---|---|")
    tot = Counter()
    for code in sorted(per_rule):
        c = per_rule[code]
        tot.update(c)
        judged = c["true"] + c["letter"] + c["false"]
        p1 = f"{(c['true'] + c['letter']) / judged:.2f}" if judged else "-"
        p2 = f"{c['true'] / judged:.2f}" if judged else "-"
        print(f"| {code} | {c['n']} | {c['true']} | {c['letter']} | {c['false']} | {c['unjudged']} | {p1} | {p2} |")
    judged = tot["true"] + tot["letter"] + tot["false"]
    if judged:
        print(f"| all | {tot['n']} | {tot['true']} | {tot['letter']} | {tot['false']} | {tot['unjudged']} | "
              f"{(tot['true'] + tot['letter']) / judged:.2f} | {tot['true'] / judged:.2f} |")
    if unjudged:
        print("\nfindings without a verdict (judge them):")
        for u in unjudged:
            print("  {} {}:{} {}".format(*u))
    if gone:
        print("\njudged findings no longer reported:")
        for g in gone:
            print("  {} {}:{} {} (was {}) {}".format(*g))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
