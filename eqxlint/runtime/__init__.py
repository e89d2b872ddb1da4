"""`eqxlint.runtime`: the correct replacements the eqxlint rules point to.

Install with the `runtime` extra (`pip install eqxlint[runtime]`). This package imports
JAX and Equinox, and never imports LibCST or the linter.
"""

try:
    import equinox as _equinox
    import jax as _jax
except ModuleNotFoundError as _e:  # the `runtime` extra is not installed
    raise ModuleNotFoundError(
        f"eqxlint.runtime needs JAX and Equinox, but importing them failed ({_e}). "
        "Install them with: pip install 'eqxlint[runtime]'",
        name=_e.name,
    ) from _e
del _equinox, _jax

from ._cond import (
    filter_cond as filter_cond,
    filter_switch as filter_switch,
    StaticOutputMismatchError as StaticOutputMismatchError,
)
from ._keys import split_by_tree as split_by_tree
from ._primitive import (
    define_primitive as define_primitive,
    NonDifferentiableError as NonDifferentiableError,
    Primitive as Primitive,
    PrimitiveRuleError as PrimitiveRuleError,
)
from ._static import (
    assert_static_unchanged as assert_static_unchanged,
    StaticChangedError as StaticChangedError,
)
from ._check import (
    check_jvp as check_jvp,
    check_primitive as check_primitive,
    check_vjp as check_vjp,
    check_vmap as check_vmap,
    CheckFailure as CheckFailure,
    CheckReport as CheckReport,
    CheckResult as CheckResult,
)
from ._scan import checkpointed_scan as checkpointed_scan, scan_schedule as scan_schedule
from ._plan import (
    checkpoint_plan as checkpoint_plan,
    checkpointed_grad as checkpointed_grad,
    filter_checkpointed_grad as filter_checkpointed_grad,
    CheckpointedGrad as CheckpointedGrad,
    CheckpointPlan as CheckpointPlan,
    ScanPlan as ScanPlan,
)
