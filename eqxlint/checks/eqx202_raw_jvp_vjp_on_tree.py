"""EQX202 raw-jvp-vjp-on-tree: `jax.jvp`/`jax.vjp`/`jax.linearize` on Module primals."""

from __future__ import annotations

import libcst as cst

from ..core.rule import Rule
from ._ad import module_value
from ._helpers import positional

REPLACEMENT = {"jax.jvp": "filter_jvp", "jax.vjp": "filter_vjp", "jax.linearize": "filter_jvp"}


class RawJvpVjpOnTree(Rule):
    code = "EQX202"

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        if qn not in REPLACEMENT:
            return
        pos = positional(node)
        if not pos:
            return
        eqx = ctx.alias_for("equinox") or "eqx"
        name = qn.rsplit(".", 1)[-1]
        # jax.jvp(f, primals, tangents): the primals tuple; vjp/linearize: the arguments after f.
        primals = pos[1:2] if qn == "jax.jvp" else pos[1:]
        for p in primals:
            found = module_value(ctx, p.value)
            if found:
                desc, requires = found
                self.report(
                    node,
                    f"`jax.{name}` with an Equinox Module among its primals ({desc}): raw JAX AD "
                    "treats every leaf as a primal, so non-array leaves (activation functions, "
                    "static fields) raise or need tangents/cotangents stitched in by hand. Use "
                    f"`{eqx}.{REPLACEMENT[qn]}`, which differentiates only the array leaves"
                    + (" (Equinox has no filter_linearize: use filter_jvp, or linearize "
                       "the array part from `eqx.partition`)." if qn == "jax.linearize" else "."),
                    requires=requires,
                )
                return
        # A Module used as the *function* (`jax.vjp(wrapper, x)`) is a closure: that works and is
        # common on purpose (lineax's `_NoAuxIn`), so it is not reported.
