"""EQX304 primitive-missing-eval-or-lowering: no abstract evaluation or no lowering."""

from __future__ import annotations

from ..core.rule import ProjectRule
from ._primitives import at_definition, label


class PrimitiveMissingEvalOrLowering(ProjectRule):
    code = "EQX304"

    @classmethod
    def check_project(cls, index, options):
        out = []
        for prim in index.primitives.values():
            if index.unbound(prim):
                continue  # a placeholder never bound anywhere: nothing traces or compiles it
            kinds = ("abstract_eval", "lowering") if index.lowers(prim) else ("abstract_eval",)
            missing = [k for k in kinds if index.registered(prim, k) is False]
            if not missing:
                continue
            what = {
                "abstract_eval": "abstract evaluation (`p.def_abstract_eval`): tracing it under `jit`, `vmap` or `grad` fails",
                "lowering": "lowering (`mlir.register_lowering`): compiling it with `jit` fails",
            }
            detail = "; no ".join(what[k] for k in missing)
            out.append(
                at_definition(
                    cls.code, prim,
                    f"Primitive {label(prim)} has no {detail}. Register it, or derive both from "
                    "the implementation with `eqxlint.runtime.define_primitive` (or "
                    "`mlir.lower_fun(impl)`).",
                )
            )
        return out
