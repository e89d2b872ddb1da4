"""PRNG-key helpers shared by the EQX4xx rules (key reuse, key creation, split by leaf count).

Private to the PRNG rules; nothing here imports jax."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..semantics import names as S

RANDOM_PREFIX = S.RANDOM + "."

# jax.random functions that do not take (or do not consume) a key as their first argument.
NOT_KEY_TAKING = frozenset(
    {
        f"{S.RANDOM}.PRNGKey", f"{S.RANDOM}.key", f"{S.RANDOM}.wrap_key_data",
        f"{S.RANDOM}.key_data", f"{S.RANDOM}.key_impl", f"{S.RANDOM}.clone",
        f"{S.RANDOM}.default_prng_impl", f"{S.RANDOM}.PRNGKeyArray", f"{S.RANDOM}.KeyArray",
        f"{S.RANDOM}.resolve_prng_impl",
    }
)
FOLD_IN = f"{S.RANDOM}.fold_in"
SPLIT = f"{S.RANDOM}.split"

# Calls that look at a key without drawing from it.
NON_CONSUMING = frozenset(S.KEY_NON_CONSUMING) | frozenset(
    {
        "hash", "format", "bool", "jax.lax.stop_gradient", "jax.tree_util.tree_structure",
        "jax.tree_util.tree_leaves", "jax.tree.structure", "jax.tree.leaves", "jax.eval_shape",
        "equinox.filter_eval_shape", "jax.ShapeDtypeStruct", "jax.core.get_aval",
        "jax.numpy.asarray", "jax.numpy.array", "jax.numpy.shape", "jax.numpy.ndim",
        "jax.numpy.array_equal", "jax.numpy.all", "jax.numpy.any", "numpy.asarray",
        "numpy.array", "numpy.shape", "numpy.testing.assert_array_equal",
        "numpy.testing.assert_allclose", "jax.debug.callback", "jax.lax.pvary",
        "jax.random.key_data", "jax.random.key_impl", "jax.random.wrap_key_data",
        "jax.dtypes.prng_key", "jax.numpy.copy", "typing.cast", "getattr", "hasattr", "setattr",
        "vars", "dir", "callable", "jax.tree_util.tree_flatten", "jax.tree.flatten",
        "equinox.filter", "equinox.partition", "equinox.is_array_like", "equinox.is_inexact_array",
        "logging.info", "logging.debug", "logging.warning", "warnings.warn",
    }
)
# Keyword names whose value a call uses as a key.
KEY_KEYWORDS = frozenset({"key", "rng", "rng_key", "prng_key", "seed_key", "key_init", "subkey"})
# Calls whose `key=` is a sort key, not a PRNG key.
SORT_KEY_CALLS = frozenset({"sorted", "min", "max", "itertools.groupby", "heapq.nlargest", "heapq.nsmallest", "functools.cmp_to_key"})
SORT_KEY_METHODS = frozenset({"sort", "get", "pop", "setdefault", "groupby", "nlargest", "nsmallest", "sort_values"})

KEY_PARAM_RE = re.compile(r"^(key|keys|rng|rng_key|prng_key|prngkey|subkey|subkeys|\w+_key|\w+_rng|\w+_keys|key_\w+|k\d*)$")
KEY_ANNOTATION_RE = re.compile(r"(PRNGKey|KeyArray|\bKey\b|PRNGKeyArray)")


def random_qualname(ctx, func) -> Optional[str]:
    qn = ctx.qualname(func)
    if qn is not None and qn.startswith(RANDOM_PREFIX):
        return qn
    return None


def key_taking(qn: Optional[str]) -> bool:
    """A jax.random function whose first argument is a key it consumes (samplers, split, fold_in)."""
    return qn is not None and qn.startswith(RANDOM_PREFIX) and qn not in NOT_KEY_TAKING and qn.count(".") == 2 and qn.rsplit(".", 1)[1][:1].islower()


def key_arg(call: cst.Call) -> Optional[cst.BaseExpression]:
    """The key argument of a jax.random call: first positional, or `key=`."""
    for a in call.args:
        if a.keyword is None and not a.star:
            return a.value
        break
    for a in call.args:
        if a.keyword is not None and a.keyword.value == "key":
            return a.value
    return None


def token(expr) -> Optional[str]:
    """A stable name for a key expression: `key`, `self.key`, `keys[0]`; None otherwise
    (calls, variable indexes, ...)."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = token(expr.value)
        if base is None or "[" in base:
            return None
        return f"{base}.{expr.attr.value}"
    if isinstance(expr, cst.Subscript):
        base = token(expr.value)
        if base is None or len(expr.slice) != 1:
            return None
        el = expr.slice[0].slice
        if not isinstance(el, cst.Index):
            return None
        v = el.value
        if isinstance(v, cst.Integer):
            return f"{base}[{v.value}]"
        if isinstance(v, cst.UnaryOperation) and isinstance(v.operator, cst.Minus) and isinstance(v.expression, cst.Integer):
            return f"{base}[-{v.expression.value}]"
        return None
    return None


def base_name(tok: str) -> str:
    for i, ch in enumerate(tok):
        if ch in ".[":
            return tok[:i]
    return tok


def short(qn: str) -> str:
    return qn.replace("jax.random.", "jr.").replace("equinox.", "eqx.")


