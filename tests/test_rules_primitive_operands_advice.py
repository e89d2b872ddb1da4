"""Issue 13: primitives bound without differentiable/batched operands, placeholders, and advice
that fits the codebase (plain JAX outside Equinox projects)."""

from helpers import lint

PLAIN_403 = '''
import jax
import jax.random as jr

def perturb(params, key):
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jr.split(key, len(leaves))
    new = [p + 0.01 * jr.normal(k, p.shape) for k, p in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, new)
'''


def test_eqx403_plain_jax_advice_outside_equinox():
    msgs = [d.message for d in lint(PLAIN_403) if d.code == "EQX403"]
    assert msgs and "eqxlint.runtime" not in msgs[0] and "jax.tree.unflatten" in msgs[0]
    eqx = [d.message for d in lint("import equinox as eqx\n" + PLAIN_403) if d.code == "EQX403"]
    assert eqx and "eqxlint.runtime.split_by_tree" in eqx[0]


def test_primitive_bound_with_float_operand_somewhere_keeps_findings():
    code = '''
import numpy as np
from jax.extend.core import Primitive

zeros_p = Primitive("z")
zeros_p.def_abstract_eval(lambda *a, shape: None)

def zeros(shape):
    return zeros_p.bind(shape=shape)

def handed(f):
    return f(zeros_p)
'''
    found = {d.code for d in lint(code)}
    assert {"EQX301", "EQX303"} <= found  # handed on: bound somewhere unknown


def test_primitive_static_operands_only_is_silent():
    code = '''
from jax.extend.core import Primitive

tri_p = Primitive("tri")
tri_p.def_abstract_eval(lambda n, *, k: None)

def tri(n):
    return tri_p.bind(3, k=0)
'''
    found = {d.code for d in lint(code)}
    assert not found & {"EQX301", "EQX303"}
