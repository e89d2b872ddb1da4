"""Check that an engine change keeps findings identical: lint the whole corpus with two copies of
eqxlint (two PYTHONPATH roots, e.g. a copy of the tree before the change and one after, with the
same rules) and compare the JSON output exactly.

    python benchmarks/compare_findings.py --before /tmp/eqxref --after /tmp/eqxnew CORPUS_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def findings(root: str, corpus: str, jobs: int) -> list:
    env = dict(os.environ, PYTHONPATH=root)
    out = subprocess.run(
        [sys.executable, "-m", "eqxlint", "check", "--no-cache", "--isolated", "--exit-zero",
         "--output-format", "json", "-j", str(jobs), corpus],
        capture_output=True, text=True, env=env, cwd=root,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("corpus")
    args = ap.parse_args()
    a = findings(args.before, args.corpus, args.jobs)
    b = findings(args.after, args.corpus, args.jobs)
    print(f"before: {len(a)} findings, after: {len(b)} findings")
    if a == b:
        print("identical (exact JSON equality, positions, messages and fixes included)")
        return 0
    sa = {json.dumps(d, sort_keys=True) for d in a}
    sb = {json.dumps(d, sort_keys=True) for d in b}
    for d in sorted(sa - sb)[:20]:
        print("- " + d)
    for d in sorted(sb - sa)[:20]:
        print("+ " + d)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
