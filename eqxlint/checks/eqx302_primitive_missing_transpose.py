"""EQX302 primitive-missing-transpose: a primitive bound on tangents with no transpose rule."""

from __future__ import annotations

from ..core.rule import ProjectRule
from ._primitives import at_definition, label


class PrimitiveMissingTranspose(ProjectRule):
    code = "EQX302"

    @classmethod
    def check_project(cls, index, options):
        users: dict = {}
        for prim in index.primitives.values():
            for q in prim.binds:
                users.setdefault(index.canonical(q), []).append(prim)
        out = []
        for qual, via in sorted(users.items()):
            prim = index.primitives.get(qual)
            if prim is None or prim.nondiff or index.registered(prim, "transpose") is not False:
                continue
            others = sorted(label(p) for p in via if p is not prim)
            by = "its own JVP rule" if not others else "the JVP rule of " + ", ".join(others)
            out.append(
                at_definition(
                    cls.code, prim,
                    f"Primitive {label(prim)} is bound on tangents by {by}, so it "
                    "is used linearly, but it has no transpose rule anywhere in the project: "
                    "`jax.grad`/`jax.vjp` (reverse mode) will fail. Register "
                    "`ad.primitive_transposes[p] = ...` (or use `ad.deflinear2`), or derive it with "
                    "`eqxlint.runtime.define_primitive(..., transpose=\"derive\")`.",
                )
            )
        return out
