"""The LibCST parse floor: read and `libcst.parse_module` every .py file under the given paths
with N worker processes (the same pool shape as `eqxlint check`), nothing else.

    python benchmarks/_parse_floor.py -j 2 PATH...
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import sys

import libcst as cst

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from eqxlint.app.schedule import balanced_chunks  # noqa: E402  (this repository's, no other imports)


def _parse_chunk(paths: list) -> int:
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        try:
            cst.parse_module(data.decode("utf-8"))
            n += 1
        except Exception:
            pass
    return n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    files = []
    for root in args.paths:
        if os.path.isfile(root):
            files.append(root)
            continue
        for d, _, names in os.walk(root):
            files.extend(os.path.join(d, n) for n in names if n.endswith(".py"))
    files.sort()
    if args.jobs <= 1:
        n = _parse_chunk(files)
    else:
        # The same split as `eqxlint check` (largest files first, shrinking chunks).
        chunks = balanced_chunks(files, args.jobs, size=os.path.getsize)
        with cf.ProcessPoolExecutor(max_workers=args.jobs) as ex:
            n = sum(ex.map(_parse_chunk, chunks))
    sys.stdout.write(f"{n} parsed\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
