"""The package's layers import one way only, and no module imports itself back through others.

Layers, lowest first (each may import only the layers before it, never after):
core -> syntax -> semantics -> project -> checks -> suppress -> engine -> app.
`eqxlint.runtime` imports nothing of the linter (and the linter never imports the runtime).
Every import counts, also one made lazily inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "eqxlint"
LAYERS = ["core", "syntax", "semantics", "project", "checks", "suppress", "engine", "app"]


def _modules() -> dict:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _imports(name: str) -> set:
    """Absolute names of the eqxlint modules `name` imports (anywhere in the file)."""
    path, is_pkg = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("eqxlint"):
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("eqxlint"):
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if sub in MODULES else mod)
    return {m for m in found if m in MODULES}


def _layer(name: str):
    parts = name.split(".")
    if len(parts) < 2:
        return None  # the package root: loads the app lazily by design
    return parts[1]


def test_every_module_is_in_a_layer():
    stray = [m for m in MODULES if _layer(m) is not None and _layer(m) not in LAYERS + ["runtime", "__main__", "rules"]]
    assert stray == [], f"modules outside every layer: {stray}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if _layer(m) in LAYERS))
def test_imports_go_down_the_layers(name):
    own = LAYERS.index(_layer(name))
    bad = []
    for target in _imports(name):
        layer = _layer(target)
        if layer == "runtime":
            bad.append(f"{target} (the linter never imports the runtime)")
        elif layer is None:
            bad.append(f"{target} (the package root)") if target != "eqxlint" else None
        elif layer in LAYERS and LAYERS.index(layer) > own:
            bad.append(f"{target} (layer `{layer}` is above `{_layer(name)}`)")
    assert bad == [], f"{name} imports upwards: {bad}"


def test_runtime_imports_nothing_of_the_linter():
    for name in MODULES:
        if _layer(name) != "runtime":
            continue
        bad = [t for t in _imports(name) if _layer(t) != "runtime"]
        assert bad == [], f"{name} imports the linter: {bad}"


def test_no_import_cycles():
    graph = {m: _imports(m) - {m} for m in MODULES}
    # A package's __init__ re-exporting its own submodules is not a cycle of meaning.
    for m, (path, is_pkg) in MODULES.items():
        if is_pkg:
            graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    cycles = []
    state: dict = {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_check_detects_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a module of `core` importing `app` is reported."""
    fake = tmp_path / "eqxlint" / "core"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from ..app import api\n")
    MODULES["eqxlint.core.bad"] = (fake / "bad.py", False)
    try:
        with pytest.raises(AssertionError, match="imports upwards"):
            test_imports_go_down_the_layers("eqxlint.core.bad")
    finally:
        del MODULES["eqxlint.core.bad"]
