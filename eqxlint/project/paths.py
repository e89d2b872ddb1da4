"""What a path is within a project: a test file, a script. One definition for every rule.

A test file is any file under a `test/` or `tests/` folder, or named `test_*.py`,
`*_test.py`, `*_tests.py` or `conftest.py`. A script is a file outside every package that
is run directly (an `examples/`, `scripts/`, `benchmarks/`, `notebooks/` or `docs/` folder, or a notebook)."""

from __future__ import annotations

SCRIPT_FOLDERS = (
    "examples", "example", "scripts", "script", "benchmarks", "benchmark", "bench", "notebooks", "docs",
    "tutorials", "demos", "demo", "sandbox", "playground",
)


def _parts(path: str) -> list:
    return path.replace("\\", "/").split("/")


def is_test_path(path: str) -> bool:
    parts = _parts(path)
    name = parts[-1]
    if any(p in ("test", "tests") for p in parts[:-1]):
        return True
    return (
        name.startswith("test_") or name.endswith(("_test.py", "_tests.py", "_test.ipynb"))
        or name == "conftest.py"
    )


def is_script_path(path: str) -> bool:
    parts = _parts(path)
    return any(p in SCRIPT_FOLDERS for p in parts[:-1]) or parts[-1].endswith(".ipynb")
