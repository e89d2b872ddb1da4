"""EQX205 scan-without-checkpoint: a long or data-length `lax.scan`/`fori_loop` under reverse-mode
AD (anywhere in the project) with no checkpointing on its body."""

from __future__ import annotations

from typing import Optional, Union

import libcst as cst

from ..core.rule import Rule
from ..semantics import names as S
from ..semantics.values import FN
from ._helpers import argument, positional

SCAN = "jax.lax.scan"
FORI = "jax.lax.fori_loop"
_SHAPED = ("jax.numpy.zeros", "jax.numpy.ones", "jax.numpy.empty", "jax.numpy.full")


class ScanWithoutCheckpoint(Rule):
    code = "EQX205"
    options = {"min-length": 64}

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        if qn not in (SCAN, FORI):
            return
        fn = ctx.scope.function
        if fn is None:
            return
        if qn == SCAN:
            body = argument(node, 0, "f")
            length = self._scan_length(node, fn)
        else:
            body = argument(node, 2, "body_fun")
            lower, upper = argument(node, 0, "lower"), argument(node, 1, "upper")
            if lower is None or upper is None:
                return
            lo, hi = self._int(lower), self._int(upper)
            # Bounds that are not constants may be traced: then the loop is a while loop in
            # disguise, EQX208's business.
            length = hi - lo if lo is not None and hi is not None else None
        if length is None or body is None:
            return
        minimum = int(self.opts.get("min-length", 64))
        if isinstance(length, int):
            if length < minimum:
                return
            size = f"{length} steps (>= min-length {minimum})"
        else:
            size = f"a length set by the caller ({length})"
        if self._checkpointed(body) is not False:
            return
        loop = "lax.scan" if qn == SCAN else "lax.fori_loop"
        eqx = ctx.alias_for("equinox") if ctx.imports_module("equinox") else None
        wrap = f"`{eqx}.filter_checkpoint` / `jax.checkpoint`" if eqx else "`jax.checkpoint`"
        self.report(
            node,
            f"`{loop}` of {size} in reverse-differentiated code ({{trace}}) with no checkpoint "
            "on its body: reverse mode stores every step's residuals, so memory grows linearly "
            "with the length. Use `eqxlint.runtime.checkpointed_scan(body, init, xs)` "
            f"(recursive checkpointing, same values and gradients), or wrap the body in {wrap}.",
            requires=("reverse", fn.ref),
        )

    # ------------------------------------------------------------------ length
    def _int(self, expr) -> Optional[int]:
        lit = self.ctx.values.of(expr).lit
        return lit if type(lit) is int else None

    def _scan_length(self, node: cst.Call, fn) -> Union[int, str, None]:
        length = argument(node, 3, "length")
        if length is not None and not (isinstance(length, cst.Name) and length.value == "None"):
            return self._length(length, fn)
        xs = argument(node, 2, "xs")
        if xs is None:
            return None
        return self._xs_length(xs, fn)

    def _param(self, expr, fn) -> Optional[str]:
        """`expr` is a parameter of a function that a reverse transform differentiates directly
        (in this file): the caller's data sets the length. (In a helper it calls, the length is
        unknown.)"""
        if type(expr) is cst.Name and expr.value in fn.params and expr.value not in ("self", "cls") \
                and any(site.kind in ("decorator", "call") and site.qualname in S.REVERSE_AD for site in fn.sites):
            return expr.value
        return None

    def _length(self, expr, fn) -> Union[int, str, None]:
        """An int, a description of a caller-set length, or None (unknown)."""
        ctx = self.ctx
        n = self._int(expr)
        if n is not None:
            return n
        p = self._param(expr, fn)
        if p is not None:
            return f"`{p}`"
        # x.shape[0] / len(x) of a parameter
        if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute) \
                and expr.value.attr.value == "shape":
            p = self._param(expr.value.value, fn)
            if p is not None:
                return f"`{ctx.code(expr)}`"
        if isinstance(expr, cst.Call) and ctx.qualname(expr.func) == "len" and expr.args:
            p = self._param(expr.args[0].value, fn)
            if p is not None:
                return f"`len({p})`"
        return None

    def _xs_length(self, xs, fn) -> Union[int, str, None]:
        ctx = self.ctx
        p = self._param(xs, fn)
        if p is not None:
            return f"the leading axis of `{p}`"
        if not isinstance(xs, cst.Call):
            return None
        qn = ctx.qualname(xs.func)
        args = positional(xs)
        if qn == "jax.numpy.arange" and args:
            vals = [self._length(a.value, fn) for a in args[:3]]
            if len(vals) == 1:
                return vals[0]
            if all(isinstance(v, int) for v in vals):
                step = vals[2] if len(vals) == 3 else 1
                return max(0, -(-(vals[1] - vals[0]) // step)) if step else None
            return vals[1] if isinstance(vals[0], int) and vals[0] == 0 and isinstance(vals[1], str) else None
        if qn in _SHAPED and args:
            shape = args[0].value
            if isinstance(shape, (cst.Tuple, cst.List)):
                if not shape.elements:
                    return None
                shape = shape.elements[0].value
            return self._length(shape, fn)
        if qn == "jax.numpy.linspace":
            num = argument(xs, 2, "num")
            return self._length(num, fn) if num is not None else 50
        if qn == "jax.random.split" and len(args) >= 2:
            return self._length(args[1].value, fn)
        return None

    # ------------------------------------------------------------------ checkpoint
    def _checkpointed(self, body) -> Optional[bool]:
        """True if the body is checkpointed (wrapped, decorated, or checkpointing its step
        inside), False if it evidently is not, None if unknown."""
        ctx = self.ctx
        v = ctx.values.of(body)
        if v.kind != FN or not v.ref:
            return None
        if any(spec.get("t") in S.CHECKPOINTS for spec in v.via):
            return True
        scope = ctx.refs.get(v.ref)
        if scope is None:
            return None
        summ = ctx.values.summary(scope)
        for e in (summ.edges if summ is not None else ()):
            if any(spec.get("t") in S.CHECKPOINTS for spec in e.via):
                return True  # the body checkpoints its step: `jax.checkpoint(step)(c, x)`
        return False
