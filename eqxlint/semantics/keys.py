"""PRNG keys in the value analysis: which parameters and names of a function hold JAX PRNG keys,
and whether a call that is not the project's draws from a key it is given.

`eqxlint.semantics.values` builds `Val.kind == KEY`, `FileValues.key_args` and the summaries'
`consumes` from these facts; rules ask those, not this module.

A value is a key when it comes from `jr.PRNGKey`/`jr.key`/`jr.split`/`jr.fold_in` (through
names, tuples, literal indexes), from a parameter or field annotated as a key, or from a name the
function itself uses as a key. A parameter *named* like a key (`key`, `rng`, `rng_key`,
`dropout_key`, `key_env`, ...) and not annotated holds a key only on evidence in its function:
the function draws random numbers, passes the name as `key=`/`rng=`/..., or hands it to a
function of this file whose parameter in that place is key-named, or to a function imported from
another module of the project (whose summary then decides). It is not a key where it is used as a
dictionary key (`table[key]`, `key in d`), in a container method (`get`, `__getitem__`, ...), or
beside `query`/`value` parameters (attention), unless `jax.random` draws from it.
"""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from . import names as S

RANDOM = S.RANDOM + "."
KEY_PARAM = re.compile(r"^(key|keys|rng|rng_key|prng_key|prngkey|subkey|subkeys|\w+_key|\w+_rng|\w+_keys|key_\w+)$")
KEY_NOT_TAKING = frozenset(
    {
        f"{S.RANDOM}.PRNGKey", f"{S.RANDOM}.key", f"{S.RANDOM}.wrap_key_data", f"{S.RANDOM}.key_data",
        f"{S.RANDOM}.key_impl", f"{S.RANDOM}.clone", f"{S.RANDOM}.default_prng_impl",
        f"{S.RANDOM}.PRNGKeyArray", f"{S.RANDOM}.KeyArray", f"{S.RANDOM}.resolve_prng_impl",
    }
)
# Keyword names whose value a call takes as a PRNG key.
KEY_KEYWORDS = frozenset({"key", "rng", "rng_key", "prng_key", "seed_key", "key_init", "subkey"})
# Calls and methods whose `key=` is a sort or lookup key.
SORT_KEY_CALLS = frozenset({"sorted", "min", "max", "itertools.groupby", "heapq.nlargest", "heapq.nsmallest", "functools.cmp_to_key"})
SORT_KEY_METHODS = frozenset({"sort", "get", "pop", "setdefault", "groupby", "nlargest", "nsmallest", "sort_values"})
SORT_KEY_NAMES = frozenset({"dict", "DictKey", "GetAttrKey", "SequenceKey", "FlattenedIndexKey", "field"})
# Parameters beside which `key` is the key tensor of attention, not a PRNG key.
ATTENTION_PARAMS = frozenset({"query", "queries", "value", "values", "q", "v"})
ATTENTION_KEYWORDS = frozenset({"value", "values", "query", "queries", "inputs_kv"})
# Methods whose parameter `key` is a lookup key.
CONTAINER_METHODS = frozenset({"get", "pop", "setdefault", "lookup", "find", "contains", "remove", "delete", "register", "cache"})

# Library calls that look at a key, store it or bind it, without drawing from it.
LOOKING = frozenset(S.KEY_NON_CONSUMING) | frozenset(
    {
        "hash", "format", "bool", "getattr", "hasattr", "setattr", "vars", "dir", "callable",
        "jax.eval_shape", "equinox.filter_eval_shape", "jax.ShapeDtypeStruct", "jax.core.get_aval",
        "jax.random.key_data", "jax.random.key_impl", "jax.random.wrap_key_data",
        "equinox.filter", "equinox.partition", "equinox.combine", "equinox.is_array_like",
        "equinox.is_inexact_array", "equinox.tree_at", "equinox.error_if", "functools.partial",
        "partial", "warnings.warn", "copy.copy", "copy.deepcopy",
    }
)
LOOKING_PREFIXES = (
    "jax.numpy.", "numpy.", "jax.lax.", "jax.tree_util.", "jax.tree.", "jax.debug.", "jax.dtypes.",
    "logging.", "typing.", "warnings.", "chex.assert", "numpy.testing.",
)
# Called names that look at a key (predicates, checks, printing, hashing) or store it in a
# container (`State(...)`, `._replace(rng=key)`). Loggers are objects (`logger.info(key)`);
# a function whose name starts with `log` (`log_prob`, `logits`) is not special.
LOOKS_NAME_RE = re.compile(
    r"^_*(is|has|assert|check|validate|verify|print|debug|warn|format|repr|describe|hash|hashable|fingerprint|shape|dtype|typeof|tree_structure)(_|[A-Z]|$)"
)
STORES_NAME_RE = re.compile(r"^_*(replace|_replace|tree_at)$|(State|Info|Stats|Carry|Tuple|Result)$")
STORE_METHOD_RE = re.compile(r"^(update|append|extend|add|set|put|store|save|cache|record|insert|setdefault|get|pop|lookup|remove|index|count)$")
LOGGER_RE = re.compile(r"^_*(log|logger|logging|LOG|LOGGER|_logger)$")
LOGGER_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})


