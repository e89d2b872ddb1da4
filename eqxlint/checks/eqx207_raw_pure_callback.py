"""EQX207 raw-pure-callback: `jax.pure_callback` on Modules / mixed PyTrees, and any use of the
removed `jax.experimental.host_callback`."""

from __future__ import annotations

import libcst as cst

from ..core.rule import Rule
from ..syntax.nodes import dotted
from ._ad import module_value
from ._helpers import positional

HCB = "jax.experimental.host_callback"


def _hcb_replacement(ctx) -> str:
    pure = "`jax.pure_callback`"
    if ctx.imports_module("equinox"):
        pure += f" / `{ctx.alias_for('equinox') or 'eqx'}.filter_pure_callback`"
    return (
        f"use `jax.debug.callback` (side effects), {pure} (pure host computations) or "
        "`jax.experimental.io_callback` (ordered I/O)"
    )


class RawPureCallback(Rule):
    code = "EQX207"

    # ------------------------------------------------------------------ host_callback
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = dotted(alias.name) or ""
            if name == HCB or name.startswith(HCB + "."):
                self._report_hcb(node, f"`import {name}`")

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None:
            return
        mod = dotted(node.module) or ""
        if mod == HCB or mod.startswith(HCB + "."):
            self._report_hcb(node, f"`from {mod} import ...`")
        elif mod == "jax.experimental" and not isinstance(node.names, cst.ImportStar):
            if any(isinstance(a.name, cst.Name) and a.name.value == "host_callback" for a in node.names):
                self._report_hcb(node, "`from jax.experimental import host_callback`")

    def _report_hcb(self, node, what: str) -> None:
        self.report(
            node,
            f"{what}: `jax.experimental.host_callback` was removed from JAX (0.4.35), so this "
            f"fails at import time; {_hcb_replacement(self.ctx)}.",
        )

    # ------------------------------------------------------------------ calls
    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        qn = ctx.qualname(node.func)
        if qn is None:
            return
        if qn.startswith(HCB + "."):
            # Reported per call only when reached without a host_callback import of its own
            # (`jax.experimental.host_callback.id_tap(...)` written out in full).
            if (dotted(node.func) or "").startswith(HCB + "."):
                self.report(
                    node,
                    f"`{ctx.code(node.func)}`: `jax.experimental.host_callback` was removed from "
                    f"JAX (0.4.35); {_hcb_replacement(ctx)}.",
                )
            return
        if qn != "jax.pure_callback":
            return
        pos = positional(node)
        candidates = [("result_shape_dtypes", a.value) for a in pos[1:2]]
        candidates += [("argument", a.value) for a in pos[2:]]
        for a in node.args:
            if a.keyword is not None and a.keyword.value not in ("vmap_method", "vectorized", "sharding", "callback"):
                role = "result_shape_dtypes" if a.keyword.value == "result_shape_dtypes" else "argument"
                candidates.append((role, a.value))
            elif a.star and a.keyword is None:
                candidates.append(("argument", a.value))
        for role, expr in candidates:
            found = module_value(ctx, expr)
            if found is None and isinstance(expr, cst.Call) and ctx.qualname(expr.func) in (
                "equinox.filter_eval_shape",
            ):
                found = (f"`{ctx.code(expr)}` (a filtered shape tree that keeps non-array leaves)", None)
            if found is None:
                continue
            desc, requires = found
            eqx = ctx.alias_for("equinox") or "eqx"
            self.report(
                node,
                f"`jax.pure_callback` with an Equinox Module as its {role} ({desc}): pure_callback "
                "passes every leaf through the host boundary and needs a ShapeDtypeStruct for "
                "every output leaf, so non-array fields (activations, static config) fail or must "
                f"be split by hand. Use `{eqx}.filter_pure_callback(fn, *args, "
                "result_shape_dtypes=...)`, which passes non-array leaves through unchanged.",
                requires=requires,
            )
            return