def is_leaf_count(ctx, expr, counts: dict) -> Optional[str]:
    """`len(jax.tree_util.tree_leaves(t))`, `tree_structure(t).num_leaves`, or a name bound to
    one of those in `counts`; returns the tree expression's source, else None."""
    if isinstance(expr, cst.Name) and expr.value in counts:
        return counts[expr.value]
    if isinstance(expr, cst.Call) and ctx.qualname(expr.func) == "len" and len(expr.args) == 1:
        inner = expr.args[0].value
        if isinstance(inner, cst.Name) and inner.value in counts.get("__leaves__", {}):
            return counts["__leaves__"][inner.value]
        tree = leaves_of(ctx, inner)
        if tree is not None:
            return tree
    if isinstance(expr, cst.Attribute) and expr.attr.value == "num_leaves":
        v = expr.value
        if isinstance(v, cst.Call) and ctx.qualname(v.func) in TREE_STRUCTURE and v.args:
            return ctx.code(v.args[0].value)
        if isinstance(v, cst.Name) and v.value in counts.get("__treedef__", {}):
            return counts["__treedef__"][v.value]
    return None


TREE_LEAVES = frozenset({"jax.tree_util.tree_leaves", "jax.tree.leaves", "jax.tree_leaves"})
TREE_FLATTEN = frozenset({"jax.tree_util.tree_flatten", "jax.tree.flatten", "jax.tree_flatten"})
TREE_STRUCTURE = frozenset({"jax.tree_util.tree_structure", "jax.tree.structure", "jax.tree_structure"})


def leaves_of(ctx, expr) -> Optional[str]:
    """`tree_leaves(t)` or `tree_flatten(t)[0]` -> source of `t`."""
    if isinstance(expr, cst.Call) and ctx.qualname(expr.func) in TREE_LEAVES and expr.args:
        return ctx.code(expr.args[0].value)
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Call) and literal_index(expr) == 0:
        c = expr.value
        if ctx.qualname(c.func) in TREE_FLATTEN and c.args:
            return ctx.code(c.args[0].value)
    return None


def literal_index(expr: cst.Subscript) -> Optional[int]:
    if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
        return None
    v = expr.slice[0].slice.value
    if isinstance(v, cst.Integer):
        return int(v.value, 0)
    return None


# Calls whose result is a key (or an array of keys).
KEY_MAKERS_ALL = frozenset(S.KEY_MAKERS) | frozenset(S.KEY_DERIVERS)

# User functions that inspect or store a key rather than draw from it: predicates and checks
# (`is_prng_key`), loggers, and containers that carry a key along (`State(...)`, `_replace`).
NON_CONSUMING_NAME_RE = re.compile(
    r"^_*(is|has|assert|check|validate|verify|log|print|debug|warn|format|repr|describe|hash|hashable|fingerprint|shape|dtype|typeof|tree_structure)(_|[A-Z]|$)"
    r"|^_*(replace|_replace|tree_at)$"
    r"|(State|Info|Stats|Carry|Tuple|Result)$"
)
# Methods of containers that store a key rather than draw from it (`d.update(...)`, `xs.append(key)`).
STORE_METHOD_RE = re.compile(r"^(update|append|extend|add|set|put|store|save|cache|record|insert|setdefault)$")


def is_test_path(path: str) -> bool:
    p = path.replace("\\", "/")
    base = p.rsplit("/", 1)[-1]
    return (
        base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py"
        or "/tests/" in p or "/test/" in p or p.startswith(("tests/", "test/"))
    )


def is_script_path(path: str) -> bool:
    """Standalone scripts, examples, benchmarks, notebooks and docs."""
    p = "/" + path.replace("\\", "/")
    return any(
        f"/{d}/" in p
        for d in ("scripts", "script", "examples", "example", "benchmarks", "benchmark", "notebooks", "docs", "tutorials", "demos", "demo", "bench", "sandbox", "playground")
    ) or p.endswith(".ipynb")

# Calls that bind a key to a function for later replay (`seed(model, key)`, `seed(guide, key)`
# share one key on purpose); binding twice is not reuse, a draw before or after is.
KEY_WRAPPERS = frozenset({"numpyro.handlers.seed", "numpyro.primitives.seed"})


_NESTED = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def iter_pruned(root):
    """Pre-order nodes under `root`, not descending into nested functions, lambdas, classes
    (they are analysed as scopes of their own)."""
    from ..syntax.walker import iter_subtree

    return iter_subtree(root, prune=_NESTED)


# Loops whose body function runs once per iteration: qualname -> position of the body argument.
LOOP_BODIES = {"jax.lax.fori_loop": 2, "jax.lax.scan": 0, "jax.lax.while_loop": 1, "jax.lax.map": 0}

# Constructors/updaters that carry a key along in a state object.
CONTAINER_RE = re.compile(r"^_*(replace|_replace)$|(State|Carry)$")

# Parameter names that hold a PRNG key in JAX code (stricter than KEY_PARAM_RE: no `k`, `keys`).
STRICT_KEY_PARAM_RE = re.compile(r"^(key|rng|rng_key|prng_key|prngkey|subkey|\w+_key|\w+_rng)$")
CONTAINER_METHODS = frozenset({"get", "pop", "setdefault", "lookup", "find", "contains", "remove", "delete", "register", "cache"})

# Element-wise selections: their value arguments are alternatives, not sequential uses.
SELECTS = frozenset({"jax.lax.select", "jax.numpy.where", "jax.lax.select_n", "jax.numpy.select", "numpy.where"})
