"""EQX109 cond-static-output: `lax.cond`/`lax.switch` branches returning non-array Python values
or structures that differ between branches."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ._cond import branch_scope, cond_branches, return_values
from ..semantics.tracing import short

_NUM = {cst.Integer: "int", cst.Float: "float", cst.Imaginary: "complex"}


class CondStaticOutput(Rule):
    code = "EQX109"

    # --------------------------------------------------------------- abstraction of a result
    def _abs(self, e, params: set, depth: int = 0):
        """("none",) | ("str",) | ("num", kind) | ("seq", type, [items]) | ("dict", {k: v}) |
        ("arr",) (certainly an array) | ("val",) (a parameter: an operand) | ("?",)."""
        if depth > 4:
            return ("?",)
        if isinstance(e, cst.Name):
            if e.value == "None":
                return ("none",)
            if e.value in ("True", "False"):
                return ("num", "bool")
            return ("val",) if e.value in params else ("?",)
        if isinstance(e, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
            if isinstance(e, cst.SimpleString) and "b" in e.prefix.lower():
                return ("?",)
            return ("str",)
        for tp, kind in _NUM.items():
            if isinstance(e, tp):
                return ("num", kind)
        if isinstance(e, cst.UnaryOperation) and isinstance(e.expression, (cst.Integer, cst.Float)) and isinstance(e.operator, (cst.Minus, cst.Plus)):
            return ("num", _NUM[type(e.expression)])
        if isinstance(e, (cst.Tuple, cst.List)):
            if any(not isinstance(el, cst.Element) for el in e.elements):
                return ("?",)
            return ("seq", "tuple" if isinstance(e, cst.Tuple) else "list",
                    [self._abs(el.value, params, depth + 1) for el in e.elements])
        if isinstance(e, cst.Dict):
            items = {}
            for el in e.elements:
                if not isinstance(el, cst.DictElement) or not isinstance(el.key, cst.SimpleString):
                    return ("?",)
                items[el.key.evaluated_value] = self._abs(el.value, params, depth + 1)
            return ("dict", items)
        if isinstance(e, (cst.BinaryOperation, cst.Comparison)):
            return ("arr",) if self._arrayish(e, params) else ("?",)
        if isinstance(e, cst.Call) and isinstance(e.func, (cst.Name, cst.Attribute)):
            qn = self.ctx.qualname(e.func) or ""
            if _single_array(qn, e):
                return ("arr",)
            if isinstance(e.func, cst.Attribute) and isinstance(e.func.value, cst.Name) and e.func.value.value in params \
                    and e.func.attr.value in ("sum", "mean", "astype", "reshape", "max", "min", "prod", "squeeze", "ravel"):
                return ("arr",)
        return ("?",)

    def _arrayish(self, e, params) -> bool:
        """A binary operation with an array or operand on either side is an array."""
        if isinstance(e, cst.BinaryOperation):
            return any(self._abs(x, params, 5)[0] in ("arr", "val") or (isinstance(x, cst.BinaryOperation) and self._arrayish(x, params))
                       for x in (e.left, e.right))
        if isinstance(e, cst.Comparison):
            return self._abs(e.left, params, 5)[0] in ("arr", "val")
        return False

    # --------------------------------------------------------------- comparison
    def _has_str(self, a) -> bool:
        if a[0] == "str":
            return True
        if a[0] == "seq":
            return any(self._has_str(x) for x in a[2])
        if a[0] == "dict":
            return any(self._has_str(x) for x in a[1].values())
        return False

    def _mismatch(self, a, b) -> Optional[str]:
        ka, kb = a[0], b[0]
        if "?" in (ka, kb):
            return None
        if ka == "none" or kb == "none":
            if ka == kb:
                return None
            other = b if ka == "none" else a
            return f"`None` in one branch and {self._describe(other)} in another"
        if ka == "seq" and kb == "seq":
            if a[1] != b[1]:
                return f"a {a[1]} in one branch and a {b[1]} in another"
            if len(a[2]) != len(b[2]):
                return f"a {a[1]} of {len(a[2])} elements in one branch and of {len(b[2])} in another"
            for x, y in zip(a[2], b[2]):
                m = self._mismatch(x, y)
                if m:
                    return m
            return None
        if ka == "dict" and kb == "dict":
            if set(a[1]) != set(b[1]):
                ks = lambda d: ", ".join(repr(k) for k in sorted(d))  # noqa: E731
                return f"a dict with keys {{{ks(a[1])}}} in one branch and {{{ks(b[1])}}} in another"
            for k in a[1]:
                m = self._mismatch(a[1][k], b[1][k])
                if m:
                    return m
            return None
        if ka in ("seq", "dict") and kb == "arr" or kb in ("seq", "dict") and ka == "arr":
            return "a container in one branch and a single array in another"
        if ka == "num" and kb == "num" and a[1] != b[1]:
            return f"a Python {a[1]} in one branch and a Python {b[1]} in another (different dtypes)"
        if ka in ("seq", "dict") and kb == "num" or kb in ("seq", "dict") and ka == "num":
            return "a container in one branch and a Python number in another"
        return None

    def _describe(self, a) -> str:
        return {
            "arr": "an array", "val": "an operand", "num": "a Python number", "str": "a string",
            "seq": "a sequence", "dict": "a dict",
        }.get(a[0], "a value")

    # --------------------------------------------------------------- visit
    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        got = cond_branches(ctx, node)
        if got is None:
            return
        qn, exprs = got
        branches = []
        for ex in exprs:
            s = branch_scope(ctx, ex, ctx.scope)
            if s is None:
                branches.append(None)
                continue
            rets = return_values(s)
            if rets is None:
                branches.append(None)
                continue
            params = set(s.params) | _enclosing_params(s)
            branches.append((ex, [self._abs(r, params) for r in rets]))
        name = short(qn)
        runtime = "eqxlint.runtime.filter_cond"
        for b in branches:
            if b is None:
                continue
            for a in b[1]:
                if self._has_str(a):
                    self.report(
                        node,
                        f"A `{name}` branch (`{_code(ctx, b[0])}`) returns a Python string: "
                        "branch outputs must be arrays, so this raises TypeError when the branches "
                        f"are traced. Return the static part outside the cond, or use `{runtime}`"
                        "(pred, true_fun, false_fun, *operands), which carries non-array outputs "
                        "through (as `eqxi.Static`).",
                    )
                    return
        known = [b for b in branches if b is not None]
        for i in range(len(known)):
            for j in range(i + 1, len(known)):
                for a in known[i][1]:
                    for b in known[j][1]:
                        m = self._mismatch(a, b)
                        if m:
                            self.report(
                                node,
                                f"`{name}` branches return different structures ({m}: "
                                f"`{_code(ctx, known[i][0])}` vs `{_code(ctx, known[j][0])}`): "
                                "all branches must return the same PyTree of arrays with the same "
                                "dtypes, so this raises TypeError at trace time. Return the same "
                                "structure from every branch (e.g. `jnp.zeros_like(...)` instead of "
                                f"`None`), or use `{runtime}` for outputs with static parts.",
                            )
                            return


def _code(ctx, node) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _enclosing_params(scope) -> set:
    """Parameters (without a `None` default) of the functions enclosing a branch: closed-over
    operands."""
    out: set = set()
    s = scope.parent
    while s is not None:
        if s.kind in ("function", "lambda"):
            p = s.node.params
            for prm in list(p.posonly_params) + list(p.params) + list(p.kwonly_params):
                d = prm.default
                if d is None or not (isinstance(d, cst.Name) and d.value == "None"):
                    if prm.name.value not in ("self", "cls"):
                        out.add(prm.name.value)
        s = s.parent
    return out


# jnp functions returning a tuple/list of arrays rather than one array.
_MULTI = frozenset(
    {
        "split", "array_split", "hsplit", "vsplit", "dsplit", "meshgrid", "nonzero", "unique",
        "histogram", "histogram2d", "histogramdd", "frexp", "modf", "divmod", "unravel_index",
        "tril_indices", "triu_indices", "diag_indices", "mask_indices", "broadcast_arrays",
        "atleast_1d", "atleast_2d", "atleast_3d", "gradient", "indices", "unique_all",
        "unique_counts", "unique_inverse", "tril_indices_from", "triu_indices_from",
        "diag_indices_from", "ix_", "polyfit", "argwhere_tuple",
    }
)


def _single_array(qn: str, call: cst.Call) -> bool:
    """A call known to return exactly one array."""
    if qn.startswith("jax.numpy.") and not qn.startswith(("jax.numpy.linalg.", "jax.numpy.fft.")):
        last = qn.rsplit(".", 1)[-1]
        if last in _MULTI or last.startswith("_"):
            return False
        if last == "where" and len([a for a in call.args if a.keyword is None]) == 1:
            return False
        return True
    if qn.startswith("jax.numpy.fft.") or qn.startswith("jax.nn."):
        return True
    return False
