"""Symbolic tracedness: under which conditions a value holds JAX tracers.

A value's tracedness is a *condition* over the context its function runs in, so that one
analysis of a function serves every caller in every module. A condition is a frozenset of atoms,
read as their disjunction (the empty set is "never traced"):

- `TRUE_ATOM` ("*"): traced whenever the function runs under a trace;
- `STAGED` ("s"): traced when the function runs under a jaxpr trace (`jit`, lax bodies, ...),
  where every jnp/lax operation is staged out, even on constants;
- `"p:<name>"`: the parameter `<name>` holds tracers in the calling context;
- `("r", callee, args)`: the value a project function returns, `args` being the conditions of
  the arguments passed to it (`((key, cond), ...)`, key = position or keyword name).

Conditions are monotone (no negation), so the union of a function's calling contexts decides a
condition exactly: it holds in the union iff it holds in some context. The project phase relies
on that (see `eqxlint.project.callgraph`).
"""

from __future__ import annotations

from typing import Callable, Optional

TRUE_ATOM = "*"
STAGED = "s"

FALSE: frozenset = frozenset()
TRUE: frozenset = frozenset({TRUE_ATOM})
STAGED_ONLY: frozenset = frozenset({STAGED})

_PARAMS: dict = {}


def param(name: str) -> frozenset:
    c = _PARAMS.get(name)
    if c is None:
        c = _PARAMS[name] = frozenset({"p:" + name})
    return c


def ret(callee: str, args: tuple) -> frozenset:
    """The tracedness of what `callee` returns, called with arguments of tracedness `args`."""
    return frozenset({("r", callee, tuple((k, c) for k, c in args if c))})


def join(*conds: frozenset) -> frozenset:
    out = FALSE
    for c in conds:
        if c:
            out = c if not out else out | c
    return out


def is_true(c: frozenset) -> bool:
    return TRUE_ATOM in c


def evaluate(
    c: frozenset,
    params: set,
    staged: bool,
    returns: Optional[Callable[[str, dict, bool], bool]] = None,
    _outer: Optional[list] = None,
) -> bool:
    """Does the condition hold where `params` hold tracers and staging is `staged`? `returns`
    decides a return atom: `returns(callee, {key: bool}, staged)`; without it, return atoms are
    false (nothing is claimed about code that is not known). `_outer`: [(params, staged)] of the
    function and its enclosing functions, innermost first, for the atoms of closures
    (`p:^x` is the enclosing function's parameter `x`, `^s` its staging)."""
    for a in c:
        if a == TRUE_ATOM:
            return True
        if a == STAGED:
            if staged:
                return True
            continue
        if type(a) is str:
            if a[0] == "^":
                depth = len(a) - len(a.lstrip("^"))
                if _outer is not None and depth < len(_outer) and _outer[depth][1]:
                    return True
                continue
            name = a[2:]
            if name[:1] == "^":
                depth = len(name) - len(name.lstrip("^"))
                if _outer is not None and depth < len(_outer) and name[depth:] in _outer[depth][0]:
                    return True
                continue
            if name in params:
                return True
            continue
        if returns is not None:
            args = {k: evaluate(v, params, staged, returns, _outer) for k, v in a[2]}
            if returns(a[1], args, staged):
                return True
    return False


def substitute(c: frozenset, args: dict, staged: bool) -> frozenset:
    """Rewrite a callee's condition in the caller's terms: its parameters become the caller's
    argument conditions (`args`: callee parameter name -> condition), `STAGED` stays when the
    caller is staged."""
    out = FALSE
    for a in c:
        if a == TRUE_ATOM:
            return TRUE
        if a == STAGED:
            out = join(out, STAGED_ONLY)
        elif type(a) is str:
            out = join(out, args.get(a[2:], FALSE))
        else:
            out = join(out, frozenset({("r", a[1], tuple((k, substitute(v, args, staged)) for k, v in a[2]))}))
    return out


# ---------------------------------------------------------------------------- JSON
def to_json(c: frozenset) -> list:
    if not c:
        return []
    simple = [a for a in c if type(a) is str]
    if len(simple) == len(c):
        return sorted(simple)
    out = sorted(simple)
    for a in sorted((a for a in c if type(a) is not str), key=_order):  # noqa: B905
        out.append(["r", a[1], [[k, to_json(v)] for k, v in a[2]]])
    return out


def from_json(data) -> frozenset:
    atoms = []
    for a in data:
        if isinstance(a, str):
            atoms.append(a)
        else:
            atoms.append(("r", a[1], tuple((k, from_json(v)) for k, v in a[2])))
    return frozenset(atoms)


def _order(a):
    return (a[1], len(a[2]), tuple(str(k) for k, _ in a[2]))