def key_taking(qn: Optional[str]) -> bool:
    """A jax.random function whose first argument is a key it consumes (samplers, split, fold_in)."""
    return (
        qn is not None and qn.startswith(RANDOM) and qn not in KEY_NOT_TAKING and qn.count(".") == 2
        and qn.rsplit(".", 1)[1][:1].islower()
    )


def key_arg(call: cst.Call) -> Optional[cst.Arg]:
    """The argument holding the key of a jax.random call: the first positional one, or `key=`."""
    for a in call.args:
        if a.keyword is None and not a.star:
            return a
        break
    for a in call.args:
        if a.keyword is not None and a.keyword.value == "key":
            return a
    return None


def called_name(func) -> Optional[str]:
    if type(func) is cst.Name:
        return func.value
    if type(func) is cst.Attribute:
        return func.attr.value
    return None


def name_draws(name: str) -> bool:
    """A callee that is not the project's, known only by name, draws from a key it is given:
    not a predicate/check/printer (`is_key`, `check_shape`) or a container (`State`, `_replace`)."""
    return not (LOOKS_NAME_RE.search(name) or STORES_NAME_RE.search(name))


def library_draws(qn: Optional[str], func) -> bool:
    """Does a call of something that is not the project's (a library function, a method of an
    unknown object) draw from a key passed to it? Assumed so, except for calls that only look at
    a key, store it or bind it."""
    if qn is not None and (qn in LOOKING or qn.startswith(LOOKING_PREFIXES)):
        return False
    name = called_name(func)
    if name is None:
        return True
    if not name_draws(name):
        return False
    if type(func) is cst.Attribute:
        if STORE_METHOD_RE.match(name):
            return False
        base = func.value
        if name in LOGGER_METHODS and type(base) in (cst.Name, cst.Attribute) and LOGGER_RE.match(called_name(base) or ""):
            return False
    return True


def sort_like(ctx, call: cst.Call, qn: Optional[str]) -> bool:
    """`key=` of this call is a sort/lookup key or an attention argument, not a PRNG key."""
    if qn in SORT_KEY_CALLS:
        return True
    name = called_name(call.func)
    if name is None:
        return False
    if type(call.func) is cst.Attribute and (name in SORT_KEY_METHODS or STORE_METHOD_RE.match(name)):
        return True
    if name in SORT_KEY_NAMES or LOOKS_NAME_RE.search(name) or STORES_NAME_RE.search(name):
        return True
    return any(a.keyword is not None and a.keyword.value in ATTENTION_KEYWORDS for a in call.args)


def _all_params(params: cst.Parameters) -> list:
    return list(params.posonly_params) + list(params.params) + list(params.kwonly_params)


