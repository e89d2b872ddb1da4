"""Shared setup for the `eqxlint.runtime` tests.

Every test here runs real JAX code on JAX's default backend. Set `EQXLINT_TEST_DEVICE`
(e.g. `gpu`) to assert that the suite really ran on that backend.
"""

import os
import sys

import pytest


# Make `import eqxlint.runtime` work from a plain checkout (no `pip install -e .`).
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


try:  # every test module also calls pytest.importorskip("jax"): they skip without it
    import jax
except ImportError:  # pragma: no cover
    jax = None


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.jax)


@pytest.fixture(scope="session", autouse=True)
def _backend_check():
    wanted = os.environ.get("EQXLINT_TEST_DEVICE")
    if wanted and jax is not None:
        assert jax.default_backend() == wanted.lower(), (
            f"EQXLINT_TEST_DEVICE={wanted!r} but JAX's default backend is "
            f"{jax.default_backend()!r}"
        )
    yield


@pytest.fixture
def getkey():
    import jax.random as jr

    state = {"key": jr.key(0)}

    def _getkey():
        state["key"], sub = jr.split(state["key"])
        return sub

    return _getkey
