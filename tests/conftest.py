import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_cli(tmp_path):
    """Run `python -m eqxlint ...` in a subprocess; returns CompletedProcess."""
    import subprocess

    def _run(*args, cwd=None, input=None, env=None):
        e = dict(os.environ)
        e.pop("EQXLINT_DEBUG", None)
        if env:
            e.update(env)
        return subprocess.run(
            [sys.executable, "-m", "eqxlint", *map(str, args)],
            cwd=cwd or tmp_path, capture_output=True, text=True, input=input, env=e, timeout=600,
        )

    return _run
