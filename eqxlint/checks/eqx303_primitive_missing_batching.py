"""EQX303 primitive-missing-batching: a project primitive with no batching rule."""

from __future__ import annotations

from ..core.rule import ProjectRule
from ._primitives import at_definition, label


class PrimitiveMissingBatching(ProjectRule):
    code = "EQX303"

    @classmethod
    def check_project(cls, index, options):
        out = []
        for prim in index.primitives.values():
            if index.registered(prim, "batching") is not False:
                continue
            # Never bound (a placeholder), or bound only with static operands or none: no
            # operand is ever batched, so JAX never calls a batching rule.
            if index.unbound(prim) or not index.needs_rule(prim, "batching"):
                continue
            out.append(
                at_definition(
                    cls.code, prim,
                    f"Primitive {label(prim)} has no batching rule anywhere in the project: "
                    "`jax.vmap` over it raises NotImplementedError when one of its operands is batched. Register "
                    "`batching.primitive_batchers[p] = ...` (or `batching.defvectorized(p)` for "
                    "elementwise ops), or derive it with `eqxlint.runtime.define_primitive`.",
                )
            )
        return out
