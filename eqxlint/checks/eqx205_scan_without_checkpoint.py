"""EQX205 scan-without-checkpoint: a long or data-length `lax.scan`/`fori_loop` under reverse-mode
AD with no checkpointing on its body."""

from __future__ import annotations

from typing import Optional, Union

import libcst as cst

from ..semantics import names as S
from ..core.rule import Rule
from . import _ad
from ._helpers import positional

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
        reach = _ad.reverse_ad_of(ctx, ctx.scope)
        if reach is None:
            return
        fn = ctx.scope.function
        if qn == SCAN:
            body = _ad.arg_at(node, 0, "f")
            length = self._scan_length(node, fn)
        else:
            body = _ad.arg_at(node, 2, "body_fun")
            lower, upper = _ad.arg_at(node, 0, "lower"), _ad.arg_at(node, 1, "upper")
            if lower is None or upper is None:
                return
            names = _ad.traced_names(ctx, ctx.scope)
            if _ad.is_traced_expr(ctx, lower, names) or _ad.is_traced_expr(ctx, upper, names):
                return  # a while loop in disguise: EQX208's business
            lo = _ad.int_value(ctx, lower)
            hi = self._length(upper, fn)
            if isinstance(hi, int):
                length = hi - lo if lo is not None else None
            else:
                length = hi if lo is not None else None
        if length is None or body is None:
            return
        minimum = int(self.opts.get("min-length", 64))
        if isinstance(length, int):
            if length < minimum:
                return
            size = f"{length} steps (>= min-length {minimum})"
        else:
            size = f"a length set by the caller ({length})"
        if self._checkpointed(body, ctx.scope) is not False:
            return
        loop = "lax.scan" if qn == SCAN else "lax.fori_loop"
        self.report(
            node,
            f"`{loop}` of {size} in reverse-differentiated code ({reach[1]}) with no checkpoint "
            "on its body: reverse mode stores every step's residuals, so memory grows linearly "
            "with the length. Use `eqxlint.runtime.checkpointed_scan(body, init, xs)` "
            "(recursive checkpointing, same values and gradients), or wrap the body in "
            "`eqx.filter_checkpoint` / `jax.checkpoint`.",
        )

    # ------------------------------------------------------------------ length
    def _scan_length(self, node: cst.Call, fn) -> Union[int, str, None]:
        length = _ad.arg_at(node, 3, "length")
        if length is not None and not (isinstance(length, cst.Name) and length.value == "None"):
            return self._length(length, fn)
        xs = _ad.arg_at(node, 2, "xs")
        if xs is None:
            return None
        return self._xs_length(xs, fn)

    def _param(self, expr, fn) -> Optional[str]:
        """`expr` is a parameter of the function that the reverse transform differentiates
        (not of a helper it calls: there the length is unknown)."""
        if fn is not None and any(
            site.kind in ("decorator", "call") and site.qualname in S.REVERSE_AD for site in fn.sites
        ) and isinstance(expr, cst.Name) and expr.value in fn.params \
                and expr.value not in ("self", "cls"):
            return expr.value
        return None

    def _length(self, expr, fn) -> Union[int, str, None]:
        """An int, a description of a caller-set length, or None (unknown)."""
        ctx = self.ctx
        n = _ad.int_value(ctx, expr)
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
            num = _ad.arg_at(xs, 2, "num")
            return self._length(num, fn) if num is not None else 50
        if qn == "jax.random.split" and len(args) >= 2:
            return self._length(args[1].value, fn)
        return None

    # ------------------------------------------------------------------ checkpoint
    def _checkpointed(self, body, scope) -> Optional[bool]:
        """True if the body is checkpointed, False if evidently not, None if unknown."""
        ctx = self.ctx
        if isinstance(body, cst.Call):
            qn = ctx.qualname(body.func)
            if qn in _ad.CHECKPOINT:
                return True
            if isinstance(body.func, cst.Call) and ctx.qualname(body.func.func) in (
                "functools.partial", "partial"
            ) and body.func.args and ctx.qualname(body.func.args[0].value) in _ad.CHECKPOINT:
                return True
            if qn not in ("functools.partial", "partial"):
                return None
        if isinstance(body, cst.Name):
            for assign, s in ctx.assigns:
                if s is scope.function and any(
                    isinstance(t.target, cst.Name) and t.target.value == body.value
                    for t in assign.targets
                ) and isinstance(assign.value, cst.Call) and ctx.qualname(assign.value.func) in _ad.CHECKPOINT:
                    return True
        targets = ctx.resolve_functions(body, scope)
        if not targets:
            return None
        for t in targets:
            for site in t.sites:
                if site.kind == "decorator" and site.qualname in _ad.CHECKPOINT:
                    return True
            for call in t.calls:
                q = ctx.qualname(call.func)
                if q in _ad.CHECKPOINT or (
                    isinstance(call.func, cst.Call) and ctx.qualname(call.func.func) in _ad.CHECKPOINT
                ):
                    return True
        return False
