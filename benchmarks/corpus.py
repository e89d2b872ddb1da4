"""Corpus benchmark for eqxlint (run by hand, never as a test).

    python benchmarks/corpus.py                       # download (cached) + all measurements
    python benchmarks/corpus.py --corpus-dir /work/corpus/src --jobs 1,2 --repeat 3
    python benchmarks/corpus.py --only cold,floor     # a subset of the measurements
    python benchmarks/corpus.py --fixit /tmp/fixitvenv/bin/fixit

The corpus is 13 pinned wheels (about 2,000 files, 820k lines), fetched with
`pip download --no-deps NAME==VER` into `--wheel-dir` and unzipped into `--corpus-dir/<name>/`
(an existing unpacked tree there is reused as is).

Measured, alternating between the measurements within each repetition so that machine load
drifts hit every column alike, and reported as the median (min-max) of `--repeat` runs:

- floor: parse every file with `libcst.parse_module`, with the same number of worker processes,
  nothing else (`benchmarks/_parse_floor.py`, a fresh interpreter: start + import included);
- cold: `eqxlint check --no-cache` (all rules);
- warm: `eqxlint check` with a warm cache and nothing changed;
- one: `eqxlint check --no-cache ONE.py` (pre-commit case, interpreter start included), against
  `python -c "import libcst"`; and `one-proj`: one file of a project (a pyproject.toml at the top)
  whose other files are in the cache, so cross-file facts come from the cache / facts store;
- fixit (optional): Fixit's `fixit lint` on the same tree.

Every command runs in a fresh process under `_measure`, which reports its wall time and the
peak RSS of the largest single process of its tree (the main process or a worker).
Then a per-package table (lines vs seconds, cold, `--jobs` max) shows growth with size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

PINNED = [
    ("equinox", "0.13.8"), ("diffrax", "0.7.2"), ("lineax", "0.1.1"), ("optimistix", "0.1.0"),
    ("optax", "0.2.8"), ("flax", "0.12.8"), ("jax2onnx", "0.17.1"), ("braintrace", "0.2.6"),
    ("chex", "0.1.92"), ("jaxtyping", "0.3.11"), ("numpyro", "0.22.0"), ("jax", "0.10.2"),
    ("brainstate", "0.5.4"),
]


# ---------------------------------------------------------------------------- corpus
def ensure_corpus(corpus_dir: Path, wheel_dir: Path) -> None:
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for name, ver in PINNED:
        dest = corpus_dir / name
        if dest.is_dir() and any(dest.iterdir()):
            continue
        wheel_dir.mkdir(parents=True, exist_ok=True)
        wheels = list(wheel_dir.glob(f"{name.replace('-', '_')}-{ver}-*.whl"))
        if not wheels:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "-d", str(wheel_dir), f"{name}=={ver}"],
                check=True,
            )
            wheels = list(wheel_dir.glob(f"{name.replace('-', '_')}-{ver}-*.whl"))
        tmp = Path(tempfile.mkdtemp(dir=corpus_dir, prefix=f".{name}-"))
        with zipfile.ZipFile(wheels[0]) as z:
            z.extractall(tmp)
        tmp.rename(dest)


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if p.is_file())


def count_lines(files) -> int:
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            n += fh.read().count(b"\n")
    return n


# ---------------------------------------------------------------------------- measuring
ENV: dict = {}


def measure(cmd: list, cwd: Path, env=None) -> dict:
    """Run `cmd` in a fresh `_measure` process: wall seconds and peak RSS (MiB) of the largest
    single process in its tree."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_measure", "--", *cmd],
        cwd=cwd, env=env or ENV or None, capture_output=True, text=True,
    )
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    try:
        return json.loads(line)
    except ValueError:
        raise SystemExit(f"measurement failed: {cmd}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def _measure_main(cmd: list) -> None:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    if p.returncode not in (0, 1):
        sys.stderr.write(p.stderr.decode(errors="replace")[-3000:])
        raise SystemExit(p.returncode)
    print(json.dumps({"wall": wall, "rss_mb": rss}))


def eqxlint_cmd(python: str, *args) -> list:
    return [python, "-m", "eqxlint", "check", "--isolated", "--exit-zero", "-q", *args]


def fmt(vals) -> str:
    med = statistics.median(vals)
    return f"{med:7.2f} ({min(vals):.2f}-{max(vals):.2f})"


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "_measure":
        _measure_main(argv[2:] if len(argv) > 1 and argv[1] == "--" else argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus-dir", type=Path, default=HERE / ".corpus" / "src")
    ap.add_argument("--wheel-dir", type=Path, default=HERE / ".corpus" / "wheels")
    ap.add_argument("--jobs", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="floor,cold,warm,one,packages",
                    help="subset of floor,cold,warm,one,fixit,packages")
    ap.add_argument("--fixit", default=None, help="path to a `fixit` executable (Fixit 2.2.1)")
    ap.add_argument("--python", default=sys.executable, help="interpreter that has eqxlint")
    ap.add_argument("--one-file", default="equinox/equinox/_module/_module.py",
                    help="the pre-commit file, relative to --corpus-dir")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    ap.add_argument("--packages", default=None,
                    help="comma-separated subset of the pinned packages (default: all)")
    ap.add_argument("--pythonpath", default=None,
                    help="PYTHONPATH for the eqxlint runs (e.g. a copy of another eqxlint tree)")
    args = ap.parse_args(argv)

    only = set(args.only.split(","))
    if args.fixit:
        only.add("fixit")
    jobs_list = [int(j) for j in args.jobs.split(",")]
    global PINNED
    if args.packages:
        keep = set(args.packages.split(","))
        PINNED = [(n, v) for n, v in PINNED if n in keep]
    ensure_corpus(args.corpus_dir, args.wheel_dir)
    corpus = args.corpus_dir.resolve()
    work = Path(tempfile.mkdtemp(prefix="eqxlint-bench-"))
    # Byte code is cached as for an installed linter (never in the repository), even where
    # PYTHONDONTWRITEBYTECODE is set; one warm-up run fills it.
    ENV.update(os.environ)
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    if args.pythonpath:
        ENV["PYTHONPATH"] = args.pythonpath
    targets = [str(corpus / name) for name, _ in PINNED] if args.packages else [str(corpus)]
    files = [f for t in targets for f in corpus_files(Path(t))]
    lines = count_lines(files)
    py = args.python
    floor_script = str(HERE / "_parse_floor.py")
    print(f"# eqxlint corpus benchmark")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores "
          f"(affinity {len(os.sched_getaffinity(0))}), Python {platform.python_version()}, "
          f"load avg at start {os.getloadavg()[0]:.1f}")
    print(f"corpus: {corpus} ({len(files)} files, {lines:,} lines)")
    print(f"command: {' '.join([os.path.basename(sys.executable), 'benchmarks/corpus.py'] + argv)}\n")

    # The one-file project: one package copied under a pyproject.toml, its cache warmed.
    one = args.corpus_dir.resolve() / args.one_file
    proj = work / "proj"
    pkg_root = args.corpus_dir.resolve() / Path(args.one_file).parts[0]
    shutil.copytree(pkg_root, proj)
    (proj / "pyproject.toml").write_text("[tool.eqxlint]\n")
    one_in_proj = proj / Path(*Path(args.one_file).parts[1:])
    raw: dict = {"files": len(files), "lines": lines, "runs": {}}
    measure(eqxlint_cmd(py, "--no-cache", str(one)), work)  # warm-up: byte code

    def record(name, m):
        raw["runs"].setdefault(name, []).append(m)

    for rep in range(args.repeat):
        for jobs in jobs_list:
            j = ["-j", str(jobs)]
            if "floor" in only:
                record(f"floor j{jobs}", measure([py, floor_script, "-j", str(jobs), *targets], work))
            if "cold" in only:
                record(f"cold j{jobs}", measure(eqxlint_cmd(py, "--no-cache", *j, *targets), work))
            if "warm" in only:
                wdir = work / f"warm{jobs}"
                wdir.mkdir(exist_ok=True)
                if rep == 0:
                    measure(eqxlint_cmd(py, *j, *targets), wdir)  # fill the cache
                record(f"warm j{jobs}", measure(eqxlint_cmd(py, *j, *targets), wdir))
            if "fixit" in only and args.fixit and jobs == jobs_list[-1]:
                record("fixit", measure([args.fixit, "lint", *targets], work))
        if "one" in only:
            record("import libcst", measure([py, "-c", "import libcst"], work))
            record("one", measure(eqxlint_cmd(py, "--no-cache", str(one)), work))
            if rep == 0:
                measure([py, "-m", "eqxlint", "check", "--exit-zero", "-q", "."], proj)
            # Touch the file's content (a comment) so that it is linted, not a cache hit.
            text = one_in_proj.read_text()
            one_in_proj.write_text(text + f"\n# bench {rep}\n")
            record("one-proj", measure([py, "-m", "eqxlint", "check", "--exit-zero", "-q", str(one_in_proj)], proj))

    med = {k: statistics.median(m["wall"] for m in v) for k, v in raw["runs"].items()}
    print("| measurement | wall s, median (min-max) | lines/s | x floor (same jobs) | peak RSS MiB (largest process) |")
    print("|---|---|---|---|---|")
    for k, v in raw["runs"].items():
        walls = [m["wall"] for m in v]
        rss = max(m["rss_mb"] for m in v)
        per_s = f"{lines / statistics.median(walls):,.0f}" if not k.startswith(("one", "import")) else "-"
        ratio = "-"
        if " j" in k and not k.startswith("floor"):
            f = med.get("floor " + k.split(" ")[1])
            if f:
                ratio = f"{med[k] / f:.2f}"
        print(f"| {k} | {fmt(walls)} | {per_s} | {ratio} | {rss:.0f} |")
    print()
    for jobs in jobs_list:
        if f"cold j{jobs}" in med and f"warm j{jobs}" in med:
            print(f"warm / cold (j{jobs}): 1/{med[f'cold j{jobs}'] / med[f'warm j{jobs}']:.0f}")
    if "one" in med and "import libcst" in med:
        print(f"one file / import libcst: {med['one'] / med['import libcst']:.2f}")
        print(f"one file in project / import libcst: {med['one-proj'] / med['import libcst']:.2f}")
    if "fixit" in med and f"cold j{jobs_list[-1]}" in med:
        print(f"fixit / eqxlint cold (j{jobs_list[-1]}): {med['fixit'] / med[f'cold j{jobs_list[-1]}']:.2f}")

    if "packages" in only:
        jobs = jobs_list[-1]
        print(f"\nPer package (cold and floor, -j {jobs}, one run each; includes ~interpreter start):\n")
        print("| package | files | lines | floor s | cold s | cold lines/s | cold/floor |")
        print("|---|---|---|---|---|---|---|")
        rows = []
        for name, _ in PINNED:
            d = corpus / name
            fs = corpus_files(d)
            n = count_lines(fs)
            fl = measure([py, floor_script, "-j", str(jobs), str(d)], work)["wall"]
            co = measure(eqxlint_cmd(py, "--no-cache", "-j", str(jobs), str(d)), work)["wall"]
            rows.append((n, name, len(fs), fl, co))
        for n, name, nf, fl, co in sorted(rows):
            print(f"| {name} | {nf} | {n:,} | {fl:.2f} | {co:.2f} | {n / co:,.0f} | {co / fl:.2f} |")
        raw["packages"] = rows
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
