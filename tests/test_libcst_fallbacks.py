"""Every use of LibCST's private internals has a fallback to its public API, and the fallback
gives the same findings:

- `eqxlint.syntax.parsing.parse_module` swaps `CSTNode.__post_init__` (from `libcst._nodes.base`)
  for a no-op while parsing; without it (`_VALIDATING is None`) it is `libcst.parse_module`.
- `eqxlint.syntax.positions.LocalPositions` computes positions one statement at a time with
  `CodegenState` (`libcst._nodes.internal`), the position-providing codegen states, `_codegen`
  and `provider._computed`; when any of them is missing it resolves `PositionProvider` through
  `MetadataWrapper`.

Each test takes the private thing away and compares every fixture repository's findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from eqxlint.app.api import check_paths

ROOT = Path(__file__).resolve().parent.parent
REPOS = sorted(p.name for p in (ROOT / "fixtures").iterdir() if (p / "pyproject.toml").exists())


def _findings(name, monkeypatch) -> list:
    monkeypatch.chdir(ROOT / "fixtures" / name)
    return [d.to_dict() for d in check_paths(["."], cache=False, jobs=1).diagnostics]


@pytest.fixture(scope="module")
def reference():
    mp = pytest.MonkeyPatch()
    try:
        return {name: _findings(name, mp) for name in REPOS}
    finally:
        mp.undo()


def test_fixtures_have_findings(reference):
    assert sum(map(len, reference.values())) > 10


@pytest.mark.parametrize("name", REPOS)
def test_parse_without_the_post_init_swap(name, reference, monkeypatch):
    from eqxlint.syntax import parsing

    monkeypatch.setattr(parsing, "_VALIDATING", None)
    calls = []
    real = parsing.cst.parse_module
    monkeypatch.setattr(parsing.cst, "parse_module", lambda src: calls.append(1) or real(src))
    assert _findings(name, monkeypatch) == reference[name]
    assert calls  # the public parser ran


@pytest.mark.parametrize("name", REPOS)
def test_positions_without_codegen_internals(name, reference, monkeypatch):
    import libcst._nodes.internal as internal

    from eqxlint.syntax import positions

    # The private names the fast path imports are gone: `CodegenState` from the module, and the
    # position-providing states as `_state` imports them (LibCST's own PositionProvider keeps
    # its module-level reference, so they are taken away from eqxlint's import only).
    monkeypatch.delattr(internal, "CodegenState")

    def no_state(self):
        from libcst.metadata.position_provider import _NoSuchState  # noqa: F401  (ImportError)

    monkeypatch.setattr(positions.LocalPositions, "_state", no_state)
    used = []
    real = positions.LocalPositions._public

    def public(self, node):
        used.append(1)
        return real(self, node)

    monkeypatch.setattr(positions.LocalPositions, "_public", public)
    got = _findings(name, monkeypatch)
    monkeypatch.undo()
    assert got == reference[name]
    assert used or not reference[name]  # positions came from the public MetadataWrapper
