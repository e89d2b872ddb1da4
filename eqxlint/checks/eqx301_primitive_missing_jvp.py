"""EQX301 primitive-missing-jvp: a project primitive with no JVP rule anywhere in the project."""

from __future__ import annotations

from ..core.rule import ProjectRule
from ._primitives import at_definition, label


class PrimitiveMissingJvp(ProjectRule):
    code = "EQX301"

    @classmethod
    def check_project(cls, index, options):
        out = []
        for prim in index.primitives.values():
            if prim.nondiff or index.registered(prim, "jvp") is not False:
                continue
            # Never bound (a placeholder), or bound only with operands that carry no tangent
            # (none, static values, PRNG keys): JAX never calls its JVP rule.
            if index.unbound(prim) or not index.needs_rule(prim, "jvp"):
                continue
            out.append(
                at_definition(
                    cls.code, prim,
                    f"Primitive {label(prim)} has no JVP rule anywhere in the project: `jax.grad` "
                    "and `jax.jvp` through it raise NotImplementedError if it is differentiated "
                    "with respect to a float operand. Register one "
                    "(`ad.defjvp`, `ad.primitive_jvps[p] = ...`, `ad.deflinear2` for linear ops), "
                    "build it with `eqxlint.runtime.define_primitive` (derives every rule), or mark "
                    "it `# eqxlint: nondifferentiable` if it has no gradient by design.",
                )
            )
        return out
