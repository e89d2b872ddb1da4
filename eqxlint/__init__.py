"""eqxlint: a static linter for JAX/Equinox code, plus a runtime companion (`eqxlint.runtime`).

The linter never imports jax; the runtime companion never imports the linter or LibCST. This
module therefore loads the linter lazily: `import eqxlint.runtime` stays free of LibCST.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["Diagnostic", "Fix", "Edit", "check_paths", "check_source", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .app.api import check_paths, check_source
    from .core.diagnostics import Diagnostic, Edit, Fix


def __getattr__(name: str):
    if name in ("check_paths", "check_source"):
        from .app import api

        return getattr(api, name)
    if name in ("Diagnostic", "Fix", "Edit"):
        from .core import diagnostics

        return getattr(diagnostics, name)
    raise AttributeError(f"module 'eqxlint' has no attribute {name!r}")