def key_names(ctx, scope, external: tuple = ()) -> tuple:
    """`(params, names)` for a function scope (or the module): the unannotated key-named
    parameters that hold PRNG keys (see the module docstring), and the names the function uses
    as keys itself (the key of a `jax.random` call, a `key=`-style keyword argument).
    `external`: the top-level packages that are not the project's."""
    drawn: set = set()
    kw: set = set()
    draws = False
    passes = []
    for call in scope.calls:
        func = call.func
        qn = ctx.qualname(func) if type(func) in (cst.Name, cst.Attribute) else None
        if key_taking(qn):
            draws = True
            a = key_arg(call)
            if a is not None and type(a.value) is cst.Name:
                drawn.add(a.value.value)
            continue
        if qn is not None and qn.startswith(RANDOM):
            continue
        if sort_like(ctx, call, qn):
            continue
        for i, a in enumerate(call.args):
            if a.star or type(a.value) is not cst.Name:
                continue
            if a.keyword is not None and a.keyword.value in KEY_KEYWORDS:
                kw.add(a.value.value)
            passes.append((call, a))
    names = frozenset(drawn | kw)
    node = scope.node
    if scope.kind not in ("function", "lambda") or getattr(node, "params", None) is None:
        return frozenset(), names
    cands = [p.name.value for p in _all_params(node.params) if p.annotation is None and KEY_PARAM.match(p.name.value)]
    if not cands:
        return frozenset(), names
    fname = scope.name or ""
    strict = (fname.startswith("__") and fname not in ("__init__", "__call__")) or fname in CONTAINER_METHODS
    if strict or ATTENTION_PARAMS & set(scope.params):
        return frozenset(c for c in cands if c in drawn), names
    misuse = _lookup_uses(node, cands)
    out = set()
    for c in cands:
        if c in drawn:
            out.add(c)
        elif c not in misuse and (draws or c in kw):
            out.add(c)
    rest = {c for c in cands if c not in out and c not in misuse}
    for call, a in passes:
        name = a.value.value
        if name in rest and _key_slot(ctx, scope, call, a, external):
            out.add(name)
            rest.discard(name)
    return frozenset(out), names


def _lookup_uses(fn, names: list) -> set:
    """Names used as dictionary/lookup keys in `fn`: `table[key]`, `key in d`, `key == "x"`."""
    from ..syntax.walker import iter_subtree

    wanted = set(names)
    out: set = set()
    for node in iter_subtree(fn.body, (cst.Subscript, cst.Comparison), prune=(cst.FunctionDef, cst.Lambda, cst.ClassDef)):
        if type(node) is cst.Subscript:
            for el in node.slice:
                if type(el.slice) is cst.Index and type(el.slice.value) is cst.Name and el.slice.value.value in wanted:
                    out.add(el.slice.value.value)
        elif type(node.left) is cst.Name and node.left.value in wanted:
            for c in node.comparisons:
                op = type(c.operator)
                if op in (cst.In, cst.NotIn) or op in (cst.Equal, cst.NotEqual) and type(c.comparator) is not cst.Name:
                    out.add(node.left.value)
    return out


def _key_slot(ctx, scope, call: cst.Call, arg: cst.Arg, external: tuple) -> bool:
    """`arg` goes to a key-named parameter of a function (or class) of this file, or to a
    function imported from another module of the project (its summary decides later)."""
    func = call.func
    targets = []
    if type(func) is cst.Name:
        for d in scope.lookup_def(func.value):
            if d.kind == "function":
                targets.append((d, 0))
            elif d.kind == "class":
                targets.extend((m, 1) for m in d.defs.get("__init__", []) if m.kind == "function")
    elif type(func) is cst.Attribute and type(func.value) is cst.Name and func.value.value in ("self", "cls"):
        fn = scope.function
        cls = fn.cls if fn is not None else None
        if cls is not None:
            targets.extend((d, 1) for d in cls.defs.get(func.attr.value, []) if d.kind == "function")
    for t, skip in targets:
        params = [p.name.value for p in list(t.node.params.posonly_params) + list(t.node.params.params)]
        if arg.keyword is not None:
            pname = arg.keyword.value
            if pname not in t.params:
                continue
        else:
            pos = skip + sum(1 for b in call.args[: call.args.index(arg)] if b.keyword is None and not b.star)
            if pos >= len(params):
                continue
            pname = params[pos]
        if KEY_PARAM.match(pname):
            return True
    if targets:
        return False
    # A function imported from another module of the project.
    root = func
    while type(root) is cst.Attribute:
        root = root.value
    if type(root) is not cst.Name:
        return False
    raw = ctx.raw_aliases.get(root.value)
    if not raw:
        return False
    top = raw.split(".", 1)[0]
    return top not in external and not top.startswith(("jax", "numpy", "builtins"))
